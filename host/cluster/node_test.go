package cluster

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/aof2/aof2/core"
	"github.com/aof2/aof2/core/types"
)

func records(prefix string, n int) []Record {
	out := make([]Record, n)
	for i := range out {
		out[i].Payload = fmt.Appendf(nil, "%s-%d", prefix, i)
	}
	return out
}

func TestReplicatesAppends(t *testing.T) {
	for _, store := range []string{LogStoreBolt, LogStoreWAL} {
		t.Run(store, func(t *testing.T) {
			c := newTestCluster(t, 3, store)
			l := c.leader()
			ctx := context.Background()
			var wg sync.WaitGroup
			acked := make([][]core.RecordID, 6)
			for w := range 6 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for b := range 20 {
						a, err := l.node.Append(ctx, core.StreamID(w%3+1), records(fmt.Sprintf("w%d-b%d", w, b), 1+b%7))
						if err != nil {
							t.Errorf("writer %d batch %d: %v", w, b, err)
							return
						}
						acked[w] = append(acked[w], a.IDs...)
					}
				}()
			}
			wg.Wait()
			got := c.requireSame(1, 2, 3)
			total := 0
			for s, recs := range got {
				total += len(recs)
				for i, r := range recs {
					require.Equal(t, uint64(i), r.Ordinal, "stream %d", s)
					require.NotZero(t, r.ExtID)
					if i > 0 {
						require.GreaterOrEqual(t, r.ExtID, recs[i-1].ExtID)
					}
				}
			}
			n := 0
			for _, ids := range acked {
				n += len(ids)
			}
			require.Equal(t, n, total)
		})
	}
}

func TestFollowerSaysNotLeader(t *testing.T) {
	c := newTestCluster(t, 3, LogStoreBolt)
	l := c.leader()
	f := c.followers(l)[0]
	require.Eventually(t, func() bool {
		_, err := f.node.Append(context.Background(), 1, records("x", 1))
		var nl *NotLeaderError
		return errors.As(err, &nl) && nl.LeaderID == l.id && nl.Leader == APIAddr{GRPC: "grpc-" + l.id, HTTP: "http-" + l.id}
	}, 10*time.Second, 10*time.Millisecond)
	_, err := f.node.Append(context.Background(), 1, records("x", 1))
	require.ErrorIs(t, err, ErrNotLeader)
	require.ErrorIs(t, f.node.ReadBarrier(context.Background()), ErrNotLeader)
	require.ErrorIs(t, f.node.Seal(context.Background(), 1, 0), ErrNotLeader)
}

func TestRestartReplaysWithoutDuplicates(t *testing.T) {
	c := newTestCluster(t, 3, LogStoreBolt)
	ctx := context.Background()
	l := c.leader()
	for b := range 10 {
		_, err := l.node.Append(ctx, 1, records(fmt.Sprintf("a%d", b), 5))
		require.NoError(t, err)
	}
	c.converge()
	f := c.followers(l)[0]
	c.stop(f)
	for b := range 10 {
		_, err := l.node.Append(ctx, 1, records(fmt.Sprintf("b%d", b), 5))
		require.NoError(t, err)
	}
	c.start(f)
	c.stop(l)
	c.start(l)
	l = c.leader()
	_, err := l.node.Append(ctx, 1, records("c", 3))
	require.NoError(t, err)
	got := c.requireSame(1)
	require.Len(t, got[1], 103)
}

func TestSealIsReplicated(t *testing.T) {
	c := newTestCluster(t, 3, LogStoreBolt)
	ctx := context.Background()
	l := c.leader()
	_, err := l.node.Append(ctx, 1, records("a", 3))
	require.NoError(t, err)
	require.NoError(t, l.node.Seal(ctx, 1, 0))
	a, err := l.node.Append(ctx, 1, records("b", 3))
	require.NoError(t, err)
	got := c.requireSame(1)
	require.Len(t, got[1], 6)
	require.NotEqual(t, got[1][2].ID.Segment(), a.IDs[0].Segment(), "the seal starts a new segment")
	for _, n := range c.nodes {
		s, err := n.store.Lookup(1)
		require.NoError(t, err)
		require.Equal(t, 1, s.Info().Sealed, "node %s", n.id)
	}
}

func TestPartitionedLeaderLosesItsWrites(t *testing.T) {
	c := newTestCluster(t, 3, LogStoreBolt)
	ctx := context.Background()
	old := c.leader()
	_, err := old.node.Append(ctx, 1, records("before", 4))
	require.NoError(t, err)
	var others []string
	for _, n := range c.followers(old) {
		others = append(others, n.raftAddr)
		n.faults.Set([]string{old.raftAddr}, 0)
	}
	old.faults.Set(others, 0)
	// The cut-off leader cannot commit: its append fails one way or another,
	// and is never acknowledged.
	actx, cancel := context.WithTimeout(ctx, 3*time.Second)
	_, err = old.node.Append(actx, 1, records("lost", 2))
	cancel()
	require.Error(t, err)
	var l *testNode
	require.Eventually(t, func() bool {
		for _, n := range c.followers(old) {
			if n.node.IsLeader() && n.node.ReadBarrier(ctx) == nil {
				l = n
				return true
			}
		}
		return false
	}, 20*time.Second, 10*time.Millisecond)
	_, err = l.node.Append(ctx, 1, records("after", 4))
	require.NoError(t, err)
	for _, n := range c.nodes {
		n.faults.Set(nil, 0)
	}
	got := c.requireSame(1)
	require.Len(t, got[1], 8)
	for _, r := range got[1] {
		require.NotContains(t, r.Payload, "lost")
	}
}

func TestMessageLossConverges(t *testing.T) {
	c := newTestCluster(t, 3, LogStoreBolt)
	ctx := context.Background()
	for _, n := range c.nodes {
		n.faults.Set(nil, 0.02)
	}
	acked := 0
	deadline := time.Now().Add(20 * time.Second)
	for b := 0; b < 60 && time.Now().Before(deadline); b++ {
		var l *testNode
		for _, n := range c.nodes {
			if n.node.IsLeader() {
				l = n
			}
		}
		if l == nil {
			time.Sleep(20 * time.Millisecond)
			continue
		}
		actx, cancel := context.WithTimeout(ctx, 2*time.Second)
		a, err := l.node.Append(actx, 1, records(fmt.Sprintf("b%d", b), 3))
		cancel()
		if err == nil {
			acked += len(a.IDs)
		}
	}
	for _, n := range c.nodes {
		n.faults.Set(nil, 0)
	}
	got := c.requireSame(1)
	require.GreaterOrEqual(t, len(got[1]), acked)
	require.NotZero(t, acked)
}

func TestSnapshotAndRestart(t *testing.T) {
	c := newTestCluster(t, 3, LogStoreBolt)
	ctx := context.Background()
	l := c.leader()
	for b := range 5 {
		_, err := l.node.Append(ctx, core.StreamID(b%2+1), records(fmt.Sprintf("a%d", b), 4))
		require.NoError(t, err)
	}
	c.converge()
	for _, n := range c.nodes {
		require.NoError(t, n.node.raft.Snapshot().Error(), n.id)
	}
	for _, n := range c.nodes {
		c.stop(n)
		c.start(n)
	}
	l = c.leader()
	_, err := l.node.Append(ctx, 1, records("after", 2))
	require.NoError(t, err)
	got := c.requireSame(1, 2)
	require.Len(t, got[1], 14)
	require.Len(t, got[2], 8)
}

// A leader that closes hands leadership over first (Close runs handOff).
func TestCloseHandsLeadershipOver(t *testing.T) {
	c := newTestCluster(t, 3, LogStoreBolt)
	old := c.leader()
	require.NoError(t, old.node.handOff())
	require.False(t, old.node.IsLeader())
	c.stop(old)
	require.NotEqual(t, old, c.leader())
}

// CatchUp on a follower returns once it applied what the leader had
// committed before the call; cut off from every other node, it answers
// ErrNoQuorum within its bound (two heartbeat timeouts), not when the
// caller's context ends.
func TestFollowerCatchUp(t *testing.T) {
	c := newTestCluster(t, 3, LogStoreBolt)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	l := c.leader()
	f := c.followers(l)[0]
	_, err := l.node.Append(ctx, 1, records("x", 50))
	require.NoError(t, err)
	require.NoError(t, f.node.CatchUp(ctx))
	s, err := f.store.Lookup(1)
	require.NoError(t, err)
	require.Equal(t, uint64(50), s.Info().Records, "applied what the leader committed before the call")

	var others []string
	for _, n := range c.nodes {
		if n != f {
			others = append(others, n.raftAddr)
			n.faults.Set([]string{f.raftAddr}, 0)
		}
	}
	f.faults.Set(others, 0)
	err = f.node.CatchUp(ctx)
	require.ErrorIs(t, err, ErrNoQuorum)
	require.NotErrorIs(t, err, context.DeadlineExceeded, "bounded by the node, not by the caller's context")
	for _, n := range c.nodes {
		n.faults.Set(nil, 0)
	}
}

// applyCatchUp is a Tiering whose AdoptDrop catches up, as a hydration
// on the apply goroutine does when it finds no object (countTail's
// reader → droppedMeanwhile → Cluster.CatchUp).
type applyCatchUp struct {
	node atomic.Pointer[Node]
	done chan error
}

func (a *applyCatchUp) AdoptUpload(context.Context, types.SegmentKey, string, string) error {
	return nil
}

func (a *applyCatchUp) AdoptDrop(context.Context, types.SegmentKey) error {
	a.done <- a.node.Load().CatchUp(context.Background())
	return nil
}

// TestCatchUpFromTheApplyLoop: CatchUp called while applying, on the
// leader and on a follower, waits for an entry at or past the one being
// applied — for ever, before. It answers ErrNoQuorum within its bound.
func TestCatchUpFromTheApplyLoop(t *testing.T) {
	hooks := map[string]*applyCatchUp{}
	c := newTestClusterWith(t, 3, LogStoreBolt, func(n *testNode) {
		hooks[n.id] = &applyCatchUp{done: make(chan error, 4)}
		n.tiering = hooks[n.id]
	})
	for _, n := range c.nodes {
		hooks[n.id].node.Store(n.node)
	}
	l := c.leader()
	f := c.followers(l)[0]
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	go func() { _ = l.node.RecordDrop(ctx, types.SegmentKey{Stream: 1, Segment: 1}, "k") }()
	for _, n := range []*testNode{l, f} {
		select {
		case err := <-hooks[n.id].done:
			require.ErrorIs(t, err, ErrNoQuorum, n.id)
		case <-ctx.Done():
			t.Fatalf("%s: CatchUp from the apply loop waited for itself", n.id)
		}
		// Under the FSM's own context (what a replay's read carries) it
		// does not wait at all.
		require.ErrorIs(t, n.node.CatchUp(n.node.fsm.ctx), errCatchUpWhileApplying, n.id)
	}
}

// TestTransferLeadershipToTheLeader: naming the node that leads is not an
// error (the state asked for holds) and changes nothing.
func TestTransferLeadershipToTheLeader(t *testing.T) {
	c := newTestCluster(t, 3, LogStoreWAL)
	l := c.leader()
	ctx := context.Background()
	term := l.node.raft.CurrentTerm()
	require.NoError(t, l.node.TransferLeadership(ctx, l.id))
	require.True(t, l.node.IsLeader())
	require.Equal(t, term, l.node.raft.CurrentTerm())
	other := c.followers(l)[0]
	require.NoError(t, l.node.TransferLeadership(ctx, other.id))
	require.Eventually(t, func() bool { return other.node.IsLeader() }, 10*time.Second, 10*time.Millisecond)
}
