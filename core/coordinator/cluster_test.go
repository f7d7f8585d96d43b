package coordinator

import (
	"context"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"

	"github.com/aof2/aof2/conformance/fake"
	"github.com/aof2/aof2/core"
	"github.com/aof2/aof2/core/budget"
	"github.com/aof2/aof2/core/tier2"
	"github.com/aof2/aof2/core/types"
	"github.com/aof2/aof2/internal/testwait"
)

// TestClusterAdmissionNeverWaitsOnTheLog: a cluster member's uploads
// count only once the log records them, and until then its tier 0 cannot
// make room. Here the "log" holds every move until released. Appends
// (what applying entries does) still go on over the budget — waiting
// would stall the apply loop that must later apply the moves — while the
// node refuses new client appends (Tier0Admission). Once the moves apply,
// the segments are evicted and the node takes appends again.
func TestClusterAdmissionNeverWaitsOnTheLog(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), testwait.Default)
	defer cancel()
	remote, err := tier2.New(fake.New(fake.Options{}), tier2.Config{Logger: hclog.NewNullLogger()})
	require.NoError(t, err)
	release := make(chan struct{})
	var c *Coordinator
	cl := &Cluster{
		Leading: func() bool { return true },
		RecordUpload: func(ctx context.Context, k types.SegmentKey, key, etag string) error {
			select {
			case <-release:
			case <-ctx.Done():
				return ctx.Err()
			}
			return c.AdoptUpload(ctx, k, key, etag)
		},
	}
	r := startRig(t, Config{DataDir: t.TempDir(), Tier2: remote, ScanInterval: 10 * time.Millisecond, Cluster: cl,
		Tier0: budget.Config{MaxBytes: 4 * segSize, Policy: budget.PolicyTier2}}, core.Config{})
	c = r.c
	defer r.close(t)
	s, err := r.st.Stream(1)
	require.NoError(t, err)
	require.NoError(t, c.Tier0Admission())

	// About eight segments through a tier 0 of four, none recorded.
	for i := range 3200 {
		_, err := s.AppendCtx(ctx, payload(i), core.AppendOptions{})
		require.NoError(t, err, "record %d: applying never waits for tier-0 room", i)
	}
	require.NoError(t, s.Seal(ctx))
	require.Positive(t, testutil.ToFloat64(c.m.overBudget))
	err = c.Tier0Admission()
	require.ErrorIs(t, err, types.ErrWouldBlock, "over budget: new appends are refused")
	require.ErrorIs(t, err, budget.ErrBudgetExhausted)
	for _, in := range s.SegmentList() {
		ms, _ := s.TierLog().Segment(in.ID)
		require.Empty(t, ms.Tier2.Key, "segment %d: nothing counts as in tier 2 before the log records it", in.ID)
		require.True(t, in.Resident, "segment %d stays in tier 0 until then", in.ID)
	}

	close(release)
	testwait.Until(t, testwait.Default, 10*time.Millisecond, func() bool {
		for _, in := range s.SegmentList() {
			if ms, _ := s.TierLog().Segment(in.ID); ms.Tier2.Key == "" {
				return false
			}
		}
		return c.Tier0Admission() == nil
	}, "every segment recorded, tier 0 back under its budget")
	_, err = s.AppendCtx(ctx, payload(0), core.AppendOptions{})
	require.NoError(t, err)
}
