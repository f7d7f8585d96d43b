package coordinator

import (
	"context"
	"math/rand/v2"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/stretchr/testify/require"

	"github.com/aof2/aof2/conformance/fake"
	"github.com/aof2/aof2/core"
	"github.com/aof2/aof2/core/budget"
	"github.com/aof2/aof2/core/manifest"
	"github.com/aof2/aof2/core/segment"
	"github.com/aof2/aof2/core/tier1"
	"github.com/aof2/aof2/core/tier2"
	"github.com/aof2/aof2/core/types"
	"github.com/aof2/aof2/core/vfs"
)

// openHydrateRig is a store with a coordinator on fsys whose tier-0 budget
// never evicts by itself: the test moves the segment between tiers.
func openHydrateRig(t *testing.T, fsys vfs.FS, backend *fake.Backend) *tierRig {
	t.Helper()
	remote, err := tier2.New(backend, tier2.Config{Logger: hclog.NewNullLogger(), Backoff: tier2.Backoff{Initial: time.Millisecond, Max: 5 * time.Millisecond, Attempts: 2}})
	require.NoError(t, err)
	c, err := New(Config{DataDir: "/data", FS: fsys, Tier2: remote, ScanInterval: 5 * time.Millisecond, Logger: hclog.NewNullLogger(),
		Tier0: budget.Config{MaxBytes: 64 * segment.MinCapacity, Policy: budget.PolicyTier2}})
	require.NoError(t, err)
	st, err := core.Open("/data", core.Config{FS: fsys, SegmentSize: segment.MinCapacity, Tiering: c})
	if err != nil {
		_ = c.Close()
	}
	require.NoError(t, err)
	require.NoError(t, c.Start(context.Background(), st))
	return &tierRig{c: c, st: st, remote: remote}
}

// TestHydrationCrash cuts the power while a segment out of tier 0 is
// hydrated: from tier 2 once the artifact fetched into the warm cache is
// durable (before its CompressionDone, which commits HydrationStarted
// with it), before the tier-0 file is written or after it is durable but
// before HydrationDone; and from the warm cache after the tier-0 file is
// durable. After the restart the fetched artifact must be adopted and
// recorded (not left unknown), and the manifest must say where the
// segment is and that no hydration runs, or
//   - (tier-0 file kept) the next tier-0 eviction's LocalEvicted is read as
//     the warm copy's, and the warm copy is never evicted again: it holds
//     its warm-cache budget until a restart;
//   - (either) the segment never leaves the manifest's index once
//     retention deletes it (a hydration "in progress" is a copy to come),
//     and stays there as NeedsRecovery.
func TestHydrationCrash(t *testing.T) {
	const (
		afterWarmFile  = iota // the fetched artifact is durable, CompressionDone not committed
		atTier0File           // the tier-0 file is not created
		afterTier0File        // the tier-0 file is durable, HydrationDone not committed
	)
	for _, tc := range []struct {
		name string
		cut  int
		warm bool // the warm cache holds the segment: nothing is fetched
	}{
		{"after the warm file", afterWarmFile, false},
		{"before the tier-0 file", atTier0File, false},
		{"after the tier-0 file", afterTier0File, false},
		{"from the warm cache, after the tier-0 file", afterTier0File, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			mem := vfs.NewMem()
			backend := fake.New(fake.Options{})
			var (
				mu      sync.Mutex
				target  string // the file whose durability cuts the power
				renamed bool
				cut     atomic.Bool
			)
			fsys := vfs.Wrap(mem, vfs.InjectorFunc(func(op vfs.Op) vfs.Fault {
				if cut.Load() {
					return vfs.FaultEIO
				}
				mu.Lock()
				defer mu.Unlock()
				switch {
				case target == "":
				case tc.cut == atTier0File && op.Kind == vfs.OpCreate && op.Path == target+tier1.TempSuffix:
					cut.Store(true)
					return vfs.FaultEIO
				case op.Kind == vfs.OpRename && op.Path == target+tier1.TempSuffix:
					renamed = true
				case renamed && op.Kind == vfs.OpSyncDir && op.Path == filepath.Dir(target):
					cut.Store(true) // this sync goes through: the file is durable
				}
				return vfs.NoFault
			}))
			r := openHydrateRig(t, fsys, backend)
			s, err := r.st.Stream(1)
			require.NoError(t, err)
			for i := range 1200 {
				_, err := s.AppendCtx(ctx, payload(i), core.AppendOptions{})
				require.NoError(t, err)
			}
			require.NoError(t, s.Seal(ctx))
			waitUploaded(t, s)
			info := s.SegmentList()[0]
			k := types.SegmentKey{Stream: 1, Segment: info.ID}
			require.NoError(t, r.c.evict(ctx, s, info.ID))
			if !tc.warm {
				require.NoError(t, r.c.evictWarm(ctx, s, info.ID, true))
			}
			ms, _ := s.TierLog().Segment(info.ID)
			require.False(t, ms.Tier0)
			require.Equal(t, tc.warm, ms.Tier1.State == manifest.Tier1Compressed)
			require.Equal(t, tc.warm, r.c.Warm().Contains(k))

			mu.Lock()
			target = info.Path
			if tc.cut == afterWarmFile {
				target = tier1.ArtifactPath("/data", k)
			}
			mu.Unlock()
			require.Error(t, s.Hydrate(ctx, info.ID), "the power goes during the hydration")
			require.True(t, cut.Load())
			r.close()

			clone := mem.CrashClone(vfs.CrashOptions{Rand: rand.New(rand.NewPCG(1, 2))})
			r = openHydrateRig(t, clone, backend)
			defer r.close()
			s, err = r.st.Lookup(1)
			require.NoError(t, err)
			now, ok := s.Segment(info.ID)
			require.True(t, ok)
			resident := tc.cut == afterTier0File
			require.Equal(t, resident, now.Resident, "the tier-0 file is there iff it was durable")
			require.True(t, r.c.Warm().Contains(k), "the warm copy is kept, a fetched one adopted")
			ms, _ = s.TierLog().Segment(info.ID)
			require.Equal(t, manifest.Tier1Compressed, ms.Tier1.State, "the manifest records the warm copy")
			require.Equal(t, resident, ms.Tier0, "the manifest places the segment in tier 0 iff its file is there")
			require.False(t, ms.Hydration.InProgress, "no hydration runs after a restart")

			if resident {
				require.NoError(t, r.c.evict(ctx, s, info.ID))
				require.NoError(t, r.c.evictWarm(ctx, s, info.ID, true))
				require.False(t, r.c.Warm().Contains(k), "the warm copy of a segment only tier 2 holds besides can be evicted")
			}
			require.NoError(t, r.c.retire(ctx, s, info.ID))
			_, known := s.TierLog().Segment(info.ID)
			require.False(t, known, "retention retires the segment from the manifest's index")
		})
	}
}
