package coordinator

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/aof2/aof2/conformance/fake"
	"github.com/aof2/aof2/core"
	"github.com/aof2/aof2/core/budget"
	"github.com/aof2/aof2/core/tier2"
	"github.com/aof2/aof2/core/types"
	"github.com/aof2/aof2/core/vfs"
)

// TestRetentionDropFailureIsRetried: retention drops the head segment
// (DropHead), but removing its tier-0 file fails once (EIO) after the
// segment left the catalog. The budget stops charging it at once, the
// scan retries the drop (Stream.Undropped) and finishes the delete: file,
// warm copy, tier-2 object and manifest. Before, nothing retried it until
// a restart.
func TestRetentionDropFailureIsRetried(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var failed atomic.Bool
	seg1 := segment1Prefix()
	fsys := vfs.Wrap(vfs.OS, vfs.InjectorFunc(func(op vfs.Op) vfs.Fault {
		base := filepath.Base(op.Path)
		if op.Kind == vfs.OpRemove && strings.Contains(op.Path, "/segments/") && strings.HasPrefix(base, seg1) &&
			strings.HasSuffix(base, ".seg") && failed.CompareAndSwap(false, true) {
			return vfs.FaultEIO
		}
		return vfs.NoFault
	}))
	backend := fake.New(fake.Options{})
	remote, err := tier2.New(backend, tier2.Config{Logger: hclog.NewNullLogger()})
	require.NoError(t, err)
	dir := t.TempDir()
	cfg := Config{DataDir: dir, FS: fsys, Tier2: remote, ScanInterval: 10 * time.Millisecond,
		Tier0: budget.Config{Policy: budget.PolicyTier2}}
	r := startRig(t, cfg, core.Config{})
	s := writeUploaded(t, ctx, r, 7, 0, 100) // segment 1
	writeUploaded(t, ctx, r, 7, 100, 100)    // segment 2
	k1 := types.SegmentKey{Stream: 7, Segment: 1}
	_, inBudget := r.c.Budget().Entry(k1)
	require.True(t, inBudget, "segment 1 is resident and counted")

	// Retire segment 1 (the operator's RetireBelow; retention's path is the same: retire -> dropQueued).
	_, err = r.c.RetireBelow(s, 2)
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		_, inCatalog := s.Segment(1)
		return failed.Load() && !inCatalog
	}, 20*time.Second, 10*time.Millisecond, "DropHead ran and its file removal failed once")

	// "could not finish a retention delete; the scan retries it": the scan
	// (every 10 ms) finishes the delete.
	check := func() (problems []string) {
		if ms, known := s.TierLog().Segment(1); known {
			problems = append(problems, fmt.Sprintf("manifest still holds retired segment 1 (pending deletes %v): the delete was never finished", ms.Tier2.PendingDeletes))
		}
		if _, err := remote.Stat(ctx, remote.Layout().SegmentObjectKey(k1)); err == nil {
			problems = append(problems, "tier-2 object of retired segment 1 still exists")
		}
		if r.c.Warm().Contains(k1) {
			problems = append(problems, "warm artifact of retired segment 1 still cached")
		}
		if e, ok := r.c.Budget().Entry(k1); ok {
			problems = append(problems, "tier-0 budget still charges retired segment 1: "+fmt.Sprintf("%+v", e))
		}
		left, _ := filepath.Glob(filepath.Join(dir, "streams", "7", "segments", seg1+"*.seg"))
		if len(left) > 0 {
			problems = append(problems, "tier-0 file of retired segment 1 left on disk: "+strings.Join(left, ","))
		}
		return problems
	}
	if !assert.Eventually(t, func() bool { return len(check()) == 0 }, 20*time.Second, 20*time.Millisecond) {
		for _, p := range check() {
			t.Error(p)
		}
	}
	r.close(t)
}

func segment1Prefix() string { return "00000000000000000001_" }
