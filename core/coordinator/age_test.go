package coordinator

import (
	"context"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"

	"github.com/aof2/aof2/conformance/fake"
	"github.com/aof2/aof2/core"
	"github.com/aof2/aof2/internal/testwait"
)

// TestSegmentMaxAge: a slow stream's few records, far from filling their
// segment, are sealed and reach tier 2 once the first of them is
// SegmentMaxAge old; the next record starts a new segment and the clock
// again. A stream with no record, and a setting of 0, seal nothing.
func TestSegmentMaxAge(t *testing.T) {
	for _, tc := range []struct {
		name   string
		maxAge time.Duration
	}{{"on", 200 * time.Millisecond}, {"off", 0}} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), testwait.Default)
			defer cancel()
			r := startRig(t, Config{DataDir: t.TempDir(), Tier2: newRemote(t, fake.New(fake.Options{})), ScanInterval: 10 * time.Millisecond,
				SegmentMaxAge: tc.maxAge}, core.Config{})
			defer r.close(t)
			slow, err := r.st.Stream(1)
			require.NoError(t, err)
			empty, err := r.st.Stream(2)
			require.NoError(t, err)
			first, err := slow.AppendDurable(ctx, payload(0), core.AppendOptions{})
			require.NoError(t, err)
			if tc.maxAge == 0 {
				r.c.scanAge(slow)
				r.c.mu.Lock()
				queued := r.c.mu.queued[job{kind: jobAgeSeal, stream: 1, seg: first.Segment()}]
				r.c.mu.Unlock()
				require.False(t, queued, "max_age off: no seal is asked for")
				info, _ := slow.Segment(first.Segment())
				require.Nil(t, info.Footer, "max_age off: the segment stays active")
				return
			}
			testwait.Until(t, testwait.Default, pollTick, func() bool {
				ms, _ := slow.TierLog().Segment(first.Segment())
				return ms.Sealed && ms.Tier2.Key != ""
			}, "the slow stream's segment sealed and uploaded once its first record is max_age old")
			require.Equal(t, 1.0, testutil.ToFloat64(r.c.m.ageSeals))
			for _, info := range empty.SegmentList() {
				require.Nil(t, info.Footer, "a stream with no record seals nothing")
			}
			next, err := slow.AppendDurable(ctx, payload(1), core.AppendOptions{})
			require.NoError(t, err)
			require.Greater(t, next.Segment(), first.Segment(), "the next record starts a new segment")
			testwait.Until(t, testwait.Default, pollTick, func() bool {
				ms, _ := slow.TierLog().Segment(next.Segment())
				return ms.Sealed && ms.Tier2.Key != ""
			}, "the new segment sealed and uploaded in turn")
			require.Equal(t, 2, readAll(t, ctx, slow))
		})
	}
}
