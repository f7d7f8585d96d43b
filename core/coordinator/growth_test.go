package coordinator

import (
	"context"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/stretchr/testify/require"

	"github.com/aof2/aof2/conformance/fake"
	"github.com/aof2/aof2/core"
	"github.com/aof2/aof2/core/budget"
	"github.com/aof2/aof2/core/segment"
	"github.com/aof2/aof2/core/tier2"
)

// TestGrowingSegmentsRoundTrip: segments that start at 64 KiB and grow
// go through the tiers like whole ones: the budget admits each at its own
// capacity, they are compressed, uploaded, evicted and hydrated back, and
// a restart finds them all.
func TestGrowingSegmentsRoundTrip(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	dir := t.TempDir()
	backend := fake.New(fake.Options{})
	open := func() *rig {
		remote, err := tier2.New(backend, tier2.Config{Logger: hclog.NewNullLogger()})
		require.NoError(t, err)
		return startRig(t, Config{DataDir: dir, Tier2: remote, ScanInterval: 20 * time.Millisecond,
			Tier0: budget.Config{MaxBytes: 2 * segSize, Policy: budget.PolicyTier2}},
			core.Config{InitialSegmentSize: segment.MinFileCapacity})
	}
	r := open()
	s, err := r.st.Stream(3)
	require.NoError(t, err)
	const records = 2000 // ~5 MiB: 64 KiB … 1 MiB, then 1 MiB segments through a 2 MiB tier 0
	for i := range records {
		_, err := s.AppendCtx(ctx, payload(i), core.AppendOptions{})
		require.NoError(t, err, "record %d", i)
		if i%100 == 99 {
			require.NoError(t, s.FlushAll(ctx))
		}
	}
	require.NoError(t, s.Seal(ctx))
	waitUploaded(t, s)

	// 64 KiB, 128 KiB, then doubling or, when they fill fast, sixteen-fold
	// (core/rollover.go) up to segSize: sizes never shrink.
	segs := s.SegmentList()
	require.Greater(t, len(segs), 3)
	require.Equal(t, int64(64<<10), segs[0].Capacity)
	require.Equal(t, int64(128<<10), segs[1].Capacity)
	require.Equal(t, int64(segSize), segs[len(segs)-1].Capacity)
	evicted := 0
	for i, info := range segs {
		if i > 0 {
			require.GreaterOrEqual(t, info.Capacity, segs[i-1].Capacity, "segment %d", info.ID)
		}
		if !info.Resident {
			evicted++
		}
	}
	require.Positive(t, evicted, "segments left tier 0")
	require.LessOrEqual(t, r.c.Budget().Stats().Used, int64(2*segSize), "tier 0 stays within its budget")
	require.Equal(t, records, readAll(t, ctx, s), "cold reads hydrate growing segments back")
	r.close(t)

	r = open()
	defer r.close(t)
	s, err = r.st.Lookup(3)
	require.NoError(t, err)
	require.Equal(t, records, readAll(t, ctx, s), "after a restart")
	id, err := s.AppendDurable(ctx, payload(records), core.AppendOptions{})
	require.NoError(t, err)
	require.Equal(t, segs[len(segs)-1].ID+1, id.Segment(), "the next id after the newest segment")
}
