package tier2

import (
	"sync"
	"time"
)

// BreakerState is the circuit breaker's state.
type BreakerState int

// Breaker states; the numbers are the aof_tier2_breaker_state gauge's
// values and are stable.
const (
	// BreakerClosed: calls flow.
	BreakerClosed BreakerState = 0
	// BreakerHalfOpen: the cool-down ended; one probe call is let through
	// and its outcome closes or re-opens the breaker.
	BreakerHalfOpen BreakerState = 1
	// BreakerOpen: calls fail fast with ErrBreakerOpen.
	BreakerOpen BreakerState = 2
)

func (s BreakerState) String() string {
	switch s {
	case BreakerClosed:
		return "closed"
	case BreakerHalfOpen:
		return "half_open"
	case BreakerOpen:
		return "open"
	}
	return "unknown"
}

// BreakerConfig tunes the circuit breaker.
type BreakerConfig struct {
	// Threshold consecutive backend failures (unavailable, plugin
	// crashed, attempt timeout) open the breaker (default 5). Throttling
	// does not count: the backend is alive and says when to come back.
	Threshold int
	// Cooldown is how long the breaker stays open before a probe
	// (default 10s).
	Cooldown time.Duration
}

func (c *BreakerConfig) defaults() {
	if c.Threshold <= 0 {
		c.Threshold = 5
	}
	if c.Cooldown <= 0 {
		c.Cooldown = 10 * time.Second
	}
}

// Health is the breaker's view of the backend, for the coordinator (is
// tier 2 usable?) and for dumps.
type Health struct {
	State BreakerState
	// Since is when the breaker entered State.
	Since time.Time
	// RetryAt is when an open breaker lets a probe through (zero unless open).
	RetryAt time.Time
	// ConsecutiveFailures counts backend failures since the last success.
	ConsecutiveFailures int
	// LastError is the most recent backend failure (nil after a success
	// while closed). While the breaker is open or half-open it is never
	// nil: a call that was in flight when it opened and then succeeded
	// does not erase the failure that opened it.
	LastError error
}

// verdict is what a finished request tells the breaker.
type verdict int

const (
	verdictSuccess verdict = iota // the backend answered (whatever it said)
	verdictFailure                // the backend is failing
	verdictNeutral                // the caller gave up, or throttling: no news
)

type breaker struct {
	cfg   BreakerConfig
	clock Clock
	// onChange runs (outside the lock) after every state change, with the
	// health at the change (not re-read later: another call may have
	// finished in between).
	onChange func(from, to BreakerState, h Health)

	mu struct {
		sync.Mutex
		state    BreakerState
		since    time.Time
		failures int
		last     error
		// cause is the failure that opened the breaker, or that failed
		// the last probe; kept until it closes.
		cause   error
		probing bool
		changed chan struct{}
	}
}

func newBreaker(cfg BreakerConfig, clock Clock, onChange func(from, to BreakerState, h Health)) *breaker {
	b := &breaker{cfg: cfg, clock: clock, onChange: onChange}
	b.mu.since = clock.Now()
	b.mu.changed = make(chan struct{})
	return b
}

// allow admits a call. probe is true for the single call a half-open
// breaker lets through; it must be reported with done.
func (b *breaker) allow() (probe bool, err error) {
	b.mu.Lock()
	var from, to BreakerState
	var h Health
	switch b.mu.state {
	case BreakerClosed:
		b.mu.Unlock()
		return false, nil
	case BreakerOpen:
		retryAt := b.mu.since.Add(b.cfg.Cooldown)
		if b.clock.Now().Before(retryAt) {
			cause := b.mu.cause
			b.mu.Unlock()
			return false, &BreakerOpenError{RetryAt: retryAt, Last: cause}
		}
		from, to, h = b.setLocked(BreakerHalfOpen)
	}
	// Half-open: one probe at a time; the others fail fast.
	if b.mu.probing {
		cause := b.mu.cause
		b.mu.Unlock()
		return false, &BreakerOpenError{RetryAt: b.clock.Now(), Last: cause}
	}
	b.mu.probing = true
	b.mu.Unlock()
	b.notify(from, to, h)
	return true, nil
}

// done reports a call's verdict.
func (b *breaker) done(probe bool, v verdict, err error) {
	b.mu.Lock()
	var from, to BreakerState
	var h Health
	if probe {
		b.mu.probing = false
	}
	switch v {
	case verdictSuccess:
		b.mu.failures, b.mu.last = 0, nil
		if probe && b.mu.state == BreakerHalfOpen {
			b.mu.cause = nil
			from, to, h = b.setLocked(BreakerClosed)
		}
	case verdictFailure:
		b.mu.failures++
		b.mu.last = err
		switch {
		case probe && b.mu.state == BreakerHalfOpen,
			b.mu.state == BreakerClosed && b.mu.failures >= b.cfg.Threshold:
			b.mu.cause = err
			from, to, h = b.setLocked(BreakerOpen)
		}
	}
	b.mu.Unlock()
	b.notify(from, to, h)
}

// setLocked changes state and returns the transition and the health
// after it, for notify.
func (b *breaker) setLocked(s BreakerState) (from, to BreakerState, h Health) {
	from = b.mu.state
	b.mu.state, b.mu.since = s, b.clock.Now()
	close(b.mu.changed)
	b.mu.changed = make(chan struct{})
	return from, s, b.healthLocked()
}

func (b *breaker) notify(from, to BreakerState, h Health) {
	if from != to && b.onChange != nil {
		b.onChange(from, to, h)
	}
}

func (b *breaker) health() Health {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.healthLocked()
}

func (b *breaker) healthLocked() Health {
	h := Health{State: b.mu.state, Since: b.mu.since, ConsecutiveFailures: b.mu.failures, LastError: b.mu.last}
	if h.LastError == nil && h.State != BreakerClosed {
		h.LastError = b.mu.cause
	}
	if h.State == BreakerOpen {
		h.RetryAt = b.mu.since.Add(b.cfg.Cooldown)
	}
	return h
}

// changed is closed at the next state change.
func (b *breaker) changedCh() <-chan struct{} {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.mu.changed
}
