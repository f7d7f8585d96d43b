package coordinator

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/aof2/aof2/conformance/fake"
	"github.com/aof2/aof2/core"
	"github.com/aof2/aof2/core/budget"
	"github.com/aof2/aof2/core/manifest"
	"github.com/aof2/aof2/core/tier1"
	"github.com/aof2/aof2/core/tier2"
	"github.com/aof2/aof2/internal/testlog"
)

// logCapture keeps the lines of a JSON hclog logger.
type logCapture = testlog.Capture

func countBy(lines []map[string]any) map[string]int {
	n := map[string]int{}
	for _, l := range lines {
		n[l["@message"].(string)]++
	}
	return n
}

// idle waits until no job is queued or running.
func (c *Coordinator) waitIdle(t *testing.T) {
	t.Helper()
	require.Eventually(t, func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		return len(c.mu.queued) == 0
	}, 20*time.Second, time.Millisecond)
}

// manualClock is the time of the tier-2 store (its breaker and backoff;
// waits return at once) and of the coordinator's log throttle.
type manualClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *manualClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *manualClock) Sleep(ctx context.Context, _ time.Duration) error { return ctx.Err() }

func (c *manualClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// startClockedRig is startRig with the coordinator's log throttle on clock.
func startClockedRig(t *testing.T, cfg Config, clock *manualClock) *rig {
	t.Helper()
	cfg.LogClock = clock.Now
	return startRig(t, cfg, core.Config{})
}

// noNil checks that no field of any line reads "<nil>" (issue 12 §3: the
// breaker's error said "(last error: <nil>)").
func noNil(t *testing.T, lines []map[string]any) {
	t.Helper()
	for _, l := range lines {
		for k, v := range l {
			assert.NotContains(t, fmt.Sprint(v), "<nil>", "field %q of %v", k, l)
		}
	}
}

// summaries are the lines of msg that stand for more than one occurrence.
func summaries(lines []map[string]any, msg string) []map[string]any {
	var out []map[string]any
	for _, l := range lines {
		if _, ok := l["repeated"]; ok && l["@message"] == msg {
			out = append(out, l)
		}
	}
	return out
}

// occurrences is how many events the lines stand for: 1 each, or a
// summary's "repeated".
func occurrences(lines []map[string]any, msg string, match func(map[string]any) bool) int {
	n := 0
	for _, l := range lines {
		if l["@message"] != msg || (match != nil && !match(l)) {
			continue
		}
		if r, ok := l["repeated"]; ok {
			n += int(r.(float64))
		} else {
			n++
		}
	}
	return n
}

// TestLogFloodBreakerOpen (issue 12 §3): tier 2 fails every call, its
// breaker opens and stays open, and many sealed segments wait for their
// upload. Every scan re-queues every upload and each fails fast. The log
// says so once per state change plus a summary per interval, not twice
// per upload per scan (before the throttle: 2 lines per pending upload
// per scan, 473 lines here); the metrics still count every failure.
func TestLogFloodBreakerOpen(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	capture := &logCapture{}
	log := hclog.New(&hclog.LoggerOptions{Output: capture, JSONFormat: true, Level: hclog.Info})
	clock := &manualClock{now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	backend := fake.New(fake.Options{Seed: 1})
	remote, err := tier2.New(backend, tier2.Config{Logger: log, Clock: clock, Breaker: tier2.BreakerConfig{Cooldown: time.Hour}})
	require.NoError(t, err)
	const segments, scans = 20, 10
	cfg := Config{DataDir: t.TempDir(), Tier2: remote, ScanInterval: time.Hour, Logger: log,
		Tier0: budget.Config{Policy: budget.PolicyTier2}, ReserveSegments: 4 * segments}
	r := startClockedRig(t, cfg, clock)
	defer r.close(t)
	c, st := r.c, r.st
	s, err := st.Stream(1)
	require.NoError(t, err)
	// The segment ids are reserved while tier 2 answers (reserve.go), all
	// of them with no reservation ahead: the failures below are uploads.
	reserveNow(t, c, sk(1, 1))
	capture.Reset() // the lines counted below are the outage's

	require.NoError(t, backend.Inject(fake.Fault{Mode: fake.ServerError}))
	for i := range segments {
		_, err := s.AppendCtx(ctx, payload(i), core.AppendOptions{})
		require.NoError(t, err)
		require.NoError(t, s.Seal(ctx))
	}
	c.waitIdle(t)
	for range scans {
		c.scan()
		c.waitIdle(t)
	}
	require.Equal(t, tier2.BreakerOpen, remote.Health().State)
	// Each upload is preceded by the writer check (writer.go): a scan's
	// attempt fails at the one or the other.
	failures := int(remote.Stats().Failures[tier2.OpUpload] + remote.Stats().Failures[tier2.OpStat])
	require.GreaterOrEqual(t, failures, segments*scans, "every scan retried every upload")
	lines := capture.Lines(t)
	t.Logf("%d log lines for %d failed uploads of %d pending over %d scans: %v", len(lines), failures, segments, scans, countBy(lines))
	n := countBy(lines)
	assert.Equal(t, segments, n["tier1_compression_success"])
	assert.Equal(t, 1, n["tier2_breaker_open"])
	assert.LessOrEqual(t, n["tier2_upload_failed"], 3, "the first failure per reason (unavailable, breaker_open)")
	assert.LessOrEqual(t, n[jobFailed], 4, "the first failure per job kind and reason")
	assert.LessOrEqual(t, len(lines), segments+8)
	for _, l := range lines {
		if l["@message"] == "tier2_breaker_open" || l["reason"] == "breaker_open" {
			assert.Contains(t, l["error"], "fake: injected 503", "the real last error: %v", l)
		}
	}
	noNil(t, lines)

	// 30 s later, the next scan's failures come with summaries that
	// account for every failure.
	capture.Reset()
	clock.Advance(30 * time.Second)
	c.scan()
	c.waitIdle(t)
	after := capture.Lines(t)
	t.Logf("%d more lines after 30 s and one more scan: %v", len(after), countBy(after))
	assert.LessOrEqual(t, len(after), 4)
	// And 30 s later still, the summaries of that scan's failures.
	clock.Advance(30 * time.Second)
	c.flushLogs()
	after = capture.Lines(t)
	assert.LessOrEqual(t, len(after), 8)
	all := append(lines, after...)
	failures = int(remote.Stats().Failures[tier2.OpUpload])
	assert.Equal(t, failures, occurrences(all, "tier2_upload_failed", nil), "first lines plus summaries count every upload failure")
	jobs := testutil.ToFloat64(c.m.jobs.WithLabelValues(jobUpload.String(), "failed")) + testutil.ToFloat64(c.m.jobs.WithLabelValues(jobChunk.String(), "failed"))
	assert.Equal(t, int(jobs), occurrences(all, jobFailed, nil), "and every failed job")
	noNil(t, after)
	// The summaries carry the count, the window and the real last error:
	// the breaker's, naming the failure that opened it.
	var sums []map[string]any
	for _, l := range summaries(after, jobFailed) {
		if l["job"] == jobUpload.String() {
			sums = append(sums, l)
		}
	}
	sums = append(sums, summaries(after, "tier2_upload_failed")...)
	require.GreaterOrEqual(t, len(sums), 2, "summaries of the failed upload jobs and of tier2_upload_failed: %v", after)
	for _, l := range sums {
		assert.Positive(t, l["repeated"], "%v", l)
		assert.Equal(t, "30s", l["window"], "%v", l)
		assert.Equal(t, "breaker_open", l["reason"], "%v", l)
		assert.Contains(t, l["error"], "circuit breaker open", "%v", l)
		assert.Contains(t, l["error"], "(last failure: backend unavailable", "never (last error: <nil>): %v", l)
		assert.Contains(t, l["error"], "fake: injected 503", "%v", l)
	}

	// Tier 2 comes back: the breaker closes, the backlog drains, and the
	// recovery is said once per job kind and event.
	capture.Reset()
	backend.ClearFaults()
	clock.Advance(time.Hour)
	require.Eventually(t, func() bool {
		c.scan()
		c.waitIdle(t)
		for _, info := range s.SegmentList() {
			if ms, _ := s.TierLog().Segment(info.ID); info.Footer != nil && ms.Tier2.Key == "" {
				return false
			}
		}
		return true
	}, 20*time.Second, time.Millisecond, "the backlog drains")
	recovery := capture.Lines(t)
	noNil(t, recovery)
	n = countBy(recovery)
	t.Logf("recovery: %v", n)
	assert.Equal(t, 1, n["tier2_breaker_closed"])
	// The uploads' writer checks (writer.go) failed first, so no upload
	// may have failed itself: its recovery is said at most once.
	assert.LessOrEqual(t, n["tier2_upload_recovered"], 1)
	assert.Positive(t, n["tiering job recovered"])
	assert.GreaterOrEqual(t, n["tier2_upload_success"], segments, "segments and manifest chunks")
}

// Cold reads retried by clients while the tier-2 breaker stays open log
// tier1_hydration_retry_unavailable (and tier2_fetch_failed) once, then
// summaries, and a recovery once tier 2 serves again.
func TestHydrationRetryLogsWhileBroken(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	capture := &logCapture{}
	log := hclog.New(&hclog.LoggerOptions{Output: capture, JSONFormat: true, Level: hclog.Info})
	clock := &manualClock{now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	backend := fake.New(fake.Options{})
	remote, err := tier2.New(backend, tier2.Config{Logger: log, Clock: clock, Breaker: tier2.BreakerConfig{Cooldown: time.Hour}})
	require.NoError(t, err)
	r := startClockedRig(t, Config{DataDir: t.TempDir(), Tier2: remote, ScanInterval: 10 * time.Millisecond, Logger: log,
		Tier0: budget.Config{MaxBytes: 3 * segSize, Policy: budget.PolicyTier2}, Tier1: tier1.Config{MaxBytes: 1}}, clock)
	defer r.close(t)
	s, err := r.st.Stream(4)
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
	// No upload still running: a successful PUT between the failing GETs
	// would reset the breaker's count of consecutive failures.
	require.Eventually(t, func() bool {
		for _, info := range s.SegmentList() {
			if ms, _ := s.TierLog().Segment(info.ID); info.Footer != nil && ms.Tier2.Key == "" {
				return false
			}
		}
		return true
	}, 20*time.Second, 5*time.Millisecond, "every sealed segment in tier 2")

	get := []fake.Op{fake.OpGet, fake.OpGetFile}
	require.NoError(t, backend.Inject(fake.Fault{Mode: fake.ServerError, Ops: get}))
	capture.Reset()
	const reads = 30
	for range reads {
		rd, err := s.NewReader(core.AtID(core.MakeRecordID(1, 64)))
		require.NoError(t, err)
		_, err = rd.NextCtx(ctx)
		rd.Close()
		require.Error(t, err)
	}
	require.Equal(t, tier2.BreakerOpen, remote.Health().State)
	lines := capture.Lines(t)
	n := countBy(lines)
	t.Logf("%d lines for %d failed cold reads: %v", len(lines), reads, n)
	assert.Equal(t, 1, n["tier1_hydration_retry_unavailable"])
	assert.LessOrEqual(t, n["tier2_fetch_failed"], 2, "unavailable, then breaker_open")
	assert.LessOrEqual(t, n["tier2_breaker_open"], 1)

	backend.ClearFaults()
	clock.Advance(time.Hour)
	capture.Reset()
	// The breaker lets one probe through after its cooldown; a background
	// job (a manifest chunk's upload) may take it before this read does.
	extra := 0
	require.Eventually(t, func() bool {
		rd, err := s.NewReader(core.AtID(core.MakeRecordID(1, 64)))
		require.NoError(t, err)
		defer rd.Close()
		if _, err = rd.NextCtx(ctx); errors.Is(err, tier2.ErrBreakerOpen) {
			extra++
			return false
		}
		require.NoError(t, err)
		return true
	}, 10*time.Second, 10*time.Millisecond)
	lines = capture.Lines(t)
	n = countBy(lines)
	assert.Equal(t, 1, n["tier1_hydration_retry_recovered"])
	for _, l := range lines {
		if l["@message"] == "tier1_hydration_retry_recovered" {
			assert.EqualValues(t, reads+extra, l["failures"], "every failed cold read")
			assert.Equal(t, "breaker_open", l["reason"])
			assert.Equal(t, "tier1_hydration_retry_unavailable", l["event"], "which event recovered")
			assert.Contains(t, l["last_error"], "fake: injected 503")
		}
	}
}

// While tier 2 cannot be listed, every scan tries again (new streams wait
// for the list): the failure is logged once, then summarised with its
// count and last error, and the listing's success once.
func TestListingFailureLogsWhileBroken(t *testing.T) {
	capture := &logCapture{}
	log := hclog.New(&hclog.LoggerOptions{Output: capture, JSONFormat: true, Level: hclog.Info})
	clock := &manualClock{now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	backend := fake.New(fake.Options{})
	require.NoError(t, backend.Inject(fake.Fault{Mode: fake.ServerError, Ops: []fake.Op{fake.OpList}}))
	// The breaker stays closed: every scan reaches the backend.
	remote, err := tier2.New(backend, tier2.Config{Logger: log, Clock: clock, Backoff: tier2.Backoff{Attempts: 1},
		Breaker: tier2.BreakerConfig{Threshold: 1 << 20}})
	require.NoError(t, err)
	r := startClockedRig(t, Config{DataDir: t.TempDir(), Tier2: remote, ScanInterval: time.Hour, Logger: log,
		Tier0: budget.Config{Policy: budget.PolicyTier2}}, clock)
	defer r.close(t)
	c := r.c

	const scans = 50
	for range scans {
		c.scan()
	}
	lines := capture.Lines(t)
	require.Equal(t, 1, occurrences(lines, remoteStreamsFailed, func(l map[string]any) bool {
		_, ok := l["repeated"]
		return !ok
	}), "one line for %d failed listings: %v", scans+2, countBy(lines))
	require.Empty(t, summaries(lines, remoteStreamsFailed), "no summary within the interval")
	noNil(t, lines)

	capture.Reset()
	clock.Advance(30 * time.Second)
	c.flushLogs()
	lines = capture.Lines(t)
	sums := summaries(lines, remoteStreamsFailed)
	require.Len(t, sums, 1, "%v", lines)
	// Start's listing, Start's scan, and the scans above; the first was
	// logged on its own.
	assert.EqualValues(t, scans+1, sums[0]["repeated"])
	assert.Equal(t, "unavailable", sums[0]["reason"])
	assert.Contains(t, sums[0]["error"], "fake: injected 503", "the last error")
	noNil(t, lines)

	capture.Reset()
	backend.ClearFaults()
	c.scan()
	lines = capture.Lines(t)
	n := countBy(lines)
	require.Equal(t, 1, n["tier 2 listed: new streams are admitted"], "%v", n)
	assert.Zero(t, n[remoteStreamsFailed])
	for _, l := range lines {
		if l["@message"] == "tier 2 listed: new streams are admitted" {
			assert.EqualValues(t, scans+2, l["failures"])
			assert.Contains(t, l["last_error"], "fake: injected 503")
		}
	}
	_, err = r.st.Stream(7)
	require.NoError(t, err, "streams are created again")
}
