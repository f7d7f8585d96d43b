package coordinator

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/stretchr/testify/require"

	"github.com/aof2/aof2/conformance/fake"
	"github.com/aof2/aof2/core"
	"github.com/aof2/aof2/core/budget"
	"github.com/aof2/aof2/core/manifest"
	"github.com/aof2/aof2/core/tier1"
	"github.com/aof2/aof2/core/tier2"
	"github.com/aof2/aof2/core/types"
)

func openWarmRig(t *testing.T, dir string, backend *fake.Backend, warmBytes int64) *rig {
	t.Helper()
	remote, err := tier2.New(backend, tier2.Config{Logger: hclog.NewNullLogger()})
	require.NoError(t, err)
	return startRig(t, Config{DataDir: dir, Tier2: remote, ScanInterval: 20 * time.Millisecond,
		Tier0: budget.Config{MaxBytes: 3 * segSize, Policy: budget.PolicyTier2},
		Tier1: tier1.Config{MaxBytes: warmBytes}}, core.Config{})
}

// TestWarmEviction: with a tiny warm budget, artifacts of segments that
// left tier 0 (and are verified in tier 2) are evicted and recorded, those
// of segments still in tier 0 are kept, reads fetch from tier 2, and a
// restart agrees with the manifest. An artifact that vanished without its
// record (a crash between delete and commit) is recorded at start.
func TestWarmEviction(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	dir, backend := t.TempDir(), fake.New(fake.Options{})
	r := openWarmRig(t, dir, backend, 1)
	s, err := r.st.Stream(5)
	require.NoError(t, err)
	const records = 4000
	for i := range records {
		_, err := s.AppendCtx(ctx, payload(i), core.AppendOptions{})
		require.NoError(t, err)
	}
	require.NoError(t, s.Seal(ctx))
	require.Eventually(t, func() bool {
		for _, info := range s.SegmentList() {
			if ms, _ := s.TierLog().Segment(info.ID); ms.Tier2.Key == "" {
				return false
			}
		}
		return true
	}, 20*time.Second, 10*time.Millisecond, "every segment reaches tier 2")

	warmOf := func(s *core.Stream, info core.SegmentInfo) (bool, manifest.SegmentState) {
		ms, _ := s.TierLog().Segment(info.ID)
		return r.c.Warm().Contains(types.SegmentKey{Stream: s.ID(), Segment: info.ID}), ms
	}
	require.Eventually(t, func() bool {
		for _, info := range s.SegmentList() {
			// The manifest records an eviction after the file is gone.
			if in, ms := warmOf(s, info); !info.Resident && (in || ms.Tier1.State != manifest.Tier1None) {
				return false
			}
		}
		return true
	}, 20*time.Second, 10*time.Millisecond, "every artifact of a segment outside tier 0 is evicted")
	cold := 0
	for _, info := range s.SegmentList() {
		in, ms := warmOf(s, info)
		if info.Resident {
			require.True(t, in, "segment %d is in tier 0: its warm copy stays", info.ID)
			continue
		}
		cold++
		require.Equal(t, manifest.Tier1None, ms.Tier1.State, "segment %d: the eviction is recorded", info.ID)
		require.Equal(t, manifest.UploadedToTier2, ms.Residency)
	}
	require.Greater(t, cold, 3)
	require.Equal(t, records, readAll(t, ctx, s), "cold segments are fetched from tier 2")
	r.close(t)

	// Restart with an unlimited warm cache; then lose one artifact behind
	// the manifest's back and restart again.
	r = openWarmRig(t, dir, backend, 0)
	s, err = r.st.Lookup(5)
	require.NoError(t, err)
	require.Equal(t, records, readAll(t, ctx, s))
	var victim core.SegmentInfo
	require.Eventually(t, func() bool {
		for _, info := range s.SegmentList() {
			if in, ms := warmOf(s, info); in && !info.Resident && ms.Tier1.State == manifest.Tier1Compressed && ms.Tier2.Key != "" {
				victim = info
				return true
			}
		}
		return false
	}, 20*time.Second, 10*time.Millisecond, "a segment outside tier 0 with a recorded warm copy")
	path := r.c.Warm().Path(types.SegmentKey{Stream: 5, Segment: victim.ID})
	r.close(t)
	require.NoError(t, os.Remove(path))

	r = openWarmRig(t, dir, backend, 0)
	defer r.close(t)
	s, err = r.st.Lookup(5)
	require.NoError(t, err)
	ms, _ := s.TierLog().Segment(victim.ID)
	require.Equal(t, manifest.Tier1None, ms.Tier1.State, "start records the lost warm copy")
	require.Equal(t, manifest.UploadedToTier2, ms.Residency)
	require.Equal(t, records, readAll(t, ctx, s))
}
