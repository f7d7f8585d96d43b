// Package servertest runs a host/server.Server over a real store on
// loopback, for tests of the server, the client and the tools built on
// them. Its Node is a minimal stand-in for the host's: the Log service runs
// against the real store, while Dump, Segments and Hydrate only describe
// tier 0.
package servertest

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aof2/aof2/core"
	"github.com/aof2/aof2/core/coordinator"
	"github.com/aof2/aof2/core/segment"
	"github.com/aof2/aof2/host/cluster"
	"github.com/aof2/aof2/host/server"
)

// Node implements server.Node over a store.
type Node struct {
	store atomic.Pointer[core.Store]
	ready atomic.Bool
	// BeforeHydrate, when set, runs before each segment Hydrate reports
	// (tests hold a call in flight with it).
	BeforeHydrate func(ctx context.Context, seg core.SegmentID) error
	// UploadsPaused is what SetUploadsPaused last set.
	UploadsPaused atomic.Bool
	// Joining, when set, makes the node a clustered one that has not
	// joined Raft (server.ClusterNode: Clustered, and no Cluster) while
	// its store is open: the window a restarting cluster member passes
	// through, in which the server must refuse writes.
	Joining atomic.Bool
}

// Clustered implements server.ClusterNode: true while Joining is set.
func (n *Node) Clustered() bool { return n.Joining.Load() }

// Cluster implements server.ClusterNode: this node never joins one.
func (n *Node) Cluster() *cluster.Node { return nil }

// NewNode returns a ready node over st (nil: not recovered yet).
func NewNode(st *core.Store) *Node {
	n := &Node{}
	n.SetStore(st)
	return n
}

// SetStore installs the store and makes the node ready when st is not nil.
func (n *Node) SetStore(st *core.Store) {
	n.store.Store(st)
	n.ready.Store(st != nil)
}

// Store implements server.Node.
func (n *Node) Store() *core.Store { return n.store.Load() }

// Ready implements server.Node.
func (n *Node) Ready() bool { return n.ready.Load() }

// Dump implements server.Node: every stream's info.
func (n *Node) Dump(context.Context) ([]byte, error) {
	st := n.Store()
	type stream struct {
		ID       uint64 `json:"id"`
		Records  uint64 `json:"records"`
		Segments int    `json:"segments"`
	}
	doc := struct {
		Streams []stream `json:"streams"`
	}{Streams: []stream{}}
	for _, id := range st.Streams() {
		s, err := st.Lookup(id)
		if err != nil {
			return nil, err
		}
		in := s.Info()
		doc.Streams = append(doc.Streams, stream{ID: uint64(id), Records: in.Records, Segments: in.Segments})
	}
	return json.Marshal(doc)
}

// Segments implements server.Node from the streams' catalogs; only tier 0
// is known.
func (n *Node) Segments(_ context.Context, stream *core.StreamID, tier string) ([]server.SegmentRow, error) {
	switch tier {
	case "", "tier0", "tier1", "tier2":
	default:
		return nil, fmt.Errorf("unknown tier %q: %w", tier, server.ErrBadRequest)
	}
	st := n.Store()
	ids := st.Streams()
	if stream != nil {
		if _, err := st.Lookup(*stream); err != nil {
			return nil, err
		}
		ids = []core.StreamID{*stream}
	}
	var rows []server.SegmentRow
	for _, id := range ids {
		s, err := st.Lookup(id)
		if err != nil {
			return nil, err
		}
		for _, g := range s.SegmentList() {
			row := server.SegmentRow{Stream: id, Segment: g.ID, BaseRecord: g.BaseRecord, Tier0: g.Resident, Residency: "active"}
			if f := g.Footer; f != nil {
				row.Sealed, row.Records, row.Bytes, row.Residency = true, f.RecordCount, f.DurableBytes, "resident"
			}
			if tier == "" || (tier == "tier0" && row.Tier0) {
				rows = append(rows, row)
			}
		}
	}
	return rows, nil
}

// Scrub implements server.Node: there are no other tiers to check
// against, so it reports each sealed segment checked and nothing found.
func (n *Node) Scrub(ctx context.Context, stream *core.StreamID, progress func(coordinator.ScrubProgress)) (coordinator.ScrubSummary, error) {
	st := n.Store()
	ids := st.Streams()
	if stream != nil {
		ids = []core.StreamID{*stream}
	}
	var segs []coordinator.ScrubProgress
	for _, id := range ids {
		s, err := st.Lookup(id)
		if err != nil {
			return coordinator.ScrubSummary{}, err
		}
		for _, g := range s.SegmentList() {
			if g.Footer != nil {
				segs = append(segs, coordinator.ScrubProgress{Stream: id, Segment: g.ID})
			}
		}
	}
	for i, p := range segs {
		if err := ctx.Err(); err != nil {
			return coordinator.ScrubSummary{}, err
		}
		p.Done, p.Total = i+1, len(segs)
		progress(p)
	}
	return coordinator.ScrubSummary{Segments: len(segs), BytesVerified: map[string]int64{}}, nil
}

// Hydrate implements server.Node: every segment in range is resident
// already, so it only reports progress (after BeforeHydrate).
func (n *Node) Hydrate(ctx context.Context, stream core.StreamID, from, to core.SegmentID, progress func(done, total int, seg core.SegmentID)) error {
	s, err := n.Store().Lookup(stream)
	if err != nil {
		return err
	}
	var segs []core.SegmentID
	for _, g := range s.SegmentList() {
		if (from == 0 || g.ID >= from) && (to == 0 || g.ID <= to) {
			segs = append(segs, g.ID)
		}
	}
	for i, id := range segs {
		if n.BeforeHydrate != nil {
			if err := n.BeforeHydrate(ctx, id); err != nil {
				return err
			}
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		progress(i+1, len(segs), id)
	}
	return nil
}

// Host is a running server on loopback.
type Host struct {
	Store    *core.Store // nil when started with StartNode and no store
	Node     *Node
	Server   *server.Server
	GRPCAddr string
	HTTPURL  string // http://127.0.0.1:port (https with Options.TLS)

	wg      sync.WaitGroup
	stopped atomic.Bool
}

// Start opens a store with cfg in a temporary directory and serves it.
// opts.MaxRecordSize defaults to the maximum record of cfg's segments.
// Cleanup shuts the server down and closes the store.
func Start(t testing.TB, cfg core.Config, opts server.Options) *Host {
	t.Helper()
	st, err := core.Open(t.TempDir(), cfg)
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	if opts.MaxRecordSize == 0 && cfg.SegmentSize != 0 {
		opts.MaxRecordSize = int(segment.MaxRecordSize(cfg.SegmentSize))
	}
	h := StartNode(t, NewNode(st), opts)
	h.Store = st
	t.Cleanup(func() {
		h.Shutdown(t)
		_ = st.Close()
	})
	return h
}

// StartNode serves node on loopback until cleanup.
func StartNode(t testing.TB, node *Node, opts server.Options) *Host {
	t.Helper()
	srv, err := server.New(node, opts)
	if err != nil {
		t.Fatalf("server.New: %v", err)
	}
	gl, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	hl, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	scheme := "http"
	if opts.TLS != nil {
		scheme = "https"
	}
	h := &Host{Node: node, Server: srv, GRPCAddr: gl.Addr().String(), HTTPURL: scheme + "://" + hl.Addr().String()}
	h.wg.Add(2)
	go func() {
		defer h.wg.Done()
		if err := srv.ServeGRPC(gl); err != nil {
			t.Errorf("ServeGRPC: %v", err)
		}
	}()
	go func() {
		defer h.wg.Done()
		if err := srv.ServeHTTP(hl); err != nil {
			t.Errorf("ServeHTTP: %v", err)
		}
	}()
	t.Cleanup(func() { h.Shutdown(t) })
	return h
}

// Shutdown stops the server (once) within ten seconds and waits for its
// serve loops.
func (h *Host) Shutdown(t testing.TB) {
	if h.stopped.Swap(true) {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := h.Server.Shutdown(ctx); err != nil {
		t.Errorf("Shutdown: %v", err)
	}
	h.wg.Wait()
}

// SetUploadsPaused records the switch (the test node uploads nothing).
func (n *Node) SetUploadsPaused(paused bool) error {
	n.UploadsPaused.Store(paused)
	return nil
}

// RetireBelow refuses: the test node has no retention.
func (n *Node) RetireBelow(core.StreamID, core.SegmentID) (int, error) {
	return 0, fmt.Errorf("test node: no retention: %w", server.ErrBadRequest)
}
