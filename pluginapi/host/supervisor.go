package host

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/aof2/aof2/pluginapi"
)

// SupervisorConfig tunes a Supervisor. Zero values take the defaults.
type SupervisorConfig struct {
	Launch LaunchConfig
	// MinBackoff and MaxBackoff bound the relaunch delay, which doubles
	// with every crash inside BreakerWindow and is jittered (default
	// 100ms and 30s).
	MinBackoff, MaxBackoff time.Duration
	// BreakerThreshold crashes (failed launches included) within
	// BreakerWindow open the breaker for BreakerCooldown: calls fail fast
	// with a *BreakerOpenError (ErrBreakerOpen, also ErrUnavailable) and
	// no relaunch is tried until it ends (defaults 5, 1 minute, 1 minute).
	BreakerThreshold int
	BreakerWindow    time.Duration
	BreakerCooldown  time.Duration
	// PollInterval is how often the supervisor checks go-plugin's
	// Exited() (default 50ms).
	PollInterval time.Duration
	// Registerer receives aof_plugin_restarts_total{plugin}; nil skips
	// metrics. The global registry is never used implicitly.
	Registerer prometheus.Registerer
	Logger     hclog.Logger
}

func (c *SupervisorConfig) defaults() {
	if c.MinBackoff <= 0 {
		c.MinBackoff = 100 * time.Millisecond
	}
	if c.MaxBackoff <= 0 {
		c.MaxBackoff = 30 * time.Second
	}
	if c.BreakerThreshold <= 0 {
		c.BreakerThreshold = 5
	}
	if c.BreakerWindow <= 0 {
		c.BreakerWindow = time.Minute
	}
	if c.BreakerCooldown <= 0 {
		c.BreakerCooldown = time.Minute
	}
	if c.PollInterval <= 0 {
		c.PollInterval = 50 * time.Millisecond
	}
	if c.Logger == nil {
		c.Logger = hclog.Default()
	}
}

// ErrSupervisorClosed is returned by calls after Close began.
var ErrSupervisorClosed = errors.New("plugin supervisor is shutting down")

// ErrBreakerOpen means a circuit breaker is open: the call failed fast
// without reaching the backend. The supervisor returns it (as a
// *BreakerOpenError) while its plugin keeps crashing; core/tier2's
// ErrBreakerOpen is this same value, so one errors.Is check covers
// whichever breaker tripped.
var ErrBreakerOpen = errors.New("circuit breaker open")

// BreakerOpenError is returned while the supervisor's breaker is open. It
// matches ErrBreakerOpen and pluginapi.ErrUnavailable.
type BreakerOpenError struct {
	Plugin string
	// Until is when the breaker lets a relaunch be tried again.
	Until time.Time
	// Last is the most recent failed relaunch, if any.
	Last error
}

func (e *BreakerOpenError) Error() string {
	msg := fmt.Sprintf("plugin %q: %v until %s after repeated crashes", e.Plugin, ErrBreakerOpen, e.Until.Format(time.RFC3339))
	if e.Last != nil {
		msg += " (last error: " + e.Last.Error() + ")"
	}
	return msg
}

func (e *BreakerOpenError) Unwrap() []error {
	return []error{ErrBreakerOpen, pluginapi.ErrUnavailable}
}

// Supervisor keeps one plugin process alive and is itself a Backend. It
// watches go-plugin's Exited() (a crash is a process exit, never inferred
// from an Unavailable status, which a backend may return for its own
// reasons), fails the calls in flight on a dead process with the
// retryable pluginapi.ErrPluginCrashed, relaunches with exponential
// backoff and jitter, opens a circuit breaker after repeated crashes, and
// counts restarts. Close drains in-flight calls, then kills the plugin.
//
// It never re-issues a call: each call reaches at most one plugin process
// once. A call made while the plugin is being relaunched waits for the new
// process (bounded by its context); replaying a call that a crash cut
// short is the caller's decision (core/tier2 retries it, idempotently).
type Supervisor struct {
	cfg      SupervisorConfig // cfg.Launch.Configure is guarded by mu
	name     string
	log      hclog.Logger
	restarts prometheus.Counter

	ctx    context.Context // ends at Close; owns the monitor goroutine
	cancel context.CancelFunc
	done   chan struct{} // closed when the monitor goroutine has returned

	mu struct {
		sync.Mutex
		cur          *instance
		changed      chan struct{} // closed and replaced at every state change
		closing      bool
		crashes      []time.Time
		breakerUntil time.Time
		lastErr      error
		restarts     int
	}
}

// instance is one plugin process and the calls using it.
type instance struct {
	p *Plugin
	// dead is done once the process has exited; calls bound to the
	// instance are cancelled through it (context.AfterFunc).
	dead     context.Context
	markDead context.CancelFunc
	inflight sync.WaitGroup
	killed   bool // set (under Supervisor.mu) when we killed it on purpose
}

func (in *instance) isDead() bool { return in.dead.Err() != nil }

// NewSupervisor launches the plugin and starts watching it. A first
// launch that fails returns its error (a *StartError for start-up
// problems) and nothing keeps running.
func NewSupervisor(ctx context.Context, cfg SupervisorConfig) (*Supervisor, error) {
	cfg.defaults()
	name := cfg.Launch.name()
	s := &Supervisor{cfg: cfg, name: name, log: cfg.Logger.Named("supervisor").With("plugin", name), done: make(chan struct{})}
	if err := s.registerMetrics(); err != nil {
		return nil, err
	}
	p, err := Launch(ctx, cfg.Launch)
	if err != nil {
		return nil, err
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	s.mu.changed = make(chan struct{})
	in := s.install(p)
	go s.monitor(in)
	return s, nil
}

func (s *Supervisor) registerMetrics() error {
	if s.cfg.Registerer == nil {
		s.restarts = prometheus.NewCounter(prometheus.CounterOpts{Name: "aof_plugin_restarts_total"})
		return nil
	}
	vec := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "aof_plugin_restarts_total",
		Help: "Backend plugin processes relaunched after a crash.",
	}, []string{"plugin"})
	if err := s.cfg.Registerer.Register(vec); err != nil {
		var are prometheus.AlreadyRegisteredError
		if !errors.As(err, &are) {
			return fmt.Errorf("registering plugin metrics: %w", err)
		}
		vec = are.ExistingCollector.(*prometheus.CounterVec)
	}
	s.restarts = vec.WithLabelValues(s.name)
	return nil
}

// install makes p the current instance and wakes waiting calls.
func (s *Supervisor) install(p *Plugin) *instance {
	in := &instance{p: p}
	in.dead, in.markDead = context.WithCancel(context.Background())
	s.mu.Lock()
	s.mu.cur = in
	s.notifyLocked()
	s.mu.Unlock()
	return in
}

// notifyLocked wakes every call waiting in acquire to look again.
func (s *Supervisor) notifyLocked() {
	close(s.mu.changed)
	s.mu.changed = make(chan struct{})
}

// monitor watches the current instance and relaunches it after a crash,
// until Close. It is the Supervisor's only goroutine.
func (s *Supervisor) monitor(in *instance) {
	defer close(s.done)
	for {
		if !s.watch(in) {
			return
		}
		next := s.relaunch(in)
		if next == nil {
			return
		}
		in = next
	}
}

// watch polls Exited() until the process dies (true) or Close (false).
func (s *Supervisor) watch(in *instance) bool {
	t := time.NewTicker(s.cfg.PollInterval)
	defer t.Stop()
	for {
		select {
		case <-s.ctx.Done():
			return false
		case <-t.C:
		}
		if !in.p.Exited() {
			continue
		}
		// Retire the instance before marking it dead, so a call that learns
		// of the death and retries at once never gets the dead instance.
		s.mu.Lock()
		if s.mu.cur == in {
			s.mu.cur = nil
		}
		killed := in.killed
		s.mu.Unlock()
		in.markDead()
		if killed {
			return false
		}
		s.log.Error("plugin process exited unexpectedly; relaunching", "pid", in.p.Pid())
		return true
	}
}

// relaunch starts a new process after dead crashed, with backoff and the
// breaker; nil means Close was called.
func (s *Supervisor) relaunch(dead *instance) *instance {
	for {
		delay, breakerOpen := s.recordCrash()
		if dead != nil {
			dead.p.Kill() // reap go-plugin's goroutines and socket
			dead = nil
		}
		if breakerOpen {
			s.log.Error("plugin keeps crashing; circuit breaker open", "cooldown", delay)
		}
		select {
		case <-s.ctx.Done():
			return nil
		case <-time.After(delay):
		}
		s.mu.Lock()
		launch := s.cfg.Launch // Configure may have changed it
		s.mu.Unlock()
		ctx, cancel := context.WithTimeout(s.ctx, launch.startTimeout()+30*time.Second)
		p, err := Launch(ctx, launch)
		cancel()
		if err != nil {
			if s.ctx.Err() != nil {
				return nil
			}
			s.log.Error("relaunching the plugin failed", "error", err)
			s.mu.Lock()
			s.mu.lastErr = err
			s.notifyLocked()
			s.mu.Unlock()
			continue
		}
		s.mu.Lock()
		s.mu.restarts++
		s.mu.breakerUntil = time.Time{}
		closing := s.mu.closing
		s.mu.Unlock()
		if closing {
			p.Kill()
			return nil
		}
		s.restarts.Inc()
		s.log.Info("plugin relaunched", "pid", p.Pid())
		return s.install(p)
	}
}

// recordCrash notes a crash and returns how long to wait before the next
// launch, and whether the breaker is open.
func (s *Supervisor) recordCrash() (time.Duration, bool) {
	now := time.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	recent := s.mu.crashes[:0]
	for _, t := range s.mu.crashes {
		if now.Sub(t) < s.cfg.BreakerWindow {
			recent = append(recent, t)
		}
	}
	s.mu.crashes = append(recent, now)
	n := len(s.mu.crashes)
	if n >= s.cfg.BreakerThreshold {
		s.mu.breakerUntil = now.Add(s.cfg.BreakerCooldown)
		s.mu.crashes = nil
		s.notifyLocked()
		return s.cfg.BreakerCooldown, true
	}
	backoff := s.cfg.MinBackoff << min(n-1, 30)
	if backoff <= 0 || backoff > s.cfg.MaxBackoff {
		backoff = s.cfg.MaxBackoff
	}
	// "Equal jitter": at least half the backoff, so restarts of many
	// hosts spread out without any of them retrying immediately.
	return backoff/2 + rand.N(backoff/2+1), false
}
