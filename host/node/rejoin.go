package node

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"

	"github.com/aof2/aof2/client"
	"github.com/aof2/aof2/core"
	"github.com/aof2/aof2/core/restore"
	"github.com/aof2/aof2/core/vfs"
	"github.com/aof2/aof2/host/cluster"
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
		ents, err := os.ReadDir(filepath.Join(o.DataDir, "streams"))
		if err != nil && !os.IsNotExist(err) {
			return err
		}
		if len(ents) > 0 {
			return nil
		}
	}
	rep, err := restore.RunCluster(ctx, restore.Config{DataDir: o.DataDir, Remote: n.mu.remote, Manifest: o.Core.Manifest,
		SegmentSize: o.Core.SegmentSize, Logger: n.log.Named("restore")})
	if err != nil {
		return fmt.Errorf("rejoin the cluster from tier 2: %w", err)
	}
	var cold int
	var records uint64
	for _, s := range rep.Streams {
		cold, records = cold+s.Cold, records+s.Records
	}
	n.log.Info("rejoining: took what tier 2 holds; Raft brings the rest", "streams", len(rep.Streams),
		"cold_segments", cold, "records", records, "duration", rep.Duration)
	return nil
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
