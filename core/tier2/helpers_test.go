package tier2

import (
	"context"
	"io"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/aof2/aof2/conformance/fake"
	"github.com/aof2/aof2/core/types"
	"github.com/aof2/aof2/pluginapi"
)

// fakeClock advances only when told to, or by the waits the retry loop
// asks for (which it records and returns at once).
type fakeClock struct {
	mu     sync.Mutex
	now    time.Time
	sleeps []time.Duration
}

func newFakeClock() *fakeClock { return &fakeClock{now: time.Unix(1_700_000_000, 0)} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Sleep(ctx context.Context, d time.Duration) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.sleeps = append(c.sleeps, d)
	c.now = c.now.Add(d)
	return nil
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

func (c *fakeClock) Sleeps() []time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]time.Duration(nil), c.sleeps...)
}

// blockingClock's Sleep announces itself and waits for ctx: a test can
// cancel an operation while it is backing off.
type blockingClock struct {
	SystemClock
	entered chan time.Duration
}

func (c *blockingClock) Sleep(ctx context.Context, d time.Duration) error {
	c.entered <- d
	<-ctx.Done()
	return ctx.Err()
}

type env struct {
	t     *testing.T
	fake  *fake.Backend
	store *Store
	clock *fakeClock
	reg   *prometheus.Registry
}

// newEnv builds a Store over an in-memory fake (no gRPC) with a fake
// clock and a private registry; tweak adjusts the config.
func newEnv(t *testing.T, opts fake.Options, tweak func(*Config)) *env {
	t.Helper()
	return newEnvOver(t, fake.New(opts), tweak)
}

func newEnvOver(t *testing.T, fb *fake.Backend, tweak func(*Config)) *env {
	t.Helper()
	return newEnvWith(t, fb, fb, tweak)
}

func newEnvWith(t *testing.T, fb *fake.Backend, b pluginapi.Backend, tweak func(*Config)) *env {
	t.Helper()
	e := &env{t: t, fake: fb, clock: newFakeClock(), reg: prometheus.NewRegistry()}
	cfg := Config{Clock: e.clock, Registerer: e.reg, Logger: hclog.NewNullLogger(), JitterSeed: 1}
	if tweak != nil {
		tweak(&cfg)
	}
	st, err := New(b, cfg)
	require.NoError(t, err)
	e.store = st
	return e
}

// requests reads aof_tier2_requests_total{class,result} from the registry.
func (e *env) requests(class Class, o Outcome) float64 {
	return e.metric("aof_tier2_requests_total", map[string]string{"class": class.String(), "result": o.String()})
}

// metric reads one counter or gauge sample from the registry (0 if absent).
func (e *env) metric(name string, labels map[string]string) float64 {
	e.t.Helper()
	fams, err := e.reg.Gather()
	require.NoError(e.t, err)
	for _, f := range fams {
		if f.GetName() != name {
			continue
		}
	next:
		for _, m := range f.GetMetric() {
			for _, lp := range m.GetLabel() {
				if v, ok := labels[lp.GetName()]; ok && v != lp.GetValue() {
					continue next
				}
			}
			if m.GetCounter() != nil {
				return m.GetCounter().GetValue()
			}
			return m.GetGauge().GetValue()
		}
	}
	return 0
}

func (e *env) retries(op Op) uint64 { return e.store.Stats().Retries[op] }

// rawGet reads an object straight from the fake.
func (e *env) rawGet(key string) ([]byte, pluginapi.ObjectInfo) {
	e.t.Helper()
	rng, rc, err := e.fake.Get(context.Background(), pluginapi.GetRequest{Key: key})
	require.NoError(e.t, err)
	defer func() { _ = rc.Close() }()
	b, err := io.ReadAll(rc)
	require.NoError(e.t, err)
	return b, rng.Info
}

func (e *env) rawPut(key string, data []byte, md map[string]string) pluginapi.ObjectInfo {
	e.t.Helper()
	info, err := e.fake.Put(context.Background(), pluginapi.PutRequest{Key: key, Size: uint64(len(data)), CRC64: pluginapi.CRC64(data), Metadata: md},
		bytesReader(data))
	require.NoError(e.t, err)
	return info
}

func bytesReader(b []byte) io.Reader { return &sliceReader{b: b} }

type sliceReader struct{ b []byte }

func (r *sliceReader) Read(p []byte) (int, error) {
	if len(r.b) == 0 {
		return 0, io.EOF
	}
	n := copy(p, r.b)
	r.b = r.b[n:]
	return n, nil
}

// payload is deterministic test data.
func payload(n int, seed byte) []byte {
	b := make([]byte, n)
	x := uint32(seed) + 1
	for i := range b {
		x = x*1664525 + 1013904223
		b[i] = byte(x >> 24)
	}
	return b
}

// hook wraps a backend, letting a test replace any call's outcome.
type hook struct {
	pluginapi.Backend
	mu     sync.Mutex
	before func(op string) error // non-nil error fails the call
}

func (h *hook) check(op string) error {
	h.mu.Lock()
	f := h.before
	h.mu.Unlock()
	if f == nil {
		return nil
	}
	return f(op)
}

func (h *hook) Put(ctx context.Context, req pluginapi.PutRequest, body io.Reader) (pluginapi.ObjectInfo, error) {
	if err := h.check("put"); err != nil {
		return pluginapi.ObjectInfo{}, err
	}
	return h.Backend.Put(ctx, req, body)
}

func (h *hook) PutFile(ctx context.Context, req pluginapi.PutRequest, path string) (pluginapi.ObjectInfo, error) {
	if err := h.check("put_file"); err != nil {
		return pluginapi.ObjectInfo{}, err
	}
	return h.Backend.PutFile(ctx, req, path)
}

func (h *hook) Get(ctx context.Context, req pluginapi.GetRequest) (pluginapi.ObjectRange, io.ReadCloser, error) {
	if err := h.check("get"); err != nil {
		return pluginapi.ObjectRange{}, nil, err
	}
	return h.Backend.Get(ctx, req)
}

func (h *hook) GetFile(ctx context.Context, req pluginapi.GetRequest, path string) (pluginapi.ObjectRange, error) {
	if err := h.check("get_file"); err != nil {
		return pluginapi.ObjectRange{}, err
	}
	return h.Backend.GetFile(ctx, req, path)
}

func (h *hook) Head(ctx context.Context, key string) (pluginapi.ObjectInfo, error) {
	if err := h.check("head"); err != nil {
		return pluginapi.ObjectInfo{}, err
	}
	return h.Backend.Head(ctx, key)
}

func (h *hook) Delete(ctx context.Context, key string) error {
	if err := h.check("delete"); err != nil {
		return err
	}
	return h.Backend.Delete(ctx, key)
}

// failTimes returns a before-hook failing op n times with err.
func failTimes(op string, n int, err error) func(string) error {
	var mu sync.Mutex
	return func(got string) error {
		mu.Lock()
		defer mu.Unlock()
		if got != op || n == 0 {
			return nil
		}
		n--
		return err
	}
}

func nullLogger() hclog.Logger { return hclog.NewNullLogger() }

// sk is a segment key from plain numbers.
func sk[T ~uint64 | ~int](stream, seg T) types.SegmentKey {
	return types.SegmentKey{Stream: types.StreamID(stream), Segment: types.SegmentID(seg)}
}
