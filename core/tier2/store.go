package tier2

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/aof2/aof2/internal/logfields"
	"github.com/aof2/aof2/internal/logthrottle"
	"github.com/aof2/aof2/pluginapi"
)

// Config tunes a Store. Zero values take the defaults.
type Config struct {
	// Prefix is prepended to every key (see Layout).
	Prefix string
	// MaxConcurrency bounds the backend requests in flight across every
	// operation of the store (default 8; lowered to the backend's
	// Limits.MaxConcurrentStreams when Info is given and that is smaller).
	MaxConcurrency int
	// Backoff is the retry policy.
	Backoff Backoff
	// Breaker tunes the circuit breaker.
	Breaker BreakerConfig
	// AttemptTimeout bounds one backend request, so a hung backend costs
	// an attempt instead of the whole operation (0: no bound beyond the
	// caller's context).
	AttemptTimeout time.Duration
	// ChecksumRetries is how many times one operation re-fetches after a
	// checksum mismatch, or re-uploads after an acknowledged upload fails
	// verification, before it gives up (default 1; negative: never).
	ChecksumRetries int
	// SkipUploadVerify turns off the Head after every acknowledged Put
	// that proves the object is stored with the bytes sent. Only for
	// backends trusted not to acknowledge writes they lost.
	SkipUploadVerify bool
	// MaxFetchBytes bounds Fetch, which holds a whole object in memory
	// (default 256 MiB).
	MaxFetchBytes uint64
	// Info is the backend's description when the caller already has it
	// (Launch and Setup return it); otherwise the store asks the backend
	// once, on first use.
	Info *pluginapi.Info
	// Clock defaults to SystemClock; JitterSeed seeds the backoff jitter.
	Clock      Clock
	JitterSeed uint64
	// Registerer receives the aof_tier2_* metrics; nil registers none.
	Registerer prometheus.Registerer
	// Logger defaults to hclog.Default(); the store logs under "tier2".
	Logger hclog.Logger
}

func (c *Config) defaults() {
	if c.MaxConcurrency <= 0 {
		c.MaxConcurrency = 8
	}
	if c.Info != nil && c.Info.Limits.MaxConcurrentStreams > 0 {
		c.MaxConcurrency = min(c.MaxConcurrency, int(c.Info.Limits.MaxConcurrentStreams))
	}
	c.Backoff.defaults()
	c.Breaker.defaults()
	if c.ChecksumRetries == 0 {
		c.ChecksumRetries = 1
	}
	c.ChecksumRetries = max(c.ChecksumRetries, 0)
	if c.MaxFetchBytes == 0 {
		c.MaxFetchBytes = 256 << 20
	}
	if c.Clock == nil {
		c.Clock = SystemClock{}
	}
	if c.Logger == nil {
		c.Logger = hclog.Default()
	}
}

// Store is the portable tier-2 object store over a pluginapi.Backend.
// It is safe for concurrent use.
type Store struct {
	b      pluginapi.Backend
	cfg    Config
	layout Layout
	log    hclog.Logger
	m      *metrics
	brk    *breaker
	jit    *jitter
	sem    chan struct{}

	info   atomic.Pointer[pluginapi.Info]
	noFile atomic.Bool // PutFile/GetFile answered Unimplemented: stream instead

	closed atomic.Bool
	ops    sync.WaitGroup

	// logs rate-limits the failure events of operations that stay broken
	// (docs/adr-host.md, "Logs while something stays broken"). Set by New,
	// never replaced; safe for concurrent use.
	logs *logthrottle.Throttle
	// outage describes the breaker's current outage for its log lines;
	// every field is guarded by its Mutex.
	outage struct {
		sync.Mutex
		since        time.Time // when the breaker last opened from closed
		probes       int       // half-opens since then
		failedProbes int       // probes that failed since then
	}
}

// New returns a Store over b. It does not call the backend.
func New(b pluginapi.Backend, cfg Config) (*Store, error) {
	if b == nil {
		return nil, errors.New("tier2: nil backend")
	}
	cfg.defaults()
	layout, err := NewLayout(cfg.Prefix)
	if err != nil {
		return nil, err
	}
	m, err := newMetrics(cfg.Registerer)
	if err != nil {
		return nil, fmt.Errorf("tier2: registering metrics: %w", err)
	}
	s := &Store{b: b, cfg: cfg, layout: layout, log: cfg.Logger.Named("tier2"), m: m,
		jit: newJitter(cfg.JitterSeed), sem: make(chan struct{}, cfg.MaxConcurrency)}
	s.logs = logthrottle.New(s.log, logthrottle.Config{Now: cfg.Clock.Now})
	if cfg.Info != nil {
		info := *cfg.Info
		s.info.Store(&info)
	}
	s.brk = newBreaker(cfg.Breaker, cfg.Clock, s.breakerChanged)
	return s, nil
}

// Layout is the store's key layout.
func (s *Store) Layout() Layout { return s.layout }

// Health is the circuit breaker's view of the backend. Anything but
// BreakerClosed means tier 2 is failing: the coordinator keeps local
// copies and tells writers so.
func (s *Store) Health() Health { return s.brk.health() }

// HealthChanged is closed at the breaker's next state change; wait on
// it, then read Health again.
func (s *Store) HealthChanged() <-chan struct{} { return s.brk.changedCh() }

// Stats copies the store's counters.
func (s *Store) Stats() Stats {
	st := s.m.stats()
	st.Breaker = s.Health()
	return st
}

// Close stops admitting operations and waits (bounded by ctx) for those
// in flight. It does not close the backend, which the caller owns.
func (s *Store) Close(ctx context.Context) error {
	s.closed.Store(true)
	done := make(chan struct{})
	go func() { s.ops.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// breakerChanged logs the breaker's state changes as an operator sees
// them: opening (from closed) and closing once each; while the backend
// stays down, the half-open probes every cooldown and their failures are
// logged once (the first) and then summarised (logthrottle).
func (s *Store) breakerChanged(from, to BreakerState, h Health) {
	s.m.breakerState(from, to)
	o := &s.outage
	o.Lock()
	defer o.Unlock()
	switch to {
	case BreakerOpen:
		args := []any{"from", from.String(), "retry_at", h.RetryAt, "consecutive_failures", h.ConsecutiveFailures, "error", errString(h.LastError)}
		if from == BreakerHalfOpen {
			o.failedProbes++
			s.logs.Fail(logthrottle.Failure{Msg: "tier2_breaker_open", Reason: "probe_failed", Args: args})
			return
		}
		o.since, o.probes, o.failedProbes = h.Since, 0, 0
		s.log.Warn("tier2_breaker_open", args...)
	case BreakerHalfOpen:
		o.probes++
		level := hclog.Debug
		if o.probes == 1 {
			level = hclog.Info
		}
		s.log.Log(level, "tier2_breaker_half_open", "from", from.String())
	default:
		s.logs.Succeed("tier2_breaker_open", "")
		s.log.Info("tier2_breaker_"+to.String(), "from", from.String(), "open_for", h.Since.Sub(o.since).Round(time.Millisecond).String(), "probes_failed", o.failedProbes)
	}
}

// FlushLogs writes the log summaries that are due (failures counted but
// not logged one by one, docs/adr-host.md); the coordinator calls it every
// scan, so a summary does not wait for the next failure.
func (s *Store) FlushLogs() { s.logs.Flush() }

// caps returns the backend's capabilities, asking it once.
func (s *Store) caps(ctx context.Context) (pluginapi.Capabilities, error) {
	if info := s.info.Load(); info != nil {
		return info.Capabilities, nil
	}
	var info pluginapi.Info
	err := s.request(ctx, ClassInfo, func(ctx context.Context) (err error) {
		info, err = s.b.Info(ctx)
		return err
	})
	if err != nil {
		return pluginapi.Capabilities{}, fmt.Errorf("tier2: backend info: %w", err)
	}
	s.info.Store(&info)
	return info.Capabilities, nil
}

// request runs one backend request: through the breaker and the
// concurrency bound, under AttemptTimeout, counted by class and outcome.
func (s *Store) request(ctx context.Context, class Class, fn func(ctx context.Context) error) error {
	probe, err := s.brk.allow()
	if err != nil {
		s.m.request(class, OutcomeBreakerOpen)
		return err
	}
	if err := s.acquire(ctx); err != nil {
		s.brk.done(probe, verdictNeutral, nil)
		return err
	}
	rctx, cancel := ctx, context.CancelFunc(func() {})
	if s.cfg.AttemptTimeout > 0 {
		rctx, cancel = context.WithTimeout(ctx, s.cfg.AttemptTimeout)
	}
	err = fn(rctx)
	if err != nil && ctx.Err() == nil && errors.Is(rctx.Err(), context.DeadlineExceeded) && pluginapi.CodeOf(err) != pluginapi.CodeDeadline {
		err = &pluginapi.Error{Code: pluginapi.CodeDeadline, Message: fmt.Sprintf("attempt timed out after %s", s.cfg.AttemptTimeout), Err: err}
	}
	cancel()
	s.release()
	s.m.request(class, outcomeOf(err))
	s.brk.done(probe, verdictOf(ctx, err), err)
	return err
}

func verdictOf(ctx context.Context, err error) verdict {
	if err == nil {
		return verdictSuccess
	}
	if ctx.Err() != nil {
		return verdictNeutral
	}
	switch pluginapi.CodeOf(err) {
	case pluginapi.CodeUnavailable, pluginapi.CodePluginCrashed, pluginapi.CodeDeadline, pluginapi.CodeUnknown:
		return verdictFailure
	case pluginapi.CodeThrottled, pluginapi.CodeCanceled:
		return verdictNeutral
	}
	return verdictSuccess // the backend answered, whatever it said
}

func (s *Store) acquire(ctx context.Context) error {
	select {
	case s.sem <- struct{}{}:
	default:
		s.m.addWaiting(1)
		select {
		case s.sem <- struct{}{}:
			s.m.addWaiting(-1)
		case <-ctx.Done():
			s.m.addWaiting(-1)
			return ctx.Err()
		}
	}
	s.m.addInflight(1)
	return nil
}

func (s *Store) release() {
	s.m.addInflight(-1)
	<-s.sem
}

// retryClass says whether an operation may retry an error: transient
// backend failures always (within Backoff.Attempts), and a checksum or
// verification failure only within Config.ChecksumRetries.
func transient(err error) bool {
	return pluginapi.Retryable(err) && !errors.Is(err, ErrBreakerOpen)
}

func integrity(err error) bool {
	return errors.Is(err, ErrChecksum) || errors.Is(err, ErrNotStored) || pluginapi.CodeOf(err) == pluginapi.CodeChecksum
}

// run is one logical operation: admitted unless closed, retried with
// backoff, counted, failing fast when the breaker is open.
func (s *Store) run(ctx context.Context, op Op, key string, attempt func(ctx context.Context) error) error {
	if s.closed.Load() {
		return fmt.Errorf("tier2 %s %q: %w", op, key, ErrClosed)
	}
	s.ops.Add(1)
	defer s.ops.Done()
	integrityLeft := s.cfg.ChecksumRetries
	for n := 0; ; n++ {
		s.m.attempt(op)
		err := attempt(ctx)
		if err == nil {
			return nil
		}
		if cerr := ctx.Err(); cerr != nil {
			s.m.failure(op)
			if errors.Is(err, cerr) {
				return fmt.Errorf("tier2 %s %q: %w", op, key, err)
			}
			return fmt.Errorf("tier2 %s %q: %w (last error: %w)", op, key, cerr, err)
		}
		retry := transient(err)
		if !retry && integrity(err) && integrityLeft > 0 {
			integrityLeft--
			retry = true
		}
		if !retry || n+1 >= s.cfg.Backoff.Attempts {
			s.m.failure(op)
			if retry {
				return fmt.Errorf("tier2 %s %q: giving up after %d attempts: %w", op, key, n+1, err)
			}
			return fmt.Errorf("tier2 %s %q: %w", op, key, err)
		}
		ra, _ := pluginapi.RetryAfter(err)
		wait := s.cfg.Backoff.wait(s.jit, n, ra)
		// Context deadlines are wall-clock times, whatever Clock is.
		if dl, ok := ctx.Deadline(); ok && time.Until(dl) < wait {
			s.m.failure(op)
			return fmt.Errorf("tier2 %s %q: a retry in %s would pass the deadline: %w", op, key, wait, err)
		}
		s.m.retry(op)
		s.log.Debug("tier2_retry", append([]any{"op", op.String(), "key", key, "attempt", n + 1, "error", err.Error()}, logfields.Duration("wait", wait)...)...)
		if serr := s.cfg.Clock.Sleep(ctx, wait); serr != nil {
			s.m.failure(op)
			return fmt.Errorf("tier2 %s %q: %w (last error: %w)", op, key, serr, err)
		}
	}
}

// Reason classifies a failed operation for logs: "breaker_open",
// "data_loss", or its outcome label ("unavailable", "throttled",
// "checksum", "timeout", "not_found", "error", ...; see Outcome).
func Reason(err error) string {
	if errors.Is(err, ErrDataLoss) {
		return "data_loss"
	}
	if errors.Is(err, ErrChecksum) {
		return OutcomeChecksum.String()
	}
	return outcomeOf(err).String()
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}
