package coordinator

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/aof2/aof2/conformance/fake"
	"github.com/aof2/aof2/core"
	"github.com/aof2/aof2/core/budget"
	"github.com/aof2/aof2/core/vfs"
)

// gateWriter is a log output that holds the worker that logs a failed
// evict job (run → logJob, after c.evict returned and before done(j))
// until the test releases it: a deterministic stand-in for the scheduler
// pausing that goroutine there.
type gateWriter struct {
	mu      sync.Mutex
	armed   bool
	reached chan struct{}
	release chan struct{}
}

func (g *gateWriter) Write(p []byte) (int, error) {
	g.mu.Lock()
	hold := g.armed && strings.Contains(string(p), "tiering job failed") && strings.Contains(string(p), "job=evict")
	if hold {
		g.armed = false
	}
	g.mu.Unlock()
	if hold {
		close(g.reached)
		<-g.release
	}
	return len(p), nil
}

// TestEvictJobEnqueuedWhileRunningRunsAgain: an evict job that fails
// with the file still there gives the segment back to the budget
// (Restore). If the budget hands the same segment out again (an
// admission, the scan's Reclaim or ReclaimBytes) before the worker calls
// done(j), the new evict job runs once the first ends. Before, enqueue
// dropped it as "already queued or running" and the segment stayed
// "evicting" in the budget for good: its file stayed on disk uncounted,
// and relieveDisk took its bytes for an eviction in flight, so a writer
// waiting for disk space waited forever although tier 2 held evictable
// segments.
func TestEvictJobEnqueuedWhileRunningRunsAgain(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var full, stubFails atomic.Bool
	var freed atomic.Int64
	fsys := vfs.Wrap(vfs.OS, vfs.InjectorFunc(func(op vfs.Op) vfs.Fault {
		switch {
		case op.Kind == vfs.OpRemove && strings.HasSuffix(op.Path, ".seg"):
			freed.Add(1)
			full.Store(false)
		case stubFails.Load() && strings.Contains(op.Path, ".cold") && op.Kind == vfs.OpCreate:
			return vfs.FaultEIO // the eviction's cold stub cannot be written: the file stays
		case full.Load() && strings.HasSuffix(op.Path, ".seg.prep") && (op.Kind == vfs.OpCreate || op.Kind == vfs.OpAllocate):
			return vfs.FaultNoSpace
		}
		return vfs.NoFault
	}))
	gate := &gateWriter{reached: make(chan struct{}), release: make(chan struct{})}
	log := hclog.New(&hclog.LoggerOptions{Output: gate, Level: hclog.Warn})
	r := startRig(t, Config{DataDir: t.TempDir(), FS: fsys, Tier2: newRemote(t, fake.New(fake.Options{})), ScanInterval: 10 * time.Millisecond,
		Logger: log, Registerer: prometheus.NewRegistry(), Tier0: budget.Config{Policy: budget.PolicyTier2},
		Disk: Disk{Usage: func() (DiskUsage, error) { return DiskUsage{}, errors.New("no usage in this test") }}}, core.Config{})
	defer r.close(t)
	s, err := r.st.Stream(1)
	require.NoError(t, err)
	writeAndSeal(t, ctx, s, 1500)
	waitInTier2(t, s)
	require.GreaterOrEqual(t, len(s.SegmentList()), 4)
	c := r.c

	// The budget hands segment 1 out (as relieveDisk or an admission does)
	// and a worker runs its evict job; the stub write fails, so evict
	// Restores it. The worker is held while it logs the failure.
	k := sk(1, 1)
	stubFails.Store(true)
	gate.mu.Lock()
	gate.armed = true
	gate.mu.Unlock()
	cands := c.budget.ReclaimBytes(1)
	require.Equal(t, []budget.Candidate{{Key: k, Bytes: cands[0].Bytes}}, cands)
	c.enqueue(job{kind: jobEvict, stream: k.Stream, seg: k.Segment})
	select {
	case <-gate.reached:
	case <-ctx.Done():
		t.Fatal("the evict job did not fail")
	}
	stubFails.Store(false)
	require.Zero(t, c.budget.Evicting(), "the failed evict restored segment 1")

	// Meanwhile another goroutine hands segment 1 out again and queues
	// its eviction: enqueue drops it (the job is "running").
	cands = c.budget.ReclaimBytes(1)
	require.Len(t, cands, 1)
	require.Equal(t, k, cands[0].Key)
	c.enqueue(job{kind: jobEvict, stream: k.Stream, seg: k.Segment})
	close(gate.release) // the worker finishes: done(j)

	// The scans must settle segment 1 one way or the other: evicted
	// (Removed) or given back (Restore). (assert, not require: the
	// consequence below is checked too.)
	assert.Eventually(t, func() bool { return c.budget.Evicting() == 0 }, 2*time.Second, 10*time.Millisecond,
		"segment 1 stays 'being evicted' for good with no job for it (resident: %v)", func() bool { i, _ := s.Segment(1); return i.Resident }())

	// The disk fills: the next segment's preparation gets ENOSPC. Segments
	// 2.. are in tier 2 and evictable.
	require.Positive(t, c.budget.Stats().Evictable)
	full.Store(true)
	actx, acancel := context.WithTimeout(ctx, 3*time.Second)
	defer acancel()
	var aerr error
	for i := 1500; i < 3000 && aerr == nil; i++ {
		_, aerr = s.AppendCtx(actx, payload(i), core.AppendOptions{})
	}
	require.NoError(t, aerr, "the writer waits for disk space forever although tier 2 holds evictable segments (tier-0 files evicted: %d)", freed.Load())
	require.Zero(t, c.budget.Evicting(), "segment 1 is still 'being evicted' with no job for it")
}
