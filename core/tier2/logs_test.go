package tier2

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/aof2/aof2/conformance/fake"
	"github.com/aof2/aof2/internal/testlog"
	"github.com/aof2/aof2/pluginapi"
)

// logSink collects the JSON lines of an hclog logger.
type logSink = testlog.Capture

func messages(lines []map[string]any) []string {
	var out []string
	for _, l := range lines {
		out = append(out, fmt.Sprintf("%v/%v", l["@message"], l["reason"]))
	}
	return out
}

// The breaker's error names the failure that opened it, even after a call
// that was in flight when it opened succeeded (which resets the count of
// consecutive failures): never an open breaker without a cause.
func TestBreakerOpenErrorKeepsCause(t *testing.T) {
	clock := newFakeClock()
	var seen []Health
	b := newBreaker(BreakerConfig{Threshold: 2, Cooldown: 10 * time.Second}, clock, func(_, _ BreakerState, h Health) {
		seen = append(seen, h)
	})
	inflight, err := b.allow() // admitted while closed, finishes late
	require.NoError(t, err)
	for range 2 {
		probe, err := b.allow()
		require.NoError(t, err)
		b.done(probe, verdictFailure, errDown)
	}
	require.Equal(t, BreakerOpen, b.health().State)
	require.Len(t, seen, 1)
	assert.ErrorIs(t, seen[0].LastError, errDown, "the change carries the health at the change")
	b.done(inflight, verdictSuccess, nil)

	_, err = b.allow()
	var boe *BreakerOpenError
	require.ErrorAs(t, err, &boe)
	require.ErrorIs(t, boe.Last, errDown)
	assert.Contains(t, err.Error(), "(last failure: backend unavailable: down)")
	assert.NotContains(t, err.Error(), "nil")
	assert.ErrorIs(t, b.health().LastError, errDown, "health too")

	// Half-open: callers refused while the probe runs see the cause too.
	clock.Advance(10 * time.Second)
	probe, err := b.allow()
	require.NoError(t, err)
	_, err = b.allow()
	require.ErrorAs(t, err, &boe)
	require.ErrorIs(t, boe.Last, errDown)
	// A probe that fails differently becomes the cause.
	other := &pluginapi.Error{Code: pluginapi.CodePluginCrashed, Message: "gone"}
	b.done(probe, verdictFailure, other)
	_, err = b.allow()
	require.ErrorAs(t, err, &boe)
	require.ErrorIs(t, boe.Last, other)
	// Closing forgets it.
	clock.Advance(10 * time.Second)
	probe, err = b.allow()
	require.NoError(t, err)
	b.done(probe, verdictSuccess, nil)
	assert.NoError(t, b.health().LastError)
}

// While tier 2 stays down the store logs each state change once, and
// summaries with counts, not a line per failed operation (issue 12 §3).
func TestStoreLogsWhileBroken(t *testing.T) {
	sink := &logSink{}
	e := newEnv(t, fake.Options{}, func(c *Config) {
		c.Logger = hclog.New(&hclog.LoggerOptions{Output: sink, JSONFormat: true, Level: hclog.Info})
		c.Breaker = BreakerConfig{Threshold: 3, Cooldown: 10 * time.Second}
		c.Backoff.Attempts = 2
	})
	ctx := context.Background()
	require.NoError(t, e.fake.Inject(fake.Fault{Mode: fake.ServerError}))
	const uploads = 50
	for i := range uploads {
		_, err := e.store.UploadManifestChunk(ctx, 1, uint64(i), []byte("x"))
		require.Error(t, err)
	}
	lines := sink.Take(t)
	assert.Equal(t, []string{"tier2_upload_failed/unavailable", "tier2_breaker_open/<nil>", "tier2_upload_failed/breaker_open"}, messages(lines),
		"one line per state change, not one per upload")
	assert.Equal(t, float64(uploads), e.metric("aof_tier2_operation_failures_total", map[string]string{"op": "upload"}),
		"metrics still count every failure")
	open := lines[1]
	assert.Contains(t, open["error"], "fake: injected 503", "the breaker says why it opened")
	failed := lines[2]
	assert.Contains(t, failed["error"], "last failure: backend unavailable")
	assert.EqualValues(t, 1, failed["stream_id"], "documented fields stay")

	// The backoff sleeps moved the fake clock; the next failure after the
	// interval writes one summary: the count, the last error.
	e.clock.Advance(30 * time.Second)
	// The cooldown has passed too: probe, fail, open again; repeat.
	for range 5 {
		_, err := e.store.UploadManifestChunk(ctx, 1, 999, []byte("x"))
		require.Error(t, err)
		e.clock.Advance(10 * time.Second)
	}
	lines = sink.Take(t)
	count := map[string]int{}
	for _, l := range lines {
		msg := l["@message"].(string)
		if _, ok := l["repeated"]; !ok {
			count[msg]++ // a line of its own, not a summary
		}
		if msg == "tier2_upload_failed" && l["reason"] == "breaker_open" && count["upload summary"] == 0 {
			count["upload summary"]++
			assert.EqualValues(t, uploads-2, l["repeated"], "every breaker_open failure since the first line")
			assert.Contains(t, l["error"], "circuit breaker open")
			assert.Contains(t, l["error"], "last failure: backend unavailable", "the real last error, never <nil>")
		}
	}
	assert.Equal(t, map[string]int{"tier2_breaker_half_open": 1, "tier2_breaker_open": 1, "upload summary": 1}, count,
		"the first probe and its failure are logged once, the rest are summaries")
	assert.LessOrEqual(t, len(lines), 6)

	// The backend recovers: the breaker closes, uploads recover.
	e.fake.ClearFaults()
	_, err := e.store.UploadManifestChunk(ctx, 1, 1000, []byte("x"))
	require.NoError(t, err)
	lines = sink.Take(t)
	msgs := messages(lines)
	require.Contains(t, msgs, "tier2_breaker_closed/<nil>")
	require.Contains(t, msgs, "tier2_upload_recovered/breaker_open")
	require.Contains(t, msgs, "tier2_upload_recovered/unavailable")
	for _, l := range lines {
		switch l["@message"] {
		case "tier2_breaker_closed":
			assert.EqualValues(t, 5, l["probes_failed"])
			assert.Equal(t, "half_open", l["from"])
		case "tier2_upload_recovered":
			if l["reason"] == "breaker_open" {
				assert.EqualValues(t, uploads-1+5, l["failures"])
			}
		}
	}
}

// Fetches and deletes that keep failing are logged once per reason, then
// summarised; the first success logs the recovery with the count.
func TestFetchAndDeleteFailuresThrottled(t *testing.T) {
	sink := &logSink{}
	e := newEnv(t, fake.Options{}, func(c *Config) {
		c.Logger = hclog.New(&hclog.LoggerOptions{Output: sink, JSONFormat: true, Level: hclog.Info})
		c.Breaker = BreakerConfig{Threshold: 1 << 20} // never opens
		c.Backoff.Attempts = 1
	})
	ctx := context.Background()
	_, err := e.store.UploadManifestChunk(ctx, 1, 1, []byte("x"))
	require.NoError(t, err)
	key := e.store.Layout().Key(Ref{Kind: KindManifestChunk, Stream: 1, ID: 1})
	sink.Take(t)
	require.NoError(t, e.fake.Inject(fake.Fault{Mode: fake.ServerError, Ops: []fake.Op{fake.OpGet, fake.OpDelete}}))
	for range 20 {
		_, _, err := e.store.Fetch(ctx, key, Expect{})
		require.ErrorIs(t, err, pluginapi.ErrUnavailable)
		require.ErrorIs(t, e.store.Delete(ctx, key), pluginapi.ErrUnavailable)
	}
	lines := sink.Take(t)
	assert.Equal(t, []string{"tier2_fetch_failed/unavailable", "tier2_delete_failed/unavailable"}, messages(lines))
	assert.Equal(t, key, lines[0]["key"])
	e.fake.ClearFaults()
	_, _, err = e.store.Fetch(ctx, key, Expect{})
	require.NoError(t, err)
	require.NoError(t, e.store.Delete(ctx, key))
	lines = sink.Take(t)
	assert.Equal(t, []string{"tier2_fetch_recovered/unavailable", "tier2_fetch_success/<nil>", "tier2_delete_recovered/unavailable", "tier2_delete_success/<nil>"}, messages(lines))
	assert.EqualValues(t, 20, lines[0]["failures"])
	assert.Contains(t, lines[0]["last_error"], "fake: injected 503")
}
