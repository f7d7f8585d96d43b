package tier2

import (
	"context"
	"errors"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/aof2/aof2/conformance/fake"
	"github.com/aof2/aof2/internal/testwait"
	"github.com/aof2/aof2/pluginapi"
)

// liveness bounds how long a test waits for something that must happen;
// it is a hang guard, not a performance assertion.
const liveness = 30 * time.Second

func waitErr(t *testing.T, ch <-chan error) error {
	t.Helper()
	select {
	case err := <-ch:
		return err
	case <-time.After(liveness):
		t.Fatal("operation did not return after cancellation")
		return nil
	}
}

// A call blocked in a hung backend returns when its context is cancelled.
func TestCancelDuringRequest(t *testing.T) {
	dir := t.TempDir()
	ops := map[string]func(ctx context.Context, s *Store, up Uploaded) error{
		"upload": func(ctx context.Context, s *Store, _ Uploaded) error {
			_, err := s.UploadManifestChunk(ctx, 1, 2, []byte("x"))
			return err
		},
		"download": func(ctx context.Context, s *Store, up Uploaded) error {
			_, err := s.DownloadFile(ctx, up.Key, filepath.Join(dir, "x"), Expect{})
			return err
		},
		"list": func(ctx context.Context, s *Store, _ Uploaded) error {
			_, err := s.ListStream(ctx, 1)
			return err
		},
		"delete": func(ctx context.Context, s *Store, up Uploaded) error { return s.Delete(ctx, up.Key) },
	}
	for name, op := range ops {
		t.Run(name, func(t *testing.T) {
			fb := fake.New(fake.Options{})
			entered := make(chan struct{}, 1)
			h := &hook{Backend: fb}
			e := newEnvWith(t, fb, h, nil)
			up, err := e.store.UploadManifestChunk(context.Background(), 1, 1, []byte("y"))
			require.NoError(t, err)
			require.NoError(t, fb.Inject(fake.Fault{Mode: fake.Timeout}))
			h.mu.Lock()
			h.before = func(string) error {
				select {
				case entered <- struct{}{}:
				default:
				}
				return nil
			}
			h.mu.Unlock()
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() { done <- op(ctx, e.store, up) }()
			if name != "list" { // List is not hooked; the fault still blocks it
				testwait.Recv(t, entered, testwait.Default, "%s to reach the backend", name)
			}
			cancel()
			err = waitErr(t, done)
			assert.ErrorIs(t, err, context.Canceled)
			assert.Equal(t, uint64(0), e.retries(OpUpload)+e.retries(OpFetch)+e.retries(OpList)+e.retries(OpDelete))
			assert.Equal(t, BreakerClosed, e.store.Health().State, "a caller giving up is not a backend failure")
		})
	}
}

// A call waiting out a backoff returns when its context is cancelled.
func TestCancelDuringBackoff(t *testing.T) {
	clock := &blockingClock{entered: make(chan time.Duration, 1)}
	e := newEnv(t, fake.Options{}, func(c *Config) { c.Clock = clock; c.Backoff.MaxRetryAfter = 2 * time.Hour })
	require.NoError(t, e.fake.Inject(fake.Fault{Mode: fake.Throttle, RetryAfter: time.Hour}))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := e.store.UploadManifestChunk(ctx, 1, 1, []byte("x"))
		done <- err
	}()
	wait := testwait.Recv(t, clock.entered, testwait.Default, "the upload to wait out a backoff")
	assert.Equal(t, time.Hour, wait)
	cancel()
	err := waitErr(t, done)
	assert.ErrorIs(t, err, context.Canceled)
	assert.ErrorIs(t, err, pluginapi.ErrThrottled, "the last backend error is kept")
}

// A retry-after longer than the caller's deadline fails at once instead
// of sleeping into a certain timeout.
func TestRetryAfterPastDeadline(t *testing.T) {
	e := newEnv(t, fake.Options{}, nil)
	require.NoError(t, e.fake.Inject(fake.Fault{Mode: fake.Throttle, RetryAfter: time.Hour}))
	ctx, cancel := context.WithTimeout(context.Background(), liveness)
	defer cancel()
	_, err := e.store.UploadManifestChunk(ctx, 1, 1, []byte("x"))
	assert.ErrorIs(t, err, pluginapi.ErrThrottled)
	assert.Empty(t, e.clock.Sleeps())
	assert.NoError(t, ctx.Err())
}

func TestMaxRetryAfterCapsTheWait(t *testing.T) {
	e := newEnv(t, fake.Options{}, func(c *Config) { c.Backoff.MaxRetryAfter = 2 * time.Second })
	require.NoError(t, e.fake.Inject(fake.Fault{Mode: fake.Throttle, RetryAfter: time.Hour, Count: 1}))
	_, err := e.store.UploadManifestChunk(context.Background(), 1, 1, []byte("x"))
	require.NoError(t, err)
	assert.Equal(t, []time.Duration{2 * time.Second}, e.clock.Sleeps())
}

// No more than MaxConcurrency requests reach the backend at once, across
// operations; the others wait for a slot.
func TestConcurrencyBound(t *testing.T) {
	const limit, callers = 3, 12
	fb := fake.New(fake.Options{})
	g := &gate{Backend: fb, release: make(chan struct{}), entered: make(chan struct{}, callers)}
	e := newEnvWith(t, fb, g, func(c *Config) { c.MaxConcurrency = limit })
	var wg sync.WaitGroup
	errs := make(chan error, callers)
	for i := range callers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var err error
			if i%2 == 0 {
				_, err = e.store.Stat(context.Background(), "k/1")
			} else {
				err = e.store.Delete(context.Background(), "k/1")
			}
			if err != nil && !errors.Is(err, pluginapi.ErrNotFound) {
				errs <- err
			}
		}()
	}
	for i := range limit {
		testwait.Recv(t, g.entered, testwait.Default, "caller %d of %d to reach the backend", i+1, limit)
	}
	// Every other caller is parked on the semaphore, not in the backend.
	require.Eventually(t, func() bool { return e.store.Stats().Waiting == callers-limit }, liveness, time.Millisecond)
	assert.Equal(t, int64(limit), e.store.Stats().Inflight)
	assert.Equal(t, float64(callers-limit), e.metric("aof_tier2_waiting_requests", nil))
	close(g.release)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	assert.Equal(t, int64(limit), g.max())
	assert.Equal(t, int64(0), e.store.Stats().Inflight)
}

type gate struct {
	pluginapi.Backend
	release chan struct{}
	entered chan struct{}
	mu      sync.Mutex
	cur     int64
	peak    int64
}

func (g *gate) enter() {
	g.mu.Lock()
	g.cur++
	g.peak = max(g.peak, g.cur)
	g.mu.Unlock()
	g.entered <- struct{}{}
	<-g.release
	g.mu.Lock()
	g.cur--
	g.mu.Unlock()
}

func (g *gate) max() int64 {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.peak
}

func (g *gate) Head(ctx context.Context, key string) (pluginapi.ObjectInfo, error) {
	g.enter()
	return g.Backend.Head(ctx, key)
}

func (g *gate) Delete(ctx context.Context, key string) error {
	g.enter()
	return g.Backend.Delete(ctx, key)
}

func TestClose(t *testing.T) {
	e := newEnv(t, fake.Options{}, nil)
	require.NoError(t, e.store.Close(context.Background()))
	_, err := e.store.Stat(context.Background(), "k/1")
	assert.ErrorIs(t, err, ErrClosed)
}
