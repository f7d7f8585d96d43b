package budget

import (
	"context"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"

	"github.com/aof2/aof2/core/types"
)

func TestConfigValidation(t *testing.T) {
	for name, cfg := range map[string]Config{
		"negative max":        {MaxBytes: -1},
		"negative stream max": {StreamMaxBytes: -1},
		"negative override":   {StreamLimits: map[types.StreamID]int64{3: -5}},
		"unknown policy":      {Policy: 9},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := New(cfg)
			require.ErrorIs(t, err, types.ErrInvalidConfig)
		})
	}
	b := newBudget(t, Config{})
	require.ErrorIs(t, b.SetMaxBytes(-1), types.ErrInvalidConfig)
	require.ErrorIs(t, b.SetStreamLimit(1, -1), types.ErrInvalidConfig)
	_, err := b.TryAdmit(Request{Key: key(1, 1), Bytes: 0})
	require.Error(t, err)
	_, err = b.TryAdmit(Request{Key: key(1, 1), Bytes: 1, Priority: 7})
	require.Error(t, err)
}

func TestBudgetMath(t *testing.T) {
	type admit struct {
		key     types.SegmentKey
		bytes   int64
		blocked bool               // WouldBlock(Admission)
		exceeds bool               // ErrExceedsBudget
		evict   []types.SegmentKey // expected victims
	}
	tests := []struct {
		name   string
		cfg    Config
		sealed []types.SegmentKey // admitted first as safe sealed 4 MiB segments
		steps  []admit
		used   int64
	}{
		{name: "unlimited", cfg: Config{},
			steps: []admit{{key: key(1, 1), bytes: 1 << 40}, {key: key(2, 1), bytes: 1 << 40}}, used: 2 << 40},
		{name: "fits exactly", cfg: Config{MaxBytes: 8 * mib},
			steps: []admit{{key: key(1, 1), bytes: 4 * mib}, {key: key(2, 1), bytes: 4 * mib}}, used: 8 * mib},
		{name: "only actives remain", cfg: Config{MaxBytes: 8 * mib},
			steps: []admit{{key: key(1, 1), bytes: 4 * mib}, {key: key(2, 1), bytes: 4 * mib},
				{key: key(3, 1), bytes: 1, blocked: true}}, used: 8 * mib},
		{name: "larger than budget", cfg: Config{MaxBytes: 8 * mib},
			steps: []admit{{key: key(1, 1), bytes: 8*mib + 1, exceeds: true}}},
		{name: "evicts oldest to fit", cfg: Config{MaxBytes: 12 * mib}, sealed: []types.SegmentKey{key(1, 1), key(2, 1), key(1, 2)},
			steps: []admit{{key: key(3, 1), bytes: 4 * mib, evict: []types.SegmentKey{key(1, 1)}}}, used: 12 * mib},
		{name: "evicts several", cfg: Config{MaxBytes: 12 * mib}, sealed: []types.SegmentKey{key(1, 1), key(2, 1), key(1, 2)},
			steps: []admit{{key: key(3, 1), bytes: 9 * mib, evict: []types.SegmentKey{key(1, 1), key(2, 1), key(1, 2)}}}, used: 9 * mib},
		{name: "stream cap evicts own segments first", cfg: Config{MaxBytes: 100 * mib, StreamMaxBytes: 8 * mib},
			sealed: []types.SegmentKey{key(2, 1), key(1, 1), key(1, 2)},
			steps:  []admit{{key: key(1, 3), bytes: 4 * mib, evict: []types.SegmentKey{key(1, 1)}}}, used: 12 * mib},
		{name: "stream cap without own victims blocks", cfg: Config{StreamMaxBytes: 4 * mib}, sealed: []types.SegmentKey{key(2, 1)},
			steps: []admit{{key: key(1, 1), bytes: 4 * mib}, {key: key(1, 2), bytes: 4 * mib, blocked: true}},
			used:  8 * mib},
		{name: "override raises one stream's cap", cfg: Config{StreamMaxBytes: 4 * mib,
			StreamLimits: map[types.StreamID]int64{1: 8 * mib}},
			steps: []admit{{key: key(1, 1), bytes: 4 * mib}, {key: key(1, 2), bytes: 4 * mib},
				{key: key(2, 1), bytes: 4 * mib}, {key: key(2, 2), bytes: 4 * mib, blocked: true}}, used: 12 * mib},
		{name: "override of zero removes the cap", cfg: Config{StreamMaxBytes: 4 * mib,
			StreamLimits: map[types.StreamID]int64{1: 0}},
			steps: []admit{{key: key(1, 1), bytes: 4 * mib}, {key: key(1, 2), bytes: 4 * mib}}, used: 8 * mib},
		{name: "larger than stream cap", cfg: Config{StreamLimits: map[types.StreamID]int64{1: 4 * mib}},
			steps: []admit{{key: key(1, 1), bytes: 5 * mib, exceeds: true}, {key: key(2, 1), bytes: 5 * mib}}, used: 5 * mib},
		{name: "both caps: stream victims count globally too", cfg: Config{MaxBytes: 16 * mib, StreamMaxBytes: 8 * mib},
			sealed: []types.SegmentKey{key(2, 1), key(1, 1), key(1, 2), key(2, 2)},
			steps:  []admit{{key: key(1, 3), bytes: 4 * mib, evict: []types.SegmentKey{key(1, 1)}}}, used: 16 * mib},
		{name: "both caps: global still short after stream victims", cfg: Config{MaxBytes: 16 * mib, StreamMaxBytes: 8 * mib},
			sealed: []types.SegmentKey{key(2, 1), key(1, 1), key(1, 2), key(2, 2)},
			steps:  []admit{{key: key(1, 3), bytes: 8 * mib, evict: []types.SegmentKey{key(1, 1), key(1, 2)}}}, used: 16 * mib},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := newBudget(t, tc.cfg)
			for _, k := range tc.sealed {
				sealedSafe(t, b, k, 4*mib)
			}
			for i, s := range tc.steps {
				g, err := b.TryAdmit(Request{Key: s.key, Bytes: s.bytes, Active: true})
				switch {
				case s.blocked:
					requireAdmissionBlock(t, err)
				case s.exceeds:
					require.ErrorIs(t, err, ErrExceedsBudget, "step %d", i)
					require.NotErrorIs(t, err, types.ErrWouldBlock)
				default:
					require.NoError(t, err, "step %d", i)
					require.Equal(t, s.evict, evictKeys(g), "step %d", i)
					removeAll(t, b, g)
				}
				checkInvariants(t, b)
			}
			require.Equal(t, tc.used, b.Stats().Used)
		})
	}
}

func TestLRUOrderAndTouch(t *testing.T) {
	b := newBudget(t, Config{MaxBytes: 16 * mib})
	for s := uint64(1); s <= 4; s++ {
		sealedSafe(t, b, key(1, s), 4*mib)
	}
	require.NoError(t, b.Touch(key(1, 1)))
	require.NoError(t, b.Touch(key(1, 3)))
	// LRU order is now 2, 4, 1, 3.
	g, err := b.TryAdmit(Request{Key: key(2, 1), Bytes: 8 * mib, Active: true})
	require.NoError(t, err)
	require.Equal(t, []types.SegmentKey{key(1, 2), key(1, 4)}, evictKeys(g))
	removeAll(t, b, g)
	var order []types.SegmentKey
	for _, e := range b.Entries() {
		order = append(order, e.Key)
	}
	require.Equal(t, []types.SegmentKey{key(1, 1), key(1, 3), key(2, 1)}, order)
	require.ErrorIs(t, b.Touch(key(9, 9)), ErrUnknownSegment)
	require.ErrorIs(t, b.Touch(key(9, 9)), types.ErrNotFound)
	checkInvariants(t, b)
}

func TestSealMakesMostRecent(t *testing.T) {
	b := newBudget(t, Config{MaxBytes: 8 * mib})
	_, err := b.TryAdmit(Request{Key: key(1, 1), Bytes: 4 * mib, Active: true})
	require.NoError(t, err)
	sealedSafe(t, b, key(2, 1), 4*mib)
	require.NoError(t, b.Seal(key(1, 1)))
	require.NoError(t, b.Seal(key(1, 1)), "seal is idempotent")
	require.NoError(t, b.MarkInTier1(key(1, 1)))
	g, err := b.TryAdmit(Request{Key: key(3, 1), Bytes: 4 * mib, Active: true})
	require.NoError(t, err)
	require.Equal(t, []types.SegmentKey{key(2, 1)}, evictKeys(g), "the segment sealed last is the most recent")
}

func TestSafetyPolicies(t *testing.T) {
	tests := []struct {
		name             string
		policy           Policy
		inTier1, inTier2 bool
		evictable        bool
	}{
		{"tier1 policy, nowhere else", PolicyTier1, false, false, false},
		{"tier1 policy, in tier 1", PolicyTier1, true, false, true},
		{"tier1 policy, in tier 2 only", PolicyTier1, false, true, true},
		{"tier2 policy, nowhere else", PolicyTier2, false, false, false},
		{"tier2 policy, in tier 1 only", PolicyTier2, true, false, false},
		{"tier2 policy, in tier 2", PolicyTier2, false, true, true},
		{"tier2 policy, in both", PolicyTier2, true, true, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := newBudget(t, Config{MaxBytes: 4 * mib, Policy: tc.policy})
			k := key(1, 1)
			_, err := b.TryAdmit(Request{Key: k, Bytes: 4 * mib, Active: true})
			require.NoError(t, err)
			if tc.inTier1 {
				require.NoError(t, b.MarkInTier1(k))
			}
			if tc.inTier2 {
				require.NoError(t, b.MarkInTier2(k))
			}
			_, err = b.TryAdmit(Request{Key: key(1, 2), Bytes: 4 * mib, Active: true})
			requireAdmissionBlock(t, err) // still active: never a candidate, whatever its copies
			require.NoError(t, b.Seal(k))
			g, err := b.TryAdmit(Request{Key: key(1, 2), Bytes: 4 * mib, Active: true})
			if !tc.evictable {
				requireAdmissionBlock(t, err)
				require.Empty(t, b.Reclaim())
				return
			}
			require.NoError(t, err)
			require.Equal(t, []types.SegmentKey{k}, evictKeys(g))
			checkInvariants(t, b)
		})
	}
}

func TestUnmarkInTier1MakesUnsafe(t *testing.T) {
	b := newBudget(t, Config{MaxBytes: 4 * mib})
	k := key(1, 1)
	_, err := b.TryAdmit(Request{Key: k, Bytes: 4 * mib, Active: true})
	require.NoError(t, err)
	require.NoError(t, b.Seal(k))
	require.NoError(t, b.MarkInTier1(k))
	require.NoError(t, b.UnmarkInTier1(k))
	_, err = b.TryAdmit(Request{Key: key(1, 2), Bytes: 4 * mib, Active: true})
	requireAdmissionBlock(t, err)
	require.Equal(t, 1, b.Stats().Unsafe)
}

func TestPinning(t *testing.T) {
	b := newBudget(t, Config{MaxBytes: 8 * mib})
	sealedSafe(t, b, key(1, 1), 4*mib)
	sealedSafe(t, b, key(1, 2), 4*mib)
	require.NoError(t, b.Pin(key(1, 1)))
	require.NoError(t, b.Pin(key(1, 1)))
	require.NoError(t, b.Touch(key(1, 2))) // 1 is older, but pinned
	g, err := b.TryAdmit(Request{Key: key(2, 1), Bytes: 4 * mib, Active: true})
	require.NoError(t, err)
	require.Equal(t, []types.SegmentKey{key(1, 2)}, evictKeys(g))
	require.ErrorIs(t, b.Pin(key(1, 2)), ErrEvicting, "a candidate cannot be pinned any more")
	require.ErrorIs(t, b.Touch(key(1, 2)), ErrEvicting)
	removeAll(t, b, g)

	_, err = b.TryAdmit(Request{Key: key(2, 2), Bytes: 4 * mib, Active: true})
	requireAdmissionBlock(t, err) // only an active and a pinned segment remain
	require.ErrorIs(t, b.Removed(key(1, 1)), ErrPinned)
	require.NoError(t, b.Unpin(key(1, 1)))
	_, err = b.TryAdmit(Request{Key: key(2, 2), Bytes: 4 * mib, Active: true})
	requireAdmissionBlock(t, err) // pins nest
	require.NoError(t, b.Unpin(key(1, 1)))
	require.ErrorIs(t, b.Unpin(key(1, 1)), ErrNotPinned)
	g, err = b.TryAdmit(Request{Key: key(2, 2), Bytes: 4 * mib, Active: true})
	require.NoError(t, err)
	require.Equal(t, []types.SegmentKey{key(1, 1)}, evictKeys(g))
	checkInvariants(t, b)
}

func TestHydratedAdmissionPinned(t *testing.T) {
	b := newBudget(t, Config{MaxBytes: 8 * mib})
	k := key(1, 1)
	_, err := b.TryAdmit(Request{Key: k, Bytes: 4 * mib, InTier1: true, InTier2: true, Pin: true})
	require.NoError(t, err)
	info, ok := b.Entry(k)
	require.True(t, ok)
	require.Equal(t, "sealed", info.State)
	require.Equal(t, 1, info.Pins)
	require.False(t, info.Eligible)
	require.NoError(t, b.Unpin(k))
	info, _ = b.Entry(k)
	require.True(t, info.Eligible)
	_, err = b.TryAdmit(Request{Key: k, Bytes: 4 * mib})
	require.ErrorIs(t, err, ErrExists)
}

func TestRemovedAndRestore(t *testing.T) {
	b := newBudget(t, Config{MaxBytes: 8 * mib})
	sealedSafe(t, b, key(1, 1), 4*mib)
	sealedSafe(t, b, key(1, 2), 4*mib)
	g, err := b.TryAdmit(Request{Key: key(1, 3), Bytes: 4 * mib, Active: true})
	require.NoError(t, err)
	require.Equal(t, []types.SegmentKey{key(1, 1)}, evictKeys(g))
	s := b.Stats()
	require.Equal(t, int64(8*mib), s.Used)
	require.Equal(t, int64(4*mib), s.Evicting)

	require.ErrorIs(t, b.Restore(key(1, 2)), ErrNotEvicting)
	require.NoError(t, b.Restore(key(1, 1))) // the delete failed
	s = b.Stats()
	require.Equal(t, int64(12*mib), s.Used, "a restored segment counts again, over budget")
	require.Zero(t, s.Evicting)
	require.Equal(t, []Candidate{{Key: key(1, 1), Bytes: 4 * mib}}, b.Reclaim(), "still the oldest")
	require.NoError(t, b.Removed(key(1, 1)))
	require.ErrorIs(t, b.Removed(key(1, 1)), ErrUnknownSegment)
	require.ErrorIs(t, b.Removed(key(1, 3)), ErrActive)
	require.NoError(t, b.Removed(key(1, 2)), "retention may drop any unpinned sealed segment")
	require.Equal(t, int64(4*mib), b.Stats().Used)
	checkInvariants(t, b)
}

func TestRegisterOverBudgetAndReclaim(t *testing.T) {
	b := newBudget(t, Config{MaxBytes: 8 * mib, StreamLimits: map[types.StreamID]int64{2: 4 * mib}})
	require.NoError(t, b.Register(Segment{Key: key(1, 9), Bytes: 4 * mib, Active: true}))
	for s := uint64(1); s <= 3; s++ {
		require.NoError(t, b.Register(Segment{Key: key(2, s), Bytes: 4 * mib, InTier1: true}))
	}
	require.NoError(t, b.Register(Segment{Key: key(1, 1), Bytes: 4 * mib}))
	require.ErrorIs(t, b.Register(Segment{Key: key(1, 1), Bytes: 4 * mib}), ErrExists)
	require.Error(t, b.Register(Segment{Key: key(1, 2)}))
	require.Equal(t, int64(20*mib), b.Stats().Used, "registration is unconditional")

	got := b.Reclaim()
	// Stream 2 is over its 4 MiB cap by 8 MiB: its segments 1 and 2 go.
	// The total is then 12 MiB > 8 MiB and the oldest eligible segment left
	// is stream 2's third; stream 1's are active or not yet safe.
	require.Equal(t, []Candidate{{key(2, 1), 4 * mib}, {key(2, 2), 4 * mib}, {key(2, 3), 4 * mib}}, got)
	require.Equal(t, int64(8*mib), b.Stats().Used)
	require.Empty(t, b.Reclaim())
	require.NoError(t, b.SetMaxBytes(4*mib))
	require.Empty(t, b.Reclaim(), "over budget, but only an active and an unsafe segment remain")
	require.NoError(t, b.MarkInTier2(key(1, 1)))
	require.Equal(t, []Candidate{{key(1, 1), 4 * mib}}, b.Reclaim())
	checkInvariants(t, b)
}

func TestLimitsChange(t *testing.T) {
	b := newBudget(t, Config{MaxBytes: 4 * mib})
	_, err := b.TryAdmit(Request{Key: key(1, 1), Bytes: 4 * mib, Active: true})
	require.NoError(t, err)
	_, err = b.TryAdmit(Request{Key: key(1, 2), Bytes: 4 * mib, Active: true})
	requireAdmissionBlock(t, err)
	require.NoError(t, b.SetMaxBytes(0))
	_, err = b.TryAdmit(Request{Key: key(1, 2), Bytes: 4 * mib, Active: true})
	require.NoError(t, err)

	require.NoError(t, b.SetStreamLimit(1, 8*mib))
	_, err = b.TryAdmit(Request{Key: key(1, 3), Bytes: 4 * mib, Active: true})
	requireAdmissionBlock(t, err)
	require.Equal(t, int64(8*mib), b.Stats().Streams[1].Limit)
	require.Equal(t, map[types.StreamID]int64{1: 8 * mib}, b.StreamLimits())
	b.ClearStreamLimit(1)
	b.ClearStreamLimit(42) // unknown: nothing to do
	require.Empty(t, b.StreamLimits())
	_, err = b.TryAdmit(Request{Key: key(1, 3), Bytes: 4 * mib, Active: true})
	require.NoError(t, err)

	// The default cap of streams without an override.
	require.NoError(t, b.SetStreamMaxBytes(12*mib))
	_, err = b.TryAdmit(Request{Key: key(1, 4), Bytes: 4 * mib, Active: true})
	requireAdmissionBlock(t, err)
	require.NoError(t, b.SetStreamLimit(1, 0), "an override of 0 lifts the default cap")
	_, err = b.TryAdmit(Request{Key: key(1, 4), Bytes: 4 * mib, Active: true})
	require.NoError(t, err)
	require.ErrorIs(t, b.SetStreamMaxBytes(-1), types.ErrInvalidConfig)
}

func TestStreamStateForgotten(t *testing.T) {
	b := newBudget(t, Config{})
	sealedSafe(t, b, key(7, 1), mib)
	require.Contains(t, b.Stats().Streams, types.StreamID(7))
	require.NoError(t, b.Removed(key(7, 1)))
	require.NotContains(t, b.Stats().Streams, types.StreamID(7), "empty streams leave no state behind")
	checkInvariants(t, b)
}

func TestMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	b := newBudget(t, Config{MaxBytes: 8 * mib, Registerer: reg})
	_, err := New(Config{Registerer: reg})
	require.Error(t, err, "one Budget per registry")
	sealedSafe(t, b, key(1, 1), 4*mib)
	sealedSafe(t, b, key(2, 1), 4*mib)
	g, err := b.TryAdmit(Request{Key: key(3, 1), Bytes: 4 * mib, Active: true})
	require.NoError(t, err)
	removeAll(t, b, g)
	_, err = b.TryAdmit(Request{Key: key(3, 2), Bytes: 8 * mib, Active: true})
	requireAdmissionBlock(t, err)

	n, err := testutil.GatherAndCount(reg, "aof_tier0_activation_queue_depth", "aof_tier0_budget_used_bytes")
	require.NoError(t, err)
	require.Equal(t, numPriorities+2, n, "three priorities, streams 2 and 3 (stream 1 was evicted and forgotten)")
	require.Equal(t, float64(8*mib), testutil.ToFloat64(b.m.budget))
	require.Equal(t, float64(4*mib), testutil.ToFloat64(b.m.used.WithLabelValues("2")))
	require.Equal(t, float64(1), testutil.ToFloat64(b.m.evictions))
	require.Equal(t, float64(1), testutil.ToFloat64(b.m.dropped))
	require.Equal(t, float64(3), testutil.ToFloat64(b.m.admitActive))
	require.Equal(t, float64(1), testutil.ToFloat64(b.m.blocks))
	require.NoError(t, b.Close())
	_, err = b.TryAdmit(Request{Key: key(4, 1), Bytes: 1})
	require.ErrorIs(t, err, types.ErrClosed)
	b2, err := New(Config{Registerer: reg})
	require.NoError(t, err, "Close unregisters")
	require.NoError(t, b2.Close())
}

// TestShrink: a sealed segment whose seal gave back its unused room is
// charged what its file keeps; the room goes to a waiting activation at
// once, and eviction candidates count the smaller size. Active segments,
// raises and unknown keys change nothing.
func TestShrink(t *testing.T) {
	b := newBudget(t, Config{MaxBytes: 8 * mib, Policy: PolicyTier2})
	_, err := b.TryAdmit(Request{Key: key(1, 1), Bytes: 4 * mib, Active: true})
	require.NoError(t, err)
	_, err = b.TryAdmit(Request{Key: key(1, 2), Bytes: 4 * mib, Active: true})
	require.NoError(t, err)
	require.NoError(t, b.Shrink(key(1, 1), mib), "an active segment keeps its capacity")
	require.Equal(t, 8*mib, int(b.Stats().Used))

	// Not in tier 2 yet: no victim, so the third activation waits.
	require.NoError(t, b.Seal(key(1, 1)))
	admitted := make(chan error, 1)
	go func() {
		_, err := b.Admit(context.Background(), Request{Key: key(2, 1), Bytes: 3 * mib, Active: true})
		admitted <- err
	}()
	require.Eventually(t, func() bool { return b.Stats().QueueDepth > 0 }, 10*time.Second, time.Millisecond)
	require.NoError(t, b.Shrink(key(1, 1), mib))
	select {
	case err := <-admitted:
		require.NoError(t, err)
	case <-time.After(10 * time.Second):
		t.Fatal("the room a shrink freed did not admit the waiting activation")
	}
	st := b.Stats()
	require.Equal(t, int64(8*mib), st.Used, "1 MiB sealed + 4 MiB active + 3 MiB active")
	e, ok := b.Entry(key(1, 1))
	require.True(t, ok)
	require.Equal(t, int64(mib), e.Bytes)

	require.NoError(t, b.Shrink(key(1, 1), 2*mib), "never raised")
	require.NoError(t, b.Shrink(key(1, 1), 0))
	e, _ = b.Entry(key(1, 1))
	require.Equal(t, int64(mib), e.Bytes)

	// Eligible bytes follow: the candidate is its shrunk size.
	require.NoError(t, b.MarkInTier2(key(1, 1)))
	require.Equal(t, int64(mib), b.Stats().Evictable)
	require.NoError(t, b.Shrink(key(1, 1), mib/2))
	require.Equal(t, int64(mib/2), b.Stats().Evictable)
	require.Equal(t, []Candidate{{Key: key(1, 1), Bytes: mib / 2}}, b.ReclaimBytes(1))
	require.NoError(t, b.Removed(key(1, 1)))
	require.Equal(t, int64(7*mib), b.Stats().Used)
	require.ErrorIs(t, b.Shrink(key(9, 9), 1), ErrUnknownSegment)
}
