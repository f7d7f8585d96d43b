package node

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/aof2/aof2/client"
	"github.com/aof2/aof2/core"
	"github.com/aof2/aof2/core/restore"
	"github.com/aof2/aof2/core/vfs"
	"github.com/aof2/aof2/host/cluster"
	"github.com/aof2/aof2/internal/logfields"
)

// rejoinFromTier2 gives a cluster member that joins (no bootstrap peers)
// with no streams what tier 2 holds of the cluster's streams, before
// its store opens (restore.RunCluster): Raft then hands it a snapshot,
// and it copies only what tier 2 does not hold yet from a peer
// (docs/adr-replication.md, "Rejoining from tier 2"). A member that
// bootstraps with peers does not: a new cluster must not take what an
// earlier one left in the prefix as its own.
func (n *Node) rejoinFromTier2(ctx context.Context) error {
	o := n.opts
	if o.Cluster == nil || len(o.Cluster.Peers) > 0 || n.mu.remote == nil {
		return nil
	}
	pending, err := restore.Pending(vfs.OS, o.DataDir)
	if err != nil {
		return fmt.Errorf("check for an unfinished restore: %w", err)
	}
	if !pending {
		if ents, err := os.ReadDir(o.Cluster.Dir); err == nil && len(ents) > 0 {
			// A member restarting, not a new or wiped one: Raft brings
			// what it lacks (one behind retention is rebuilt, as
			// deploy/README.md says).
			return nil
		}
		ents, err := os.ReadDir(filepath.Join(o.DataDir, "streams"))
		if err != nil && !os.IsNotExist(err) {
			return err
		}
		if len(ents) > 0 {
			return nil
		}
	}
	cfg := restore.Config{DataDir: o.DataDir, Remote: n.mu.remote, Manifest: o.Core.Manifest,
		SegmentSize: o.Core.SegmentSize, Logger: n.log.Named("restore")}
	var rep restore.Report
	for {
		if o.ClusterJoin != "" {
			if cfg.Oldest, err = n.oldestSegments(ctx); err != nil {
				return fmt.Errorf("rejoin the cluster from tier 2: %w", err)
			}
		}
		rep, err = restore.RunCluster(ctx, cfg)
		if !onlyOldestMissing(err) {
			break
		}
		n.log.Info("rejoining: tier 2 does not hold a stream's oldest segment yet; asking the cluster again", "error", err)
		if err := sleepCtx(ctx, rejoinRetry); err != nil {
			return fmt.Errorf("rejoin the cluster from tier 2: %w", err)
		}
	}
	if err != nil {
		return fmt.Errorf("rejoin the cluster from tier 2: %w", err)
	}
	var cold int
	var records uint64
	for _, s := range rep.Streams {
		cold, records = cold+s.Cold, records+s.Records
	}
	n.log.Info("rejoining: took what tier 2 holds; Raft brings the rest", append([]any{"streams", len(rep.Streams),
		"cold_segments", cold, "records", records}, logfields.Duration("duration", rep.Duration)...)...)
	return nil
}

// onlyOldestMissing reports whether err (RunCluster's, one per stream
// joined) is restore.ErrOldestNotInTier2 for every stream: asking the
// cluster again heals that, and nothing else.
func onlyOldestMissing(err error) bool {
	if err == nil {
		return false
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		for _, e := range j.Unwrap() {
			if !onlyOldestMissing(e) {
				return false
			}
		}
		return true
	}
	return errors.Is(err, restore.ErrOldestNotInTier2)
}

// rejoinRetry is how long a rejoin waits before it asks the cluster
// again for a stream's oldest segment that tier 2 does not hold yet.
const rejoinRetry = time.Second

// oldestSegments asks the member the node joins through for each stream's
// oldest segment now — with retention, not its first — and the rejoin
// from tier 2 starts the stream there (restore.Config.Oldest). It waits until tier 2 holds each (the member
// lists the segment in tier 2). An unsealed one, which is never uploaded
// until sealed (an idle stream whose older segments all went), is sealed
// through the member: a Seal entry, as `aof2-host seal` makes; the
// stream's next record opens a new segment. Dial failures are retried
// until ctx ends: the node cannot start without the answer.
func (n *Node) oldestSegments(ctx context.Context) (map[core.StreamID]core.SegmentID, error) {
	o := n.opts
	for {
		oldest, waiting, err := n.askOldest(ctx, o.ClusterJoin)
		if err == nil && len(waiting) == 0 {
			return oldest, nil
		}
		if err != nil {
			n.log.Warn("rejoining: cannot ask the cluster where its streams start; asking again", "through", o.ClusterJoin, "error", err)
		} else {
			n.log.Info("rejoining: waiting for tier 2 to hold streams' oldest segments", "streams", waiting)
		}
		if err := sleepCtx(ctx, rejoinRetry); err != nil {
			return nil, err
		}
	}
}

// askOldest is one round of oldestSegments: the cut streams' oldest
// segments, and the streams among them whose oldest tier 2 does not hold
// yet.
func (n *Node) askOldest(ctx context.Context, addr string) (map[core.StreamID]core.SegmentID, []core.StreamID, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	c, err := client.Dial(ctx, addr, n.opts.ClusterClient...)
	if err != nil {
		return nil, nil, fmt.Errorf("dial %s: %w", addr, err)
	}
	defer c.Close()
	rows, err := c.Segments(ctx, client.SegmentFilter{})
	if err != nil {
		return nil, nil, fmt.Errorf("list segments through %s: %w", addr, err)
	}
	first := map[client.StreamID]client.SegmentRow{}
	for _, r := range rows {
		if f, ok := first[r.Stream]; !ok || r.Segment < f.Segment {
			first[r.Stream] = r
		}
	}
	oldest := map[core.StreamID]core.SegmentID{}
	var waiting []core.StreamID
	for sid, r := range first {
		if r.BaseRecord == 0 {
			// Nothing dropped. Taken from this segment if tier 2 holds it
			// (one missing later was dropped since: asked again); else
			// from record 0 as tier 2 has it, or from peers.
			if r.Tier2 {
				oldest[core.StreamID(sid)] = core.SegmentID(r.Segment)
			}
			continue
		}
		oldest[core.StreamID(sid)] = core.SegmentID(r.Segment)
		if r.Tier2 {
			continue
		}
		waiting = append(waiting, core.StreamID(sid))
		if !r.Sealed {
			if _, err := c.Seal(ctx, sid); err != nil {
				return nil, nil, fmt.Errorf("seal stream %d, whose only segment tier 2 needs: %w", sid, err)
			}
			n.log.Info("rejoining: sealed a stream's only segment so that it reaches tier 2", "stream_id", uint64(sid), "segment_id", uint64(r.Segment))
		}
	}
	slices.Sort(waiting)
	return oldest, waiting, nil
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// peerReader reads records from other members' client APIs (a node
// behind a Raft snapshot copies what it lacks with it). It keeps one
// connection per member until Close.
type peerReader struct {
	opts []client.Option
	mu   sync.Mutex
	conn map[string]*client.Client // by gRPC address; guarded by mu
}

func newPeerReader(opts []client.Option) *peerReader {
	return &peerReader{opts: opts, conn: map[string]*client.Client{}}
}

// ReadRecords is cluster.PeerReader's: a local read (what that member
// applied) of at most limit records from ordinal from.
func (p *peerReader) ReadRecords(ctx context.Context, at cluster.APIAddr, stream core.StreamID, from uint64, limit int) ([]cluster.PeerRecord, error) {
	if at.GRPC == "" {
		return nil, fmt.Errorf("the member named no gRPC address")
	}
	c, err := p.client(ctx, at.GRPC)
	if err != nil {
		return nil, err
	}
	res, err := c.Read(ctx, client.StreamID(stream), client.AtOrdinal(from), limit)
	if err != nil {
		return nil, fmt.Errorf("read stream %d from %s: %w", stream, at.GRPC, err)
	}
	out := make([]cluster.PeerRecord, len(res.Records))
	for i, r := range res.Records {
		out[i] = cluster.PeerRecord{ID: core.RecordID(r.ID), Ordinal: r.Ordinal, Timestamp: r.Timestamp, ExtID: r.ExtID, Payload: r.Payload}
	}
	return out, nil
}

// Applied is cluster.PeerReader's: the member's applied index, from its
// cluster status.
func (p *peerReader) Applied(ctx context.Context, at cluster.APIAddr) (uint64, error) {
	if at.GRPC == "" {
		return 0, fmt.Errorf("the member named no gRPC address")
	}
	c, err := p.client(ctx, at.GRPC)
	if err != nil {
		return 0, err
	}
	st, err := c.ClusterStatus(ctx)
	if err != nil {
		return 0, fmt.Errorf("cluster status of %s: %w", at.GRPC, err)
	}
	return st.AppliedIndex, nil
}

func (p *peerReader) client(ctx context.Context, addr string) (*client.Client, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if c := p.conn[addr]; c != nil {
		return c, nil
	}
	c, err := client.Dial(ctx, addr, p.opts...)
	if err != nil {
		return nil, fmt.Errorf("dial %s: %w", addr, err)
	}
	p.conn[addr] = c
	return c, nil
}

// Close closes every connection.
func (p *peerReader) Close() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	for addr, c := range p.conn {
		_ = c.Close()
		delete(p.conn, addr)
	}
	return nil
}
