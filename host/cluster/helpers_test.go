package cluster

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
	"github.com/stretchr/testify/require"

	"github.com/aof2/aof2/core"
	"github.com/aof2/aof2/core/segment"
	"github.com/aof2/aof2/internal/testnet"
)

// testNode is one member of an in-process cluster: its own store and
// Raft node, over real TCP on loopback.
type testNode struct {
	id, raftAddr, dir string
	faults            *Faults
	logs              raft.LogStore // nil: the cluster's log store
	tiering           Tiering       // nil: none
	peers             PeerReader    // nil: none
	raft              *raft.Config  // nil: testRaftConfig()
	store             *core.Store
	node              *Node
}

type testCluster struct {
	t        *testing.T
	logStore string
	peers    []Peer
	nodes    []*testNode
}

func testRaftConfig() *raft.Config {
	c := raft.DefaultConfig()
	c.HeartbeatTimeout = 300 * time.Millisecond
	c.ElectionTimeout = 300 * time.Millisecond
	c.LeaderLeaseTimeout = 150 * time.Millisecond
	c.CommitTimeout = 5 * time.Millisecond
	return c
}

func newTestCluster(t *testing.T, size int, logStore string) *testCluster {
	t.Helper()
	return newTestClusterWith(t, size, logStore, nil)
}

// newTestClusterWith is newTestCluster with setup called on each node
// before it starts.
func newTestClusterWith(t *testing.T, size int, logStore string, setup func(*testNode)) *testCluster {
	t.Helper()
	c := &testCluster{t: t, logStore: logStore}
	root := t.TempDir()
	addrs := testnet.LoopbackAddrs(t, size)
	for i := range size {
		n := &testNode{id: fmt.Sprintf("n%d", i+1), raftAddr: addrs[i], dir: filepath.Join(root, fmt.Sprintf("n%d", i+1)), faults: NewFaults()}
		if setup != nil {
			setup(n)
		}
		c.nodes = append(c.nodes, n)
		c.peers = append(c.peers, Peer{ID: n.id, Addr: n.raftAddr})
	}
	for _, n := range c.nodes {
		c.start(n)
	}
	t.Cleanup(func() {
		for _, n := range c.nodes {
			c.stop(n)
		}
	})
	return c
}

func (c *testCluster) start(n *testNode) {
	c.t.Helper()
	require.NoError(c.t, c.open(n))
}

// open opens n's store and node; an error is the node's Open's (n.node
// stays nil, n.store open).
func (c *testCluster) open(n *testNode) error {
	c.t.Helper()
	var err error
	rc := n.raft
	if rc == nil {
		rc = testRaftConfig()
	}
	n.store, err = core.Open(filepath.Join(n.dir, "store"), core.Config{SegmentSize: segment.MinCapacity, TailReplayed: true, RequireExtID: true})
	require.NoError(c.t, err)
	node, err := Open(Config{
		NodeID: n.id, RaftAddr: n.raftAddr, API: APIAddr{GRPC: "grpc-" + n.id, HTTP: "http-" + n.id}, Peers: c.peers,
		Dir: filepath.Join(n.dir, "raft"), LogStore: c.logStore, Raft: rc, Faults: n.faults, logs: n.logs, Tiering: n.tiering, PeerReader: n.peers,
		Logger: hclog.New(&hclog.LoggerOptions{Name: n.id, Level: hclog.LevelFromString(os.Getenv("AOF2_TEST_LOG")), Output: testWriter{c.t}}),
	}, n.store)
	if err != nil {
		return err
	}
	n.node = node
	return nil
}

// stop closes the node and its store (a clean stop; a crash is the
// process-level fault run's job).
func (c *testCluster) stop(n *testNode) {
	if n.node != nil {
		_ = n.node.Close()
		n.node = nil
	}
	if n.store != nil {
		_ = n.store.Close()
		n.store = nil
	}
}

// leader waits (bounded) for one running node to lead with its address
// announced.
func (c *testCluster) leader() *testNode {
	c.t.Helper()
	var l *testNode
	require.Eventually(c.t, func() bool {
		l = nil
		for _, n := range c.nodes {
			if n.node != nil && n.node.IsLeader() && n.node.ReadBarrier(context.Background()) == nil {
				l = n
			}
		}
		return l != nil
	}, 20*time.Second, 10*time.Millisecond, "no leader elected")
	return l
}

func (c *testCluster) followers(l *testNode) []*testNode {
	var out []*testNode
	for _, n := range c.nodes {
		if n != l && n.node != nil {
			out = append(out, n)
		}
	}
	return out
}

// converge waits (bounded) until every running node applied what the
// leader committed.
func (c *testCluster) converge() {
	c.t.Helper()
	l := c.leader()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	require.NoError(c.t, l.node.ReadBarrier(ctx))
	idx := l.node.fsm.applied.Load()
	for _, n := range c.nodes {
		if n.node != nil {
			require.NoError(c.t, n.node.fsm.waitApplied(ctx, idx, n.node.closing), "node %s", n.id)
		}
	}
}

// rec is a record as every node must hold it.
type rec struct {
	ID        core.RecordID
	Ordinal   uint64
	ExtID     uint64
	Timestamp int64
	Payload   string
}

func readAll(t *testing.T, st *core.Store, id core.StreamID) []rec {
	t.Helper()
	s, err := st.Lookup(id)
	if errors.Is(err, core.ErrUnknownStream) {
		return nil
	}
	require.NoError(t, err)
	r, err := s.NewReader(core.AtStart())
	require.NoError(t, err)
	defer r.Close()
	var out []rec
	for {
		x, err := r.Next()
		if errors.Is(err, io.EOF) {
			return out
		}
		require.NoError(t, err)
		out = append(out, rec{x.ID, x.Ordinal, x.ExtID, x.Timestamp, string(x.Payload)})
	}
}

// requireSame checks that every running node holds the same records.
func (c *testCluster) requireSame(streams ...core.StreamID) map[core.StreamID][]rec {
	c.t.Helper()
	c.converge()
	out := map[core.StreamID][]rec{}
	for _, s := range streams {
		var want []rec
		for i, n := range c.nodes {
			if n.store == nil {
				continue
			}
			got := readAll(c.t, n.store, s)
			if i == 0 || want == nil {
				want = got
				continue
			}
			require.Equal(c.t, want, got, "stream %d on %s", s, n.id)
		}
		out[s] = want
	}
	return out
}

type testWriter struct{ t *testing.T }

var logMu sync.Mutex

func (w testWriter) Write(p []byte) (int, error) {
	logMu.Lock()
	defer logMu.Unlock()
	w.t.Log(string(p))
	return len(p), nil
}
