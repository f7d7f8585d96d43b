package cluster

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/stretchr/testify/require"

	"github.com/aof2/aof2/core"
	"github.com/aof2/aof2/core/segment"
)

// clusterPeers reads records from the other members' stores, found by the
// client address they announce ("grpc-<id>"): the read host/node's client
// makes of a peer's API.
type clusterPeers struct {
	mu     sync.Mutex
	stores map[string]*core.Store // guarded by mu; by node id
}

func (p *clusterPeers) set(id string, st *core.Store) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.stores[id] = st
}

func (p *clusterPeers) peer(at APIAddr) (storePeer, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	st := p.stores[strings.TrimPrefix(at.GRPC, "grpc-")]
	if st == nil {
		return storePeer{}, fmt.Errorf("member %s is down", at.GRPC)
	}
	return storePeer{st: st}, nil
}

func (p *clusterPeers) ReadRecords(ctx context.Context, at APIAddr, stream core.StreamID, from uint64, limit int) ([]PeerRecord, error) {
	sp, err := p.peer(at)
	if err != nil {
		return nil, err
	}
	return sp.ReadRecords(ctx, at, stream, from, limit)
}

func (p *clusterPeers) Applied(ctx context.Context, at APIAddr) (uint64, error) {
	sp, err := p.peer(at)
	if err != nil {
		return 0, err
	}
	return sp.Applied(ctx, at)
}

// flipRecord flips one bit in the payload of record id of the stream's
// tail segment in a stopped member's store.
func flipRecord(t *testing.T, n *testNode, stream core.StreamID, id core.RecordID) string {
	t.Helper()
	dir := filepath.Join(n.dir, "store", "streams", fmt.Sprint(stream), "segments")
	names, err := filepath.Glob(filepath.Join(dir, fmt.Sprintf("%020d_*.seg", id.Segment())))
	require.NoError(t, err)
	require.Len(t, names, 1)
	b, err := os.ReadFile(names[0])
	require.NoError(t, err)
	b[int(id.Offset())+segment.RecordHeaderSize+1] ^= 0x20
	require.NoError(t, os.WriteFile(names[0], b, 0o644))
	return names[0]
}

// TestDamagedTailIsRewoundAndReplayed: a follower whose tail segment is
// damaged while it is down starts with the tail rewound to its last intact
// record, and ends with the same records, at the same ids, as its peers:
// its own Raft log replays them when no snapshot is newer than the damage,
// and the snapshot's restore copies them from a peer when one is.
func TestDamagedTailIsRewoundAndReplayed(t *testing.T) {
	for _, snapshot := range []bool{false, true} {
		t.Run(fmt.Sprintf("snapshot=%v", snapshot), func(t *testing.T) {
			peers := &clusterPeers{stores: map[string]*core.Store{}}
			c := newTestClusterWith(t, 3, LogStoreBolt, func(n *testNode) { n.peers = peers })
			for _, n := range c.nodes {
				peers.set(n.id, n.store)
			}
			ctx := context.Background()
			l := c.leader()
			for b := range 20 {
				_, err := l.node.Append(ctx, 1, records(fmt.Sprintf("a%d", b), 5))
				require.NoError(t, err)
			}
			c.converge()
			f := c.followers(l)[0]
			before := readAll(t, f.store, 1)
			require.Len(t, before, 100)
			if snapshot {
				require.NoError(t, f.node.raft.Snapshot().Error())
			}
			peers.set(f.id, nil)
			c.stop(f)
			path := flipRecord(t, f, 1, before[42].ID)
			for b := range 5 {
				_, err := l.node.Append(ctx, 1, records(fmt.Sprintf("b%d", b), 5))
				require.NoError(t, err)
			}

			c.start(f)
			peers.set(f.id, f.store)
			require.Equal(t, uint64(1), f.node.rewound.Load(), "the damaged tail was rewound")
			quarantined, err := filepath.Glob(path + core.QuarantineSuffix + "*")
			require.NoError(t, err)
			require.Len(t, quarantined, 1, "the dropped bytes are kept")
			got := c.requireSame(1)
			require.Len(t, got[1], 125)
			require.Equal(t, before, got[1][:100], "the records from the damage on came back at their ids")
			require.Empty(t, f.node.Status().ApplyFailed)
		})
	}
}

// TestDamagedTailWithNoCopyStaysDamaged: a lone member whose snapshot is
// newer than its damaged tail's last intact record has no copy of what the
// damage took (its log was compacted, and no other member holds it): the
// node does not start, and the damaged file is left as it was.
func TestDamagedTailWithNoCopyStaysDamaged(t *testing.T) {
	c := newTestCluster(t, 1, LogStoreBolt)
	ctx := context.Background()
	n := c.leader()
	for b := range 10 {
		_, err := n.node.Append(ctx, 1, records(fmt.Sprintf("a%d", b), 5))
		require.NoError(t, err)
	}
	c.converge()
	before := readAll(t, n.store, 1)
	require.NoError(t, n.node.raft.Snapshot().Error())
	c.stop(n)
	path := flipRecord(t, n, 1, before[12].ID)
	orig, err := os.ReadFile(path)
	require.NoError(t, err)

	err = c.open(n)
	require.ErrorIs(t, err, ErrDamagedNoCopy)
	require.ErrorIs(t, err, core.ErrDamaged)
	after, err := os.ReadFile(path)
	require.NoError(t, err)
	require.Equal(t, orig, after, "nothing rewound")
}

// TestApplyStoppedAtDamageNamesTheRemedy: a member that stops applying at a
// damaged stream (its start could not rewind it) says to rejoin, not to
// restart: a restart finds the same damage.
func TestApplyStoppedAtDamageNamesTheRemedy(t *testing.T) {
	st, err := core.Open(t.TempDir(), core.Config{TailReplayed: true})
	require.NoError(t, err)
	defer st.Close()
	f := newFSM(context.Background(), st, hclog.NewNullLogger())
	err = f.fail(fmt.Errorf("entry 7: stream 1: %w", &core.DamageError{Stream: 1, Segment: 2, Offset: 64, Reason: "checksum mismatch", Replicated: true}))
	require.ErrorIs(t, err, ErrFSMFailed)
	require.ErrorIs(t, err, core.ErrDamaged)
	require.ErrorContains(t, err, "wipe this member's data directory and restart it to rejoin")
	require.NotContains(t, err.Error(), "accept-loss")
	require.NotContains(t, f.fail(errors.New("later")).Error(), "later", "the first failure stands")
}

// TestStartFallsBackOnlyToASnapshotTheLogCovers: a member keeps two Raft
// snapshots, and its store is behind the newest (its tail was damaged and
// rewound past it) while no peer answers to copy what it lacks. When its
// log still holds every entry after the older snapshot, it starts from
// that one and the entries put back what it lacks; when the log was
// compacted past it, the start fails (ErrBehindSnapshot) instead of
// panicking in hashicorp/raft on an entry it no longer holds, and the
// next start, with a peer answering, heals it.
func TestStartFallsBackOnlyToASnapshotTheLogCovers(t *testing.T) {
	for _, compacted := range []bool{false, true} {
		t.Run(fmt.Sprintf("log compacted=%v", compacted), func(t *testing.T) {
			peers := &clusterPeers{stores: map[string]*core.Store{}}
			c := newTestClusterWith(t, 3, LogStoreBolt, func(n *testNode) {
				n.peers = peers
				if compacted {
					n.raft = testRaftConfig()
					n.raft.TrailingLogs = 1
				}
			})
			for _, n := range c.nodes {
				peers.set(n.id, n.store)
			}
			// Appends are retried on whichever member leads: on loaded
			// cores an election may cut one (ErrOutcomeUnknown), and a
			// record twice changes nothing here.
			write := func(prefix string) {
				for b := range 10 {
					require.Eventually(t, func() bool {
						_, err := c.leader().node.Append(context.Background(), 1, records(fmt.Sprintf("%s%d", prefix, b), 5))
						return err == nil
					}, 20*time.Second, 10*time.Millisecond)
				}
				c.converge()
			}
			// A follower: the snapshot names the leader's client address
			// (announced as it leads), which the copy reads from.
			f := c.followers(c.leader())[0]
			write("a")
			require.NoError(t, f.node.raft.Snapshot().Error(), "the older snapshot")
			older := len(readAll(t, f.store, 1))
			write("b")
			require.NoError(t, f.node.raft.Snapshot().Error(), "the newest snapshot")
			before := readAll(t, f.store, 1)
			require.Greater(t, len(before), older+2)
			for _, n := range c.nodes {
				peers.set(n.id, nil) // no member answers a copy
			}
			c.stop(f)
			metas, err := os.ReadDir(filepath.Join(f.dir, "raft", "snapshots"))
			require.NoError(t, err)
			require.Len(t, metas, 2, "the member keeps two snapshots")
			// A record of an entry between the two snapshots: rewound, the
			// store is past the older snapshot and behind the newest.
			flipRecord(t, f, 1, before[older+2].ID)

			var openErr error
			require.NotPanics(t, func() { openErr = c.open(f) })
			if compacted {
				require.ErrorIs(t, openErr, ErrBehindSnapshot, "the log no longer holds the entries after the older snapshot")
				require.Nil(t, f.node)
				c.stop(f)
				for _, n := range c.nodes {
					if n != f {
						peers.set(n.id, n.store)
					}
				}
				c.start(f)
			} else {
				// The log holds every entry after the older snapshot:
				// starting from it, raft applies them, which puts back
				// what the rewind dropped, no peer needed.
				require.NoError(t, openErr, "the log covers the older snapshot")
				require.NotNil(t, f.node)
			}
			peers.set(f.id, f.store)
			got := c.requireSame(1)
			require.Equal(t, before, got[1])
			require.Empty(t, f.node.Status().ApplyFailed)
		})
	}
}
