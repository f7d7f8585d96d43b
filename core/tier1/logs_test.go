package tier1

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"sync"
	"testing"

	"github.com/hashicorp/go-hclog"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/aof2/aof2/core/types"
	"github.com/aof2/aof2/core/vfs"
	"github.com/aof2/aof2/internal/logthrottle"
)

// lockedBuf collects the JSON lines of an hclog logger.
type lockedBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

// take returns the lines of msg ("": all) written since the last take.
func (l *lockedBuf) take(t *testing.T, msg string) []map[string]any {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []map[string]any
	for _, s := range strings.Split(strings.TrimSpace(l.b.String()), "\n") {
		if s == "" {
			continue
		}
		var m map[string]any
		require.NoError(t, json.Unmarshal([]byte(s), &m), s)
		if msg == "" || m["@message"] == msg {
			out = append(out, m)
		}
	}
	l.b.Reset()
	return out
}

// A compression the coordinator retries every scan and that keeps failing
// logs tier1_compression_failed once, then one summary per interval with
// the count and the last error, and its recovery once (issue 12 §3).
func TestCompressionFailureLoggedOnce(t *testing.T) {
	fsys := vfs.NewMem()
	logs := &lockedBuf{}
	clock := newClock()
	c, _ := openCache(t, Config{FS: fsys, Now: clock.Now, Logger: hclog.New(&hclog.LoggerOptions{Output: logs, JSONFormat: true})})
	missing := Source{Stream: 1, Path: "/data/missing.seg", Segment: 7}
	for range 20 {
		_, err := c.Compress(context.Background(), missing)
		require.Error(t, err)
	}
	first := logs.take(t, "tier1_compression_failed")
	require.Len(t, first, 1, "20 failures, one line")
	assert.Equal(t, "error", first[0]["reason"])
	assert.Contains(t, first[0]["error"], "missing.seg")
	assert.NotContains(t, first[0], "repeated")

	// Nothing more until the interval has passed; then a summary, written
	// by the next failure or by FlushLogs (the coordinator's scan).
	c.FlushLogs()
	require.Empty(t, logs.take(t, "tier1_compression_failed"))
	clock.Advance(logthrottle.DefaultInterval)
	c.FlushLogs()
	summary := logs.take(t, "tier1_compression_failed")
	require.Len(t, summary, 1)
	assert.EqualValues(t, 19, summary[0]["repeated"], "the failures not logged one by one")
	assert.Equal(t, "30s", summary[0]["window"])
	assert.Contains(t, summary[0]["error"], "missing.seg", "the last error")
	assert.NotContains(t, summary[0]["error"], "<nil>")

	for range 5 {
		_, err := c.Compress(context.Background(), missing)
		require.Error(t, err)
	}
	s := writeSegment(t, fsys, "/data", 1, 8, 1<<20, 16<<10, 1)
	_, err := c.Compress(context.Background(), s.source())
	require.NoError(t, err)
	recovered := logs.take(t, "tier1_compression_recovered")
	require.Len(t, recovered, 1)
	assert.EqualValues(t, 25, recovered[0]["failures"], "every failure of the run")
	assert.Contains(t, recovered[0]["last_error"], "missing.seg")
	assert.Equal(t, "info", recovered[0]["@level"])
}

// A hydration that keeps failing (a reader retrying a cold read) logs
// tier1_hydration_failed once per reason, then summaries, and
// tier1_hydration_recovered once; a damaged artifact is named once per
// segment.
func TestHydrationFailureLoggedOnce(t *testing.T) {
	fsys := vfs.NewMem()
	logs := &lockedBuf{}
	clock := newClock()
	c, _ := openCache(t, Config{FS: fsys, Now: clock.Now, Logger: hclog.New(&hclog.LoggerOptions{Output: logs, JSONFormat: true})})
	a := writeSegment(t, fsys, "/data", 1, 1, 1<<20, 16<<10, 1)
	b := writeSegment(t, fsys, "/data", 1, 2, 1<<20, 16<<10, 2)
	for _, s := range []testSegment{a, b} {
		_, err := c.Compress(context.Background(), s.source())
		require.NoError(t, err)
	}
	logs.take(t, "")

	// Not cached: one reason, one line for 20 failures.
	notCached := Expected{Key: a.key(), SegmentCRC: a.expected().SegmentCRC}
	notCached.Key.Segment = 99
	for range 20 {
		_, err := c.Hydrate(context.Background(), HydrateRequest{Expected: notCached, Dest: "/data/h.seg"})
		require.ErrorIs(t, err, ErrNotCached)
	}
	// The wrong checksum for two segments: each named once.
	for _, s := range []testSegment{a, b} {
		exp := s.expected()
		exp.SegmentCRC ^= 1
		for range 10 {
			_, err := c.Hydrate(context.Background(), HydrateRequest{Expected: exp, Dest: "/data/h.seg"})
			require.ErrorIs(t, err, types.ErrCorrupt)
		}
	}
	lines := logs.take(t, hydrationFailed)
	require.Len(t, lines, 3, "%v", lines)
	assert.Equal(t, "failed", lines[0]["reason"])
	assert.Equal(t, "error", lines[0]["@level"])
	assert.Equal(t, "checksum_mismatch", lines[1]["reason"])
	assert.EqualValues(t, 1, lines[1]["segment_id"])
	assert.EqualValues(t, 2, lines[2]["segment_id"])

	clock.Advance(logthrottle.DefaultInterval)
	c.FlushLogs()
	sums := logs.take(t, hydrationFailed)
	require.Len(t, sums, 3, "a summary per key")
	total := 0
	for _, l := range sums {
		total += int(l["repeated"].(float64))
		assert.NotContains(t, l["error"], "<nil>")
		assert.NotEmpty(t, l["error"])
	}
	assert.Equal(t, 19+9+9, total, "every failure not logged on its own")

	// Segment 1 hydrates: its checksum run and the reason-wide run end.
	_, err := c.Hydrate(context.Background(), HydrateRequest{Expected: a.expected(), Dest: "/data/h.seg"})
	require.NoError(t, err)
	rec := logs.take(t, "tier1_hydration_recovered")
	require.Len(t, rec, 2, "%v", rec)
	for _, l := range rec {
		switch l["reason"] {
		case "failed":
			assert.EqualValues(t, 20, l["failures"])
		case "checksum_mismatch":
			assert.EqualValues(t, 10, l["failures"])
			assert.EqualValues(t, 1, l["segment_id"])
		default:
			t.Errorf("unexpected recovery %v", l)
		}
	}
}
