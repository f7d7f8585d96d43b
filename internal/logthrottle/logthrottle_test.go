package logthrottle

import (
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/aof2/aof2/internal/testlog"
	"github.com/hashicorp/go-hclog"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

type sink = testlog.Capture

func setup() (*Throttle, *sink, *clock) {
	out := &sink{}
	clk := &clock{now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	log := hclog.New(&hclog.LoggerOptions{Output: out, JSONFormat: true, Level: hclog.Trace})
	return New(log, Config{Interval: 30 * time.Second, Now: clk.Now}), out, clk
}

func upload(seg int, err error) Failure {
	return Failure{Msg: "tier2_upload_failed", Reason: "breaker_open", Recovered: "tier2_upload_recovered",
		Args: []any{"stream_id", 1, "segment_id", seg, "error", err}}
}

func TestFirstLineThenSummary(t *testing.T) {
	th, out, clk := setup()
	th.Fail(upload(1, errors.New("boom 1")))
	lines := out.Take(t)
	require.Len(t, lines, 1, "the first occurrence is logged at once")
	l := lines[0]
	assert.Equal(t, "tier2_upload_failed", l["@message"])
	assert.Equal(t, "warn", l["@level"], "warn by default")
	assert.Equal(t, "breaker_open", l["reason"])
	assert.EqualValues(t, 1, l["segment_id"])
	assert.Equal(t, "boom 1", l["error"])
	assert.NotContains(t, l, "repeated")

	for i := 2; i <= 100; i++ {
		clk.Advance(100 * time.Millisecond)
		th.Fail(upload(i, fmt.Errorf("boom %d", i)))
	}
	th.Flush()
	require.Empty(t, out.Take(t), "repeats inside the interval are counted, not logged")

	clk.Advance(20 * time.Second) // 29.9 s after the first line
	th.Flush()
	require.Empty(t, out.Take(t))
	clk.Advance(100 * time.Millisecond)
	th.Fail(upload(101, errors.New("boom 101")))
	lines = out.Take(t)
	require.Len(t, lines, 1, "one summary once the interval has passed")
	l = lines[0]
	assert.Equal(t, "tier2_upload_failed", l["@message"], "a summary keeps the event name")
	assert.EqualValues(t, 100, l["repeated"], "the 99 suppressed occurrences and this one")
	assert.Equal(t, "30s", l["window"])
	assert.Equal(t, "boom 101", l["error"], "the latest error")
	assert.EqualValues(t, 101, l["segment_id"], "the latest occurrence's fields")
	assert.Equal(t, "breaker_open", l["reason"])
}

func TestFlushWritesDueSummary(t *testing.T) {
	th, out, clk := setup()
	th.Fail(upload(1, errors.New("a")))
	th.Fail(upload(2, errors.New("b")))
	th.Fail(upload(3, errors.New("c")))
	require.Len(t, out.Take(t), 1)
	clk.Advance(30 * time.Second)
	th.Flush()
	lines := out.Take(t)
	require.Len(t, lines, 1)
	assert.EqualValues(t, 2, lines[0]["repeated"])
	assert.Equal(t, "c", lines[0]["error"])
	clk.Advance(time.Hour)
	th.Flush()
	require.Empty(t, out.Take(t), "nothing more to say")
}

func TestKeysAreSeparate(t *testing.T) {
	th, out, _ := setup()
	f := upload(1, errors.New("x"))
	th.Fail(f)
	f.Reason = "unavailable"
	th.Fail(f)
	f.Group = "other"
	th.Fail(f)
	f.Msg = "tier2_fetch_failed"
	f.Level = hclog.Error
	th.Fail(f)
	th.Fail(f)
	lines := out.Take(t)
	require.Len(t, lines, 4, "one first line per message, group and reason")
	assert.Equal(t, "error", lines[3]["@level"])
}

func TestRecovery(t *testing.T) {
	th, out, clk := setup()
	th.Succeed("tier2_upload_failed", "")
	require.Empty(t, out.Take(t), "a success with nothing failing says nothing")

	for i := range 5 {
		th.Fail(upload(i, fmt.Errorf("e%d", i)))
	}
	clk.Advance(12 * time.Second)
	th.Succeed("tier2_fetch_failed", "")
	require.Len(t, out.Take(t), 1, "another event's success ends nothing")
	th.Succeed("tier2_upload_failed", "", "op", "upload")
	lines := out.Take(t)
	require.Len(t, lines, 1)
	l := lines[0]
	assert.Equal(t, "tier2_upload_recovered", l["@message"])
	assert.Equal(t, "info", l["@level"])
	assert.EqualValues(t, 5, l["failures"], "every occurrence of the run")
	assert.Equal(t, "12s", l["failing_for"])
	assert.Equal(t, "e4", l["last_error"])
	assert.Equal(t, "upload", l["op"])
	assert.Equal(t, "breaker_open", l["reason"])
	th.Succeed("tier2_upload_failed", "")
	require.Empty(t, out.Take(t), "one recovery line per run")
}

func TestRecoveryByGroup(t *testing.T) {
	th, out, _ := setup()
	job := func(kind string) Failure {
		return Failure{Msg: "tiering job failed", Group: kind, Reason: "error", Recovered: "tiering job recovered", Args: []any{"job", kind}}
	}
	th.Fail(job("upload"))
	th.Fail(job("compress"))
	require.Len(t, out.Take(t), 2)
	th.Succeed("tiering job failed", "compress", "job", "compress")
	lines := out.Take(t)
	require.Len(t, lines, 1)
	assert.Equal(t, "compress", lines[0]["job"])
	th.Succeed("tiering job failed", "compress")
	require.Empty(t, out.Take(t))
	th.Succeed("tiering job failed", "upload")
	require.Len(t, out.Take(t), 1)
}

// A failure that comes and goes many times a second writes a bounded
// number of lines, and the summary counts every suppressed occurrence.
func TestFlapping(t *testing.T) {
	th, out, clk := setup()
	for i := range 100 {
		th.Fail(upload(i, errors.New("flap")))
		th.Succeed("tier2_upload_failed", "")
		clk.Advance(100 * time.Millisecond)
	}
	lines := out.Take(t)
	require.Len(t, lines, 2, "the first failure and its recovery")
	assert.Equal(t, "tier2_upload_failed", lines[0]["@message"])
	assert.Equal(t, "tier2_upload_recovered", lines[1]["@message"])
	clk.Advance(20 * time.Second)
	th.Flush()
	lines = out.Take(t)
	require.Len(t, lines, 1, "then one summary per interval")
	assert.EqualValues(t, 99, lines[0]["repeated"])
}

// A key quiet for an interval starts afresh: its next occurrence is
// logged at once as a first line.
func TestQuietKeyStartsAfresh(t *testing.T) {
	th, out, clk := setup()
	th.Fail(upload(1, errors.New("a")))
	require.Len(t, out.Take(t), 1)
	clk.Advance(31 * time.Second)
	th.Fail(upload(2, errors.New("b")))
	lines := out.Take(t)
	require.Len(t, lines, 1)
	assert.NotContains(t, lines[0], "repeated", "nothing was suppressed: a plain line")
	th.Succeed("tier2_upload_failed", "")
	require.Len(t, out.Take(t), 1)
	clk.Advance(31 * time.Second)
	th.Flush()
	th.mu.Lock()
	n := len(th.keys)
	th.mu.Unlock()
	require.Zero(t, n, "a recovered, quiet key is forgotten")
}

// Recovered "" ends a run silently and drops what it had not summarised.
func TestSilentRecovery(t *testing.T) {
	th, out, clk := setup()
	f := Failure{Msg: "tier2_breaker_open", Reason: "probe_failed", Args: []any{"error", "e"}}
	th.Fail(f)
	th.Fail(f)
	require.Len(t, out.Take(t), 1)
	th.Succeed("tier2_breaker_open", "")
	clk.Advance(time.Minute)
	th.Flush()
	require.Empty(t, out.Take(t))
}

// Concurrent reports lose no count: first lines plus summaries account for
// every occurrence.
func TestConcurrent(t *testing.T) {
	th, out, clk := setup()
	const goroutines, each = 8, 500
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				th.Fail(upload(g*each+i, errors.New("x")))
				if i%100 == 0 {
					clk.Advance(10 * time.Second)
				}
			}
		}()
	}
	wg.Wait()
	clk.Advance(time.Minute)
	th.Flush()
	total := 0
	for _, l := range out.Take(t) {
		if r, ok := l["repeated"]; ok {
			total += int(r.(float64))
		} else {
			total++
		}
	}
	require.Equal(t, goroutines*each, total)
}
