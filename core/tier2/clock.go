package tier2

import (
	"context"
	"math/rand/v2"
	"sync"
	"time"
)

// Clock is the store's source of time: the breaker reads it and the
// retry loop waits on it. Tests inject one that advances on demand.
type Clock interface {
	Now() time.Time
	// Sleep waits for d, or returns ctx's error as soon as ctx is done.
	Sleep(ctx context.Context, d time.Duration) error
}

// SystemClock is the real clock.
type SystemClock struct{}

func (SystemClock) Now() time.Time { return time.Now() }

func (SystemClock) Sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Backoff is the retry policy: exponential backoff with full jitter
// (a wait drawn uniformly from [0, min(Max, Initial·2^n)]), never less
// than a throttling backend's retry-after.
type Backoff struct {
	// Initial is the cap of the first wait (default 50ms).
	Initial time.Duration
	// Max caps every jittered wait (default 10s).
	Max time.Duration
	// MaxRetryAfter caps a backend's retry-after, so a bogus hint cannot
	// park a job for hours (default 5m).
	MaxRetryAfter time.Duration
	// Attempts is the most tries of one operation, the first included
	// (default 6).
	Attempts int
}

func (b *Backoff) defaults() {
	if b.Initial <= 0 {
		b.Initial = 50 * time.Millisecond
	}
	if b.Max <= 0 {
		b.Max = 10 * time.Second
	}
	if b.Max < b.Initial {
		b.Max = b.Initial
	}
	if b.MaxRetryAfter <= 0 {
		b.MaxRetryAfter = 5 * time.Minute
	}
	if b.Attempts <= 0 {
		b.Attempts = 6
	}
}

// jitter draws full-jitter waits; safe for concurrent use.
type jitter struct {
	mu  sync.Mutex
	rng *rand.Rand
}

func newJitter(seed uint64) *jitter {
	return &jitter{rng: rand.New(rand.NewPCG(seed, seed^0x2545f4914f6cdd1d))}
}

// wait is the delay before retry number retry (0 for the first retry):
// uniform in [0, min(Max, Initial<<retry)], raised to retryAfter
// (capped by MaxRetryAfter) when the backend asked for one.
func (b Backoff) wait(j *jitter, retry int, retryAfter time.Duration) time.Duration {
	ceiling := b.Max
	if retry < 32 {
		if c := b.Initial << retry; c > 0 && c < ceiling {
			ceiling = c
		}
	}
	j.mu.Lock()
	d := time.Duration(j.rng.Int64N(int64(ceiling) + 1))
	j.mu.Unlock()
	return max(d, min(retryAfter, b.MaxRetryAfter))
}
