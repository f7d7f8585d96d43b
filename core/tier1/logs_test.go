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

// take returns the lines of msg written since the last take.
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
		if m["@message"] == msg {
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
