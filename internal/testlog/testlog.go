// Package testlog captures what a JSON hclog logger writes, for tests that
// check which lines a component logs (rate limiting, fields, levels).
package testlog

import (
	"bytes"
	"encoding/json"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
)

// Capture is an io.Writer for a JSON hclog logger (JSONFormat: true) that
// keeps every line. Safe for concurrent use.
type Capture struct {
	mu    sync.Mutex
	buf   bytes.Buffer // guarded by mu
	taken int          // bytes of buf already returned by Take; guarded by mu
}

func (c *Capture) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.buf.Write(p)
}

// Lines decodes every line written so far.
func (c *Capture) Lines(t testing.TB) []map[string]any {
	t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	return decode(t, c.buf.String())
}

// Reset forgets every line written so far.
func (c *Capture) Reset() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.buf.Reset()
	c.taken = 0
}

// Take decodes the lines written since the last Take.
func (c *Capture) Take(t testing.TB) []map[string]any {
	t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	s := c.buf.String()[c.taken:]
	c.taken = c.buf.Len()
	return decode(t, s)
}

func decode(t testing.TB, s string) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(s), "\n") {
		if l == "" {
			continue
		}
		var m map[string]any
		require.NoError(t, json.Unmarshal([]byte(l), &m), l)
		out = append(out, m)
	}
	return out
}
