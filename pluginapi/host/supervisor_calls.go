package host

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/aof2/aof2/pluginapi"
)

var _ pluginapi.Backend = (*Supervisor)(nil)

// errPluginDied is the cancellation cause of calls whose process died.
var errPluginDied = errors.New("plugin process died")

// acquire waits for a live instance (bounded by ctx) and registers a call
// on it; release it with in.inflight.Done().
func (s *Supervisor) acquire(ctx context.Context) (*instance, error) {
	for {
		s.mu.Lock()
		if s.mu.closing {
			s.mu.Unlock()
			return nil, &pluginapi.Error{Code: pluginapi.CodeUnavailable, Message: ErrSupervisorClosed.Error(), Err: ErrSupervisorClosed}
		}
		if until := s.mu.breakerUntil; time.Now().Before(until) {
			last := s.mu.lastErr
			s.mu.Unlock()
			return nil, &BreakerOpenError{Plugin: s.name, Until: until, Last: last}
		}
		if in := s.mu.cur; in != nil && !in.p.Exited() {
			in.inflight.Add(1)
			s.mu.Unlock()
			return in, nil
		}
		changed := s.mu.changed
		s.mu.Unlock()
		select {
		case <-changed:
		case <-ctx.Done():
			return nil, &pluginapi.Error{Code: pluginapi.CodePluginCrashed, Message: "waiting for the plugin to be relaunched", Err: ctx.Err()}
		}
	}
}

// bind derives a context for a call on in that is cancelled when the
// process dies, so no call waits on a dead plugin.
func bind(ctx context.Context, in *instance) (context.Context, func()) {
	cctx, cancel := context.WithCancelCause(ctx)
	stop := context.AfterFunc(in.dead, func() { cancel(errPluginDied) })
	return cctx, func() { stop(); cancel(nil) }
}

// crashed decides whether err means the process died under the call: the
// process is gone (or goes within a moment, when the error is what a
// broken connection looks like).
func (s *Supervisor) crashed(ctx context.Context, in *instance, err error) bool {
	if err == nil {
		return false
	}
	if in.isDead() {
		return true
	}
	if ctx.Err() != nil {
		return false // the caller gave up; not a crash
	}
	// A dying process shows up as a cancelled call (bind), or as
	// Unavailable without the ErrorInfo a backend's own Unavailable has.
	code := pluginapi.CodeOf(err)
	transport := errors.Is(err, errPluginDied) || code == pluginapi.CodeCanceled ||
		(code == pluginapi.CodeUnavailable && !hasReason(err))
	if !transport {
		return false
	}
	select {
	case <-in.dead.Done():
		return true
	case <-time.After(2*s.cfg.PollInterval + time.Second):
		return false
	}
}

func hasReason(err error) bool {
	var e *pluginapi.Error
	return errors.As(err, &e) && e.Reason != ""
}

func (s *Supervisor) crashError(in *instance, op string, err error) error {
	return &pluginapi.Error{Code: pluginapi.CodePluginCrashed, Message: fmt.Sprintf("%s: plugin %q (pid %d) died during the call", op, s.name, in.p.Pid()), Err: err}
}

// call runs fn on a live instance, turning a death mid-call into
// ErrPluginCrashed.
func (s *Supervisor) call(ctx context.Context, op string, fn func(context.Context, *Plugin) error) error {
	in, err := s.acquire(ctx)
	if err != nil {
		return err
	}
	defer in.inflight.Done()
	cctx, stop := bind(ctx, in)
	defer stop()
	err = fn(cctx, in.p)
	if s.crashed(ctx, in, err) {
		return s.crashError(in, op, err)
	}
	return err
}

func (s *Supervisor) Info(ctx context.Context) (info pluginapi.Info, err error) {
	err = s.call(ctx, "GetInfo", func(ctx context.Context, p *Plugin) error { info, err = p.Client.Info(ctx); return err })
	return info, err
}

// Configure reconfigures the running plugin and every later relaunch.
func (s *Supervisor) Configure(ctx context.Context, req pluginapi.ConfigureRequest) (res pluginapi.ConfigureResult, err error) {
	err = s.call(ctx, "Configure", func(ctx context.Context, p *Plugin) error { res, err = p.Client.Configure(ctx, req); return err })
	if err == nil {
		s.mu.Lock()
		s.cfg.Launch.Configure = req
		s.mu.Unlock()
	}
	return res, err
}

func (s *Supervisor) Probe(ctx context.Context, req pluginapi.ProbeRequest) error {
	return s.call(ctx, "Probe", func(ctx context.Context, p *Plugin) error { return p.Client.Probe(ctx, req) })
}

func (s *Supervisor) Put(ctx context.Context, req pluginapi.PutRequest, body io.Reader) (info pluginapi.ObjectInfo, err error) {
	err = s.call(ctx, "Put", func(ctx context.Context, p *Plugin) error { info, err = p.Client.Put(ctx, req, body); return err })
	return info, err
}

func (s *Supervisor) PutFile(ctx context.Context, req pluginapi.PutRequest, path string) (info pluginapi.ObjectInfo, err error) {
	err = s.call(ctx, "PutFile", func(ctx context.Context, p *Plugin) error { info, err = p.Client.PutFile(ctx, req, path); return err })
	return info, err
}

func (s *Supervisor) GetFile(ctx context.Context, req pluginapi.GetRequest, path string) (rng pluginapi.ObjectRange, err error) {
	err = s.call(ctx, "GetFile", func(ctx context.Context, p *Plugin) error { rng, err = p.Client.GetFile(ctx, req, path); return err })
	return rng, err
}

func (s *Supervisor) Head(ctx context.Context, key string) (info pluginapi.ObjectInfo, err error) {
	err = s.call(ctx, "Head", func(ctx context.Context, p *Plugin) error { info, err = p.Client.Head(ctx, key); return err })
	return info, err
}

func (s *Supervisor) List(ctx context.Context, req pluginapi.ListRequest, page func([]pluginapi.ObjectInfo) error) error {
	return s.call(ctx, "List", func(ctx context.Context, p *Plugin) error { return p.Client.List(ctx, req, page) })
}

func (s *Supervisor) Delete(ctx context.Context, key string) error {
	return s.call(ctx, "Delete", func(ctx context.Context, p *Plugin) error { return p.Client.Delete(ctx, key) })
}

// Get keeps the call in flight until the reader is closed, so Close drains
// open downloads too.
func (s *Supervisor) Get(ctx context.Context, req pluginapi.GetRequest) (pluginapi.ObjectRange, io.ReadCloser, error) {
	in, err := s.acquire(ctx)
	if err != nil {
		return pluginapi.ObjectRange{}, nil, err
	}
	cctx, stop := bind(ctx, in)
	rng, rc, err := in.p.Client.Get(cctx, req)
	if err != nil {
		stop()
		in.inflight.Done()
		if s.crashed(ctx, in, err) {
			return rng, nil, s.crashError(in, "Get", err)
		}
		return rng, nil, err
	}
	return rng, &supervisedReader{rc: rc, s: s, in: in, ctx: ctx, stop: stop}, nil
}

type supervisedReader struct {
	rc     io.ReadCloser
	s      *Supervisor
	in     *instance
	ctx    context.Context
	stop   func()
	closed bool
}

func (r *supervisedReader) Read(p []byte) (int, error) {
	n, err := r.rc.Read(p)
	if err != nil && err != io.EOF && r.s.crashed(r.ctx, r.in, err) {
		err = r.s.crashError(r.in, "Get", err)
	}
	return n, err
}

func (r *supervisedReader) Close() error {
	if r.closed {
		return nil
	}
	r.closed = true
	err := r.rc.Close()
	r.stop()
	r.in.inflight.Done()
	return err
}

// Restarts is how many times the plugin was relaunched after a crash.
func (s *Supervisor) Restarts() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.mu.restarts
}

// Current returns the running plugin, or nil while it is being relaunched.
func (s *Supervisor) Current() *Plugin {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.mu.cur == nil {
		return nil
	}
	return s.mu.cur.p
}

// WaitReady blocks until a plugin process is running (or ctx ends).
func (s *Supervisor) WaitReady(ctx context.Context) error {
	in, err := s.acquire(ctx)
	if err != nil {
		return err
	}
	in.inflight.Done()
	return nil
}

// Close stops admitting calls, waits for the calls in flight until ctx
// ends, then kills the plugin and stops watching it. It returns ctx's
// error if calls were still running when the plugin was killed.
func (s *Supervisor) Close(ctx context.Context) error {
	s.mu.Lock()
	if s.mu.closing {
		s.mu.Unlock()
		<-s.done
		return nil
	}
	s.mu.closing = true
	s.notifyLocked()
	in := s.mu.cur
	if in != nil {
		in.killed = true
	}
	s.mu.Unlock()
	var drainErr error
	if in != nil {
		drained := make(chan struct{})
		go func() { in.inflight.Wait(); close(drained) }()
		select {
		case <-drained:
		case <-ctx.Done():
			drainErr = fmt.Errorf("plugin %q killed with calls in flight: %w", s.name, ctx.Err())
		}
	}
	s.cancel()
	<-s.done
	if in != nil {
		in.p.Kill()
	}
	return drainErr
}
