package coordinator

import (
	"bytes"
	"context"
	"sync"
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
)

type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) { s.mu.Lock(); defer s.mu.Unlock(); return s.b.Write(p) }
func (s *syncBuf) String() string              { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

// TestHydrationRetries: a tier-2 fetch failing past the remote store's own
// retries is retried by the hydration (tier1_hydration_retry_queued) and
// succeeds; failing for good, it ends with tier1_hydration_retry_failed
// and the reader gets the error.
func TestHydrationRetries(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	logs := &syncBuf{}
	logger := hclog.New(&hclog.LoggerOptions{Output: logs, Level: hclog.Info})
	backend := fake.New(fake.Options{})
	remote, err := tier2.New(backend, tier2.Config{Logger: hclog.NewNullLogger(),
		Backoff: tier2.Backoff{Initial: time.Millisecond, Max: 2 * time.Millisecond, Attempts: 2},
		Breaker: tier2.BreakerConfig{Threshold: 1000}})
	require.NoError(t, err)
	dir := t.TempDir()
	r := startRig(t, Config{DataDir: dir, Tier2: remote, ScanInterval: 10 * time.Millisecond, Logger: logger,
		HydrateRetries: 2, HydrateRetryDelay: time.Millisecond,
		Tier0: budget.Config{MaxBytes: 3 * segSize, Policy: budget.PolicyTier2}, Tier1: tier1.Config{MaxBytes: 1}}, core.Config{})
	defer r.close(t)
	st := r.st

	s, err := st.Stream(4)
	require.NoError(t, err)
	for i := range 3000 {
		_, err := s.AppendCtx(ctx, payload(i), core.AppendOptions{})
		require.NoError(t, err)
	}
	require.NoError(t, s.Seal(ctx))
	require.Eventually(t, func() bool {
		ms, _ := s.TierLog().Segment(1)
		return ms.Residency == manifest.UploadedToTier2
	}, 20*time.Second, 5*time.Millisecond, "segment 1 only in tier 2")

	readSeg := func(id core.SegmentID) error {
		rd, err := s.NewReader(core.AtID(core.MakeRecordID(id, 64)))
		require.NoError(t, err)
		defer rd.Close()
		_, err = rd.NextCtx(ctx)
		return err
	}
	get := []fake.Op{fake.OpGet, fake.OpGetFile}
	require.NoError(t, backend.Inject(fake.Fault{Mode: fake.ServerError, Ops: get, Rate: 1, Count: 3}))
	require.NoError(t, readSeg(1), "the third fetch attempt succeeds")
	require.Contains(t, logs.String(), "tier1_hydration_retry_queued")
	require.NotContains(t, logs.String(), "tier1_hydration_retry_failed")

	// Segment 2 is excluded: reading segment 1 started a read-ahead of it
	// that may still be hydrating it from the healthy backend.
	var cold core.SegmentID
	for _, info := range s.SegmentList() {
		if info.ID == 2 {
			continue
		}
		if ms, _ := s.TierLog().Segment(info.ID); !info.Resident && ms.Residency == manifest.UploadedToTier2 {
			cold = info.ID
			break
		}
	}
	require.NotZero(t, cold, "another segment only in tier 2")
	require.NoError(t, backend.Inject(fake.Fault{Mode: fake.ServerError, Ops: get, Rate: 1}))
	require.Error(t, readSeg(cold))
	require.Contains(t, logs.String(), "tier1_hydration_retry_failed")
	backend.ClearFaults()
	require.NoError(t, readSeg(cold), "once tier 2 recovers the segment reads again")
}
