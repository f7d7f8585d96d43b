package cluster

import (
	"context"
	"io"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
	"github.com/stretchr/testify/require"

	"github.com/aof2/aof2/core"
	"github.com/aof2/aof2/core/segment"
)

// A stream the snapshot lists without a record (a request refused whole
// created it on every member) exists on a member that restores the
// snapshot too: the number of streams a store holds decides whether an
// entry for a new stream is refused (limits.max_streams), so it must be
// the same on every member, or the same entry appends on one and is
// refused on another.
func TestRestoreKeepsTheSnapshotsEmptyStreams(t *testing.T) {
	open := func() *core.Store {
		st, err := core.Open(t.TempDir(), core.Config{SegmentSize: segment.MinCapacity, TailReplayed: true, MaxStreams: 2})
		require.NoError(t, err)
		t.Cleanup(func() { _ = st.Close() })
		return st
	}
	stA, stB := open(), open()
	fA := newFSM(context.Background(), stA, hclog.NewNullLogger())
	res := fA.ApplyBatch([]*raft.Log{
		entry(1, command{kind: kindMember, member: member{ID: "a", Addr: APIAddr{GRPC: "a"}}}),
		entry(2, appendCommand(1, rec1("a"))),
		entry(3, appendCommand(2, []Record{{Timestamp: 1, Payload: reviewHuge()}})),
	})
	require.ErrorIs(t, res[2].(*appliedEntry).Groups[0].Err, core.ErrRecordTooLarge)
	require.NoError(t, fA.err())
	require.ElementsMatch(t, []core.StreamID{1, 2}, stA.Streams(), "the refused request created stream 2")

	snap, err := fA.Snapshot()
	require.NoError(t, err)
	sink := &memSink{}
	require.NoError(t, snap.Persist(sink))
	fB := newFSM(context.Background(), stB, hclog.NewNullLogger())
	fB.peers, fB.self = storePeer{st: stA}, "b"
	require.NoError(t, fB.Restore(io.NopCloser(&sink.buf)))

	next := []*raft.Log{entry(4, appendCommand(3, rec1("x")))}
	gotA := fA.ApplyBatch(next)[0].(*appliedEntry).Groups[0]
	gotB := fB.ApplyBatch(next)[0].(*appliedEntry).Groups[0]
	require.ErrorIs(t, gotA.Err, core.ErrTooManyStreams)
	require.ErrorIs(t, gotB.Err, core.ErrTooManyStreams, "the same entry on the restored member")
	require.Equal(t, readAll(t, stA, 3), readAll(t, stB, 3))
	require.ElementsMatch(t, stA.Streams(), stB.Streams(), "the restored member holds the snapshot's streams")
}

// A linearizable read's barrier takes the leader's commit index, then
// confirms the lead with a quorum. When the lead changes hands in
// between and comes back (another leader commits meanwhile; this node is
// elected again), the confirmation is of a new term, and the index taken
// in the old one may miss what the other leader acknowledged: the
// barrier fails instead of vouching for it, and a barrier after it sees
// the record.
func TestReadBarrierSpanningALeadershipChangeFails(t *testing.T) {
	c := newTestCluster(t, 3, LogStoreWAL)
	a := c.leader()
	b := c.followers(a)[0]
	ctx := context.Background()
	var once sync.Once
	var acked *Applied
	afterReadIndex = func(n *Node) {
		if n != a.node {
			return
		}
		once.Do(func() {
			moveLead(t, a, b)
			var err error
			acked, err = b.node.Append(ctx, 1, rec1("acknowledged by b"))
			require.NoError(t, err)
			moveLead(t, b, a)
		})
	}
	t.Cleanup(func() { afterReadIndex = nil })
	term := a.node.term()
	err := a.node.ReadBarrier(ctx)
	require.NotNil(t, acked, "the hook ran")
	require.Greater(t, a.node.term(), term)
	require.ErrorIs(t, err, ErrNoQuorum, "a barrier whose read index is of an earlier term than its confirmation")

	require.Eventually(t, func() bool { return a.node.ReadBarrier(ctx) == nil }, 20*time.Second, 10*time.Millisecond)
	require.Equal(t, []string{"acknowledged by b"}, payloads(readAll(t, a.store, 1)))
}

// moveLead transfers the lead from one node to another (retried: a
// transfer times out under load) and waits until to leads and is ready.
func moveLead(t *testing.T, from, to *testNode) {
	t.Helper()
	ctx := context.Background()
	require.Eventually(t, func() bool {
		if !to.node.IsLeader() && from.node.IsLeader() {
			_ = from.node.TransferLeadership(ctx, to.id)
		}
		_, ready := to.node.LeadTerm()
		return ready
	}, 20*time.Second, 10*time.Millisecond, "%s leads", to.id)
}
