// Package logthrottle keeps a failure that repeats — per item, per scan,
// per retry, for as long as something stays broken — from flooding the
// log, while every state change is still logged at once.
//
// Occurrences are grouped by key: the message (the documented event name),
// a group (what one success ends, e.g. a job kind) and a reason (the class
// of failure, e.g. "breaker_open"). For each key:
//
//   - the first occurrence is logged at once, in full, with a "reason"
//     field (a key that has been quiet for an Interval starts afresh);
//   - later occurrences within the Interval are counted, not logged; the
//     first occurrence after the Interval (or Flush) logs one summary line:
//     the same message and level with the latest occurrence's fields
//     (its error included) plus "repeated" (the occurrences the line
//     stands for) and "window" (the time they span);
//   - a success (Succeed) ends the key's run of failures; if the run was
//     announced, one recovery line (the Failure's Recovered message, at
//     info) reports "failures" (every occurrence of the run),
//     "failing_for" and the last error.
//
// So a key writes at most about three lines per Interval (a first or
// summary line, a recovery, a summary of failures after it), however many
// occurrences there are. Metrics are not the throttle's business: callers
// keep counting every occurrence.
package logthrottle

import (
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
)

// DefaultInterval is the summary period when Config.Interval is zero.
const DefaultInterval = 30 * time.Second

// Config tunes a Throttle. Zero values take the defaults.
type Config struct {
	// Interval is the shortest time between two lines of one key (other
	// than a recovery); default DefaultInterval.
	Interval time.Duration
	// Now is the clock (default time.Now); tests inject one.
	Now func() time.Time
}

// Failure is one occurrence of a failure.
type Failure struct {
	// Level of the first line and the summaries (default warn).
	Level hclog.Level
	// Msg is the logged message: the event name.
	Msg string
	// Group is what Succeed(Msg, Group) ends, e.g. a job kind, or an
	// object whose failure other objects' successes do not end.
	Group string
	// Reason classifies the failure; Msg, Group and Reason form the key.
	Reason string
	// Recovered is the message of the line that reports the end of an
	// announced run; "" ends the run without a line (the caller reports
	// the recovery itself) and drops the occurrences not yet summarised.
	Recovered string
	// Args are the occurrence's fields (key/value pairs), "error" included.
	Args []any
}

type key struct{ msg, group, reason string }

// state is one key's; every field is guarded by Throttle.mu.
type state struct {
	level     hclog.Level
	recovered string
	lastArgs  []any
	// lastLine is when a line of the key was last written; pending counts
	// the occurrences since then that were not.
	lastLine time.Time
	pending  int
	// The run: occurrences since the first failure after a success.
	failing   bool
	announced bool // a line of this run was written
	run       int
	runStart  time.Time
}

type line struct {
	level hclog.Level
	msg   string
	args  []any
}

// Throttle rate-limits repeated failures. It is safe for concurrent use.
type Throttle struct {
	log      hclog.Logger
	interval time.Duration
	now      func() time.Time

	mu   sync.Mutex
	keys map[key]*state // guarded by mu
}

// New returns a Throttle writing to log.
func New(log hclog.Logger, cfg Config) *Throttle {
	if cfg.Interval <= 0 {
		cfg.Interval = DefaultInterval
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Throttle{log: log, interval: cfg.Interval, now: cfg.Now, keys: map[key]*state{}}
}

// Fail reports one occurrence of a failure: logged now if it is the first
// of its key (or the key was quiet for an Interval), summarised otherwise.
func (t *Throttle) Fail(f Failure) {
	if f.Level == hclog.NoLevel {
		f.Level = hclog.Warn
	}
	k := key{f.Msg, f.Group, f.Reason}
	t.mu.Lock()
	now := t.now()
	out := t.dueLocked(now, k)
	st := t.keys[k]
	if st == nil {
		st = &state{}
		t.keys[k] = st
	}
	st.level, st.recovered, st.lastArgs = f.Level, f.Recovered, f.Args
	if !st.failing {
		st.failing, st.announced, st.run, st.runStart = true, false, 0, now
	}
	st.run++
	switch {
	case !st.lastLine.IsZero() && now.Sub(st.lastLine) < t.interval:
		st.pending++
	case st.pending == 0:
		out = append(out, line{f.Level, f.Msg, with(f.Args, "reason", f.Reason)})
		st.lastLine, st.announced = now, true
	default:
		out = append(out, t.summaryLocked(k, st, now, 1))
		st.announced = true
	}
	t.mu.Unlock()
	t.write(out)
}

// Succeed ends the runs of failures of msg and group (every reason): an
// announced run logs its recovery line, with args (key/value pairs naming
// what recovered) in front of its counts.
func (t *Throttle) Succeed(msg, group string, args ...any) {
	t.mu.Lock()
	if len(t.keys) == 0 {
		t.mu.Unlock()
		return
	}
	now := t.now()
	out := t.dueLocked(now, key{})
	for k, st := range t.keys {
		if k.msg != msg || k.group != group || !st.failing {
			continue
		}
		st.failing = false
		switch {
		case st.recovered == "":
			st.pending = 0
		case st.announced:
			a := append(append([]any(nil), args...), "reason", k.reason, "failures", st.run, "failing_for", dur(now.Sub(st.runStart)))
			if err := field(st.lastArgs, "error"); err != nil {
				a = append(a, "last_error", err)
			}
			out = append(out, line{hclog.Info, st.recovered, a})
			st.pending, st.lastLine = 0, now
		}
		// An unannounced run (failures suppressed right after a line)
		// stays pending: its summary comes with the next line or Flush.
	}
	t.mu.Unlock()
	t.write(out)
}

// Flush writes the summaries that are due (a key with suppressed
// occurrences whose last line is an Interval old) and forgets keys that
// have been quiet for an Interval. Fail and Succeed do it too; a caller
// with a periodic loop calls Flush so that a summary does not wait for the
// next occurrence.
func (t *Throttle) Flush() {
	t.mu.Lock()
	out := t.dueLocked(t.now(), key{})
	t.mu.Unlock()
	t.write(out)
}

// dueLocked returns the summaries due at now, except skip's (the caller
// is about to handle that key), and drops keys with nothing left to say.
func (t *Throttle) dueLocked(now time.Time, skip key) []line {
	var out []line
	for k, st := range t.keys {
		if k == skip || now.Sub(st.lastLine) < t.interval {
			continue
		}
		if st.pending > 0 {
			out = append(out, t.summaryLocked(k, st, now, 0))
			continue
		}
		if !st.failing {
			delete(t.keys, k)
		}
	}
	return out
}

// summaryLocked is the summary line of k's pending occurrences plus extra
// (the occurrence being reported, if any); it resets the window.
func (t *Throttle) summaryLocked(k key, st *state, now time.Time, extra int) line {
	args := with(st.lastArgs, "reason", k.reason, "repeated", st.pending+extra, "window", dur(now.Sub(st.lastLine)))
	st.pending, st.lastLine = 0, now
	return line{st.level, k.msg, args}
}

func (t *Throttle) write(lines []line) {
	for _, l := range lines {
		t.log.Log(l.level, l.msg, l.args...)
	}
}

// with returns args followed by more, without aliasing args.
func with(args []any, more ...any) []any {
	return append(append(make([]any, 0, len(args)+len(more)), args...), more...)
}

// dur formats a duration for the JSON log ("30s", not nanoseconds).
func dur(d time.Duration) string { return d.Round(time.Millisecond).String() }

// field is the value of name in key/value pairs, or nil.
func field(args []any, name string) any {
	for i := 0; i+1 < len(args); i += 2 {
		if s, ok := args[i].(string); ok && s == name {
			return args[i+1]
		}
	}
	return nil
}
