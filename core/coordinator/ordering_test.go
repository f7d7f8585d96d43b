package coordinator

import (
	"context"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/aof2/aof2/core"
	"github.com/aof2/aof2/core/budget"
	"github.com/aof2/aof2/core/manifest"
	"github.com/aof2/aof2/core/tier1"
	"github.com/aof2/aof2/core/types"
	"github.com/aof2/aof2/core/vfs"
)

// TestTier0KeptUntilCompressionRecorded holds the manifest commit that
// would make a segment's CompressionDone durable (its artifact already
// written) and checks that meanwhile the segment's tier-0 file stays: tier
// 1 holds a segment once its record is committed, not when the artifact
// appears. Released, the same tiny budget evicts the file, so the setup
// does evict what it may. (TestTieringPowerLoss found the race: a file
// evicted in that window left, after a crash, a segment with no copy the
// recovered manifest knew of.) A power cut in that window is recovered
// too: the unrecorded artifact verifies, is adopted and recorded at start.
func TestTier0KeptUntilCompressionRecorded(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	mem := vfs.NewMem()
	artifact := tier1.ArtifactPath("/data", types.SegmentKey{Stream: 1, Segment: 1})
	var armed, held atomic.Bool
	release := make(chan struct{})
	var once sync.Once
	unhold := func() { once.Do(func() { close(release) }) }
	defer unhold()
	fsys := vfs.Wrap(mem, vfs.InjectorFunc(func(op vfs.Op) vfs.Fault {
		if op.Kind != vfs.OpSync || !strings.Contains(op.Path, "/manifest/") || !armed.Load() {
			return vfs.NoFault
		}
		if _, err := mem.Stat(artifact); err != nil {
			return vfs.NoFault
		}
		if held.CompareAndSwap(false, true) {
			select {
			case <-release:
			case <-time.After(30 * time.Second):
			}
		}
		return vfs.NoFault
	}))
	r := startRig(t, Config{DataDir: "/data", FS: fsys, Workers: 2, ScanInterval: 2 * time.Millisecond,
		Tier0: budget.Config{MaxBytes: segSize, Policy: budget.PolicyTier1},
		Tier1: tier1.Config{Options: tier1.Options{FrameSize: tier1.MinFrameSize}}}, core.Config{})
	defer r.stop(t)

	s, err := r.st.Stream(1)
	require.NoError(t, err)
	for i := range 20 {
		_, err := s.AppendCtx(ctx, crashPayload(i), core.AppendOptions{})
		require.NoError(t, err)
	}
	armed.Store(true)
	require.NoError(t, s.Seal(ctx))
	first, ok := s.Segment(1)
	require.True(t, ok)
	require.NotNil(t, first.Footer)
	// The next segment needs the first one's room: its admission waits.
	appended := make(chan error, 1)
	go func() {
		_, err := s.AppendCtx(ctx, crashPayload(20), core.AppendOptions{})
		appended <- err
	}()

	require.Eventually(t, held.Load, 10*time.Second, time.Millisecond, "the commit after the artifact was written is held")
	for deadline := time.Now().Add(500 * time.Millisecond); time.Now().Before(deadline); time.Sleep(2 * time.Millisecond) {
		_, err := mem.Stat(first.Path)
		require.NoError(t, err, "the tier-0 file was deleted while its CompressionDone was not durable")
	}
	crashed := mem.CrashClone(vfs.CrashOptions{Rand: rand.New(rand.NewPCG(1, 2))})
	unhold()
	require.Eventually(t, func() bool {
		_, err := mem.Stat(first.Path)
		return vfs.IsNotExist(err)
	}, 10*time.Second, time.Millisecond, "once recorded, the over-budget segment is evicted")
	require.NoError(t, <-appended)
	require.Eventually(t, func() bool {
		ms, _ := s.TierLog().Segment(1)
		return !ms.Tier0
	}, 10*time.Second, time.Millisecond, "the eviction is recorded (after the file is gone)")

	// The power cut while the record was held: the artifact was durable,
	// its record not.
	c2, err := New(Config{DataDir: "/data", FS: crashed, ScanInterval: time.Hour,
		Tier0: budget.Config{MaxBytes: 4 * segSize, Policy: budget.PolicyTier1}})
	require.NoError(t, err)
	st2, err := core.Open("/data", core.Config{FS: crashed, SegmentSize: segSize, Tiering: c2})
	require.NoError(t, err)
	r2 := &rig{dir: "/data", c: c2, st: st2}
	defer r2.stop(t)
	s2, err := st2.Lookup(1)
	require.NoError(t, err)
	before, _ := s2.TierLog().Segment(1)
	require.NotEqual(t, manifest.Tier1Compressed, before.Tier1.State, "the cut came before CompressionDone was durable")
	require.NoError(t, c2.Start(ctx, st2))
	assert.True(t, c2.Warm().Contains(types.SegmentKey{Stream: 1, Segment: 1}), "the unrecorded artifact is adopted")
	after, _ := s2.TierLog().Segment(1)
	assert.Equal(t, manifest.Tier1Compressed, after.Tier1.State, "and recorded")
}
