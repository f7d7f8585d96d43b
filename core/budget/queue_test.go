package budget

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/aof2/aof2/core/types"
	"github.com/aof2/aof2/internal/testwait"
)

// fullBudget returns a budget of n MiB holding n unsafe sealed 1 MiB
// segments of stream 1 (segments 1..n): nothing fits and nothing can go
// until the test marks a segment safe.
func fullBudget(t *testing.T, n int) *Budget {
	t.Helper()
	b := newBudget(t, Config{MaxBytes: int64(n) * mib})
	for s := 1; s <= n; s++ {
		k := key(1, uint64(s))
		_, err := b.TryAdmit(Request{Key: k, Bytes: mib, Active: true})
		require.NoError(t, err)
		require.NoError(t, b.Seal(k))
	}
	return b
}

func TestAdmitImmediate(t *testing.T) {
	b := newBudget(t, Config{MaxBytes: 2 * mib})
	g, err := b.Admit(context.Background(), Request{Key: key(1, 1), Bytes: mib, Active: true})
	require.NoError(t, err)
	require.Equal(t, Grant{Key: key(1, 1), Bytes: mib}, g)
	_, err = b.Admit(context.Background(), Request{Key: key(1, 1), Bytes: mib})
	require.ErrorIs(t, err, ErrExists)
	_, err = b.Admit(context.Background(), Request{Key: key(1, 2), Bytes: 3 * mib})
	require.ErrorIs(t, err, ErrExceedsBudget)
}

func TestQueuePriorityAndFIFO(t *testing.T) {
	b := fullBudget(t, 6)
	ctx := context.Background()
	// Queue, in this order: bg1, fg1, ra1, fg2, bg2, ra2 (each for 1 MiB).
	order := []struct {
		seg  uint64
		prio Priority
	}{{101, PriorityBackground}, {201, PriorityForeground}, {301, PriorityReadAhead},
		{202, PriorityForeground}, {102, PriorityBackground}, {302, PriorityReadAhead}}
	chans := map[uint64]<-chan result{}
	for i, o := range order {
		chans[o.seg] = admitAsync(ctx, b, Request{Key: key(2, o.seg), Bytes: mib, Priority: o.prio, Pin: true})
		waitQueued(t, b, i+1)
	}
	s := b.Stats()
	require.Equal(t, [numPriorities]int{2, 2, 2}, s.Queued)
	_, err := b.TryAdmit(Request{Key: key(3, 1), Bytes: 1, Priority: PriorityForeground})
	requireAdmissionBlock(t, err)

	// Free one segment at a time; each frees room for exactly one waiter.
	want := []uint64{201, 202, 301, 302, 101, 102}
	for i, seg := range want {
		k := key(1, uint64(i+1))
		require.NoError(t, b.MarkInTier1(k)) // eligible: the head waiter takes it as a victim
		r := testwait.Recv(t, chans[seg], testwait.Default, "waiter %d to be admitted", seg)
		require.NoError(t, r.err, "waiter %d", seg)
		require.Equal(t, []types.SegmentKey{k}, evictKeys(r.grant), "waiter %d evicts the one safe segment", seg)
		require.NoError(t, b.Removed(k))
		for _, other := range want[i+1:] {
			require.Empty(t, chans[other], "waiter %d admitted out of turn", other)
		}
		checkInvariants(t, b)
	}
	require.Zero(t, b.Stats().QueueDepth)
}

func TestQueueDrainsOnEveryRelease(t *testing.T) {
	type release func(b *Budget, k types.SegmentKey) error
	tests := []struct {
		name    string
		policy  Policy
		prepare func(t *testing.T, b *Budget, k types.SegmentKey) // makes k unavailable
		free    release
	}{
		{name: "removed (retention)", prepare: func(*testing.T, *Budget, types.SegmentKey) {},
			free: func(b *Budget, k types.SegmentKey) error { return b.Removed(k) }},
		{name: "marked in tier 1", prepare: func(*testing.T, *Budget, types.SegmentKey) {},
			free: func(b *Budget, k types.SegmentKey) error { return b.MarkInTier1(k) }},
		{name: "marked in tier 2", policy: PolicyTier2,
			prepare: func(t *testing.T, b *Budget, k types.SegmentKey) { require.NoError(t, b.MarkInTier1(k)) },
			free:    func(b *Budget, k types.SegmentKey) error { return b.MarkInTier2(k) }},
		{name: "unpinned", prepare: func(t *testing.T, b *Budget, k types.SegmentKey) {
			require.NoError(t, b.MarkInTier1(k))
			require.NoError(t, b.Pin(k))
		}, free: func(b *Budget, k types.SegmentKey) error { return b.Unpin(k) }},
		{name: "budget raised", prepare: func(*testing.T, *Budget, types.SegmentKey) {},
			free: func(b *Budget, _ types.SegmentKey) error { return b.SetMaxBytes(10 * mib) }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := newBudget(t, Config{MaxBytes: mib, Policy: tc.policy})
			k := key(1, 1)
			_, err := b.TryAdmit(Request{Key: k, Bytes: mib, Active: true})
			require.NoError(t, err)
			require.NoError(t, b.Seal(k))
			tc.prepare(t, b, k)
			ch := admitAsync(context.Background(), b, Request{Key: key(2, 1), Bytes: mib, Active: true})
			waitQueued(t, b, 1)
			require.Empty(t, ch)
			require.NoError(t, tc.free(b, k))
			r := testwait.Recv(t, ch, testwait.Default, "the queued admission once room was freed")
			require.NoError(t, r.err)
			checkInvariants(t, b)
		})
	}
}

func TestQueueDrainsOnSeal(t *testing.T) {
	b := newBudget(t, Config{MaxBytes: mib})
	k := key(1, 1)
	_, err := b.TryAdmit(Request{Key: k, Bytes: mib, Active: true, InTier1: true})
	require.NoError(t, err)
	ch := admitAsync(context.Background(), b, Request{Key: key(1, 2), Bytes: mib, Active: true})
	waitQueued(t, b, 1)
	require.Empty(t, ch)
	require.NoError(t, b.Seal(k)) // already in tier 1: sealing makes it a candidate
	r := testwait.Recv(t, ch, testwait.Default, "the queued admission once the seal made a candidate")
	require.NoError(t, r.err)
	require.Equal(t, []types.SegmentKey{k}, evictKeys(r.grant))
}

func TestQueueCancellation(t *testing.T) {
	b := fullBudget(t, 1)
	ctx, cancel := context.WithCancel(context.Background())
	first := admitAsync(ctx, b, Request{Key: key(2, 1), Bytes: mib, Priority: PriorityForeground})
	waitQueued(t, b, 1)
	second := admitAsync(context.Background(), b, Request{Key: key(2, 2), Bytes: mib, Priority: PriorityForeground})
	waitQueued(t, b, 2)

	cancel()
	r := testwait.Recv(t, first, testwait.Default, "the cancelled admission to return")
	require.ErrorIs(t, r.err, context.Canceled)
	require.Equal(t, 1, b.Stats().QueueDepth, "the cancelled waiter left the queue")
	checkInvariants(t, b)

	require.NoError(t, b.MarkInTier1(key(1, 1)))
	r = testwait.Recv(t, second, testwait.Default, "the next waiter to be admitted")
	require.NoError(t, r.err, "the next in line gets the space")
	require.Equal(t, []types.SegmentKey{key(1, 1)}, evictKeys(r.grant))
	_, ok := b.Entry(key(2, 1))
	require.False(t, ok, "nothing was admitted for the cancelled request")
	checkInvariants(t, b)
}

func TestCancelledHeadUnblocksSmallerBehindIt(t *testing.T) {
	b := newBudget(t, Config{MaxBytes: 4 * mib})
	_, err := b.TryAdmit(Request{Key: key(1, 1), Bytes: 3 * mib, Active: true})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	big := admitAsync(ctx, b, Request{Key: key(2, 1), Bytes: 2 * mib})
	waitQueued(t, b, 1)
	small := admitAsync(context.Background(), b, Request{Key: key(3, 1), Bytes: mib})
	waitQueued(t, b, 2)
	require.Empty(t, small, "it would fit, but the larger request is ahead")
	cancel()
	require.ErrorIs(t, (<-big).err, context.Canceled)
	require.NoError(t, (<-small).err)
	checkInvariants(t, b)
}

func TestCancelAfterGrantUndoes(t *testing.T) {
	// Deterministic version of the race: the grant is delivered while ctx is
	// already done; Admit must undo the admission and restore its victims.
	b := fullBudget(t, 1)
	b.mu.Lock()
	w := &waiter{req: Request{Key: key(2, 1), Bytes: mib}, done: make(chan result, 1)}
	w.elem = b.mu.q.fifo[0].PushBack(w)
	b.setScopeLocked(w, scopeGlobal)
	b.mu.Unlock()
	require.NoError(t, b.MarkInTier1(key(1, 1))) // drains: w is admitted, evicting segment 1
	require.Nil(t, w.elem)
	b.mu.Lock()
	r := <-w.done
	require.NoError(t, r.err)
	b.undoLocked(r.grant)
	b.mu.Unlock()
	_, ok := b.Entry(key(2, 1))
	require.False(t, ok)
	info, ok := b.Entry(key(1, 1))
	require.True(t, ok)
	require.Equal(t, "sealed", info.State, "the victim is restored")
	require.Equal(t, int64(mib), b.Stats().Used)
	checkInvariants(t, b)
}

func TestStreamCapBlockedWaiterLetsOthersPass(t *testing.T) {
	b := newBudget(t, Config{MaxBytes: 8 * mib, StreamLimits: map[types.StreamID]int64{1: mib}})
	_, err := b.TryAdmit(Request{Key: key(1, 1), Bytes: mib, Active: true})
	require.NoError(t, err)
	capped := admitAsync(context.Background(), b, Request{Key: key(1, 2), Bytes: mib, Priority: PriorityForeground})
	waitQueued(t, b, 1)
	require.Equal(t, 1, b.Stats().WaitingStreams)

	// Another stream, lower priority, goes past (there is global room).
	g, err := b.TryAdmit(Request{Key: key(2, 1), Bytes: mib, Active: true, Priority: PriorityBackground})
	require.NoError(t, err)
	require.Empty(t, g.Evict)
	g, err = b.Admit(context.Background(), Request{Key: key(2, 2), Bytes: mib, Active: true})
	require.NoError(t, err)
	// The same stream does not.
	_, err = b.TryAdmit(Request{Key: key(1, 3), Bytes: mib, Priority: PriorityBackground})
	requireAdmissionBlock(t, err)
	require.Empty(t, capped)

	require.NoError(t, b.SetStreamLimit(1, 2*mib))
	require.NoError(t, (<-capped).err)
	checkInvariants(t, b)
}

func TestGlobalBlockedWaiterHoldsBackLowerPriorities(t *testing.T) {
	b := newBudget(t, Config{MaxBytes: 2 * mib})
	_, err := b.TryAdmit(Request{Key: key(1, 1), Bytes: mib, Active: true})
	require.NoError(t, err)
	fg := admitAsync(context.Background(), b, Request{Key: key(2, 1), Bytes: 2 * mib, Priority: PriorityReadAhead})
	waitQueued(t, b, 1)
	// 1 MiB is free but a waiter of the same or higher priority is ahead.
	for _, p := range []Priority{PriorityBackground, PriorityReadAhead} {
		_, err = b.TryAdmit(Request{Key: key(3, 1), Bytes: mib, Priority: p})
		requireAdmissionBlock(t, err)
	}
	// A higher priority goes first.
	_, err = b.TryAdmit(Request{Key: key(3, 1), Bytes: mib, Active: true, Priority: PriorityForeground})
	require.NoError(t, err)
	require.NoError(t, b.Seal(key(1, 1)))
	require.NoError(t, b.MarkInTier1(key(1, 1)))
	require.NoError(t, b.Seal(key(3, 1)))
	require.NoError(t, b.MarkInTier1(key(3, 1)))
	r := testwait.Recv(t, fg, testwait.Default, "the foreground admission")
	require.NoError(t, r.err)
	require.Equal(t, []types.SegmentKey{key(1, 1), key(3, 1)}, evictKeys(r.grant))
}

func TestDuplicateWaitersSameKey(t *testing.T) {
	b := fullBudget(t, 2)
	a := admitAsync(context.Background(), b, Request{Key: key(2, 1), Bytes: mib})
	waitQueued(t, b, 1)
	c := admitAsync(context.Background(), b, Request{Key: key(2, 1), Bytes: mib})
	waitQueued(t, b, 2)
	require.NoError(t, b.MarkInTier1(key(1, 1)))
	require.NoError(t, (<-a).err)
	require.ErrorIs(t, (<-c).err, ErrExists, "the second request for the same segment learns it is resident")
	checkInvariants(t, b)
}

func TestCloseFailsWaiters(t *testing.T) {
	b := fullBudget(t, 1)
	ch := admitAsync(context.Background(), b, Request{Key: key(2, 1), Bytes: mib})
	waitQueued(t, b, 1)
	require.NoError(t, b.Close())
	require.NoError(t, b.Close())
	require.ErrorIs(t, (<-ch).err, types.ErrClosed)
	_, err := b.Admit(context.Background(), Request{Key: key(2, 2), Bytes: mib})
	require.ErrorIs(t, err, types.ErrClosed)
	require.NoError(t, b.MarkInTier1(key(1, 1)), "accounting still works after Close")
	checkInvariants(t, b)
}
