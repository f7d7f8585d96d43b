package tier2

import (
	"context"
	"errors"
	"io"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/aof2/aof2/conformance/fake"
	"github.com/aof2/aof2/pluginapi"
	pluginhost "github.com/aof2/aof2/pluginapi/host"
)

// The plugin crashes on every upload and the supervisor's breaker opens
// after the first crash: the store's retry of the crashed attempt fails
// fast with the supervisor's breaker error, which a caller of the store
// matches with tier2.ErrBreakerOpen, and the store gives up at once.
func TestSupervisorBreakerIsErrBreakerOpen(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and launches a plugin binary")
	}
	dir := t.TempDir()
	faults := filepath.Join(dir, "faults.json")
	require.NoError(t, fake.WriteFaultFile(faults, []fake.Fault{{Mode: fake.Crash, Ops: []fake.Op{fake.OpPut}}}))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	sup, err := pluginhost.NewSupervisor(ctx, pluginhost.SupervisorConfig{
		Launch: pluginhost.LaunchConfig{Path: fakePlugin(t), DisableAutoMTLS: true, Logger: nullLogger(),
			Configure: pluginapi.ConfigureRequest{Config: map[string]string{"fault_file": faults}}},
		PollInterval: 10 * time.Millisecond, BreakerThreshold: 1, BreakerCooldown: time.Hour,
		Logger: nullLogger(),
	})
	require.NoError(t, err)
	t.Cleanup(func() { _ = sup.Close(context.Background()) })

	reg := prometheus.NewRegistry()
	st, err := New(sup, Config{Registerer: reg, Logger: nullLogger(), Backoff: Backoff{Initial: time.Millisecond}})
	require.NoError(t, err)
	e := &env{t: t, store: st, reg: reg}

	_, err = st.UploadManifestChunk(ctx, 1, 1, payload(1<<20, 52))
	require.ErrorIs(t, err, ErrBreakerOpen)
	require.ErrorIs(t, err, pluginhost.ErrBreakerOpen, "one sentinel for both breakers")
	var boe *pluginhost.BreakerOpenError
	require.ErrorAs(t, err, &boe, "the supervisor's breaker tripped, not the store's")
	assert.Equal(t, 1.0, e.requests(ClassPut, OutcomeCrashed))
	assert.Equal(t, 1.0, e.requests(ClassPut, OutcomeBreakerOpen))
	assert.Equal(t, uint64(2), st.Stats().Attempts[OpUpload], "the crashed attempt and one that failed fast")
	assert.Equal(t, 0, sup.Restarts())
}

// counting passes every call to the backend and counts it.
type counting struct {
	pluginapi.Backend
	n atomic.Int64
}

func (c *counting) Info(ctx context.Context) (pluginapi.Info, error) {
	c.n.Add(1)
	return c.Backend.Info(ctx)
}

func (c *counting) Put(ctx context.Context, req pluginapi.PutRequest, body io.Reader) (pluginapi.ObjectInfo, error) {
	c.n.Add(1)
	return c.Backend.Put(ctx, req, body)
}

func (c *counting) PutFile(ctx context.Context, req pluginapi.PutRequest, path string) (pluginapi.ObjectInfo, error) {
	c.n.Add(1)
	return c.Backend.PutFile(ctx, req, path)
}

func (c *counting) Get(ctx context.Context, req pluginapi.GetRequest) (pluginapi.ObjectRange, io.ReadCloser, error) {
	c.n.Add(1)
	return c.Backend.Get(ctx, req)
}

func (c *counting) GetFile(ctx context.Context, req pluginapi.GetRequest, path string) (pluginapi.ObjectRange, error) {
	c.n.Add(1)
	return c.Backend.GetFile(ctx, req, path)
}

func (c *counting) Head(ctx context.Context, key string) (pluginapi.ObjectInfo, error) {
	c.n.Add(1)
	return c.Backend.Head(ctx, key)
}

func (c *counting) List(ctx context.Context, req pluginapi.ListRequest, page func([]pluginapi.ObjectInfo) error) error {
	c.n.Add(1)
	return c.Backend.List(ctx, req, page)
}

func (c *counting) Delete(ctx context.Context, key string) error {
	c.n.Add(1)
	return c.Backend.Delete(ctx, key)
}

// One failing logical operation costs a bounded number of backend
// requests with the default configuration: Backoff.Attempts (6) at most,
// Breaker.Threshold (5) when every request fails (the breaker opens and
// the last attempt fails fast), 1 + ChecksumRetries (2) for bytes that are
// not the stored ones, and none while the breaker is open. With the cloud
// plugins' SDKs sending each request once (TestOneRequestPerCall), these
// are also the HTTP requests the object store sees.
func TestOneFailingOperationIsBounded(t *testing.T) {
	const retryAfter = 1500 * time.Millisecond
	seg := payload(64<<10, 9)
	cases := []struct {
		name     string
		fault    fake.Fault
		breaker  BreakerConfig
		op       func(ctx context.Context, st *Store, dir string) error
		requests int64
		want     error
	}{
		{"fetch, every request 5xx", fake.Fault{Mode: fake.ServerError, Ops: []fake.Op{fake.OpGetFile}}, BreakerConfig{},
			download, 5, ErrBreakerOpen},
		{"fetch, 5xx, breaker kept closed by other traffic", fake.Fault{Mode: fake.ServerError, Ops: []fake.Op{fake.OpGetFile}}, BreakerConfig{Threshold: 1000},
			download, 6, pluginapi.ErrUnavailable},
		{"fetch, throttled", fake.Fault{Mode: fake.Throttle, RetryAfter: retryAfter, Ops: []fake.Op{fake.OpGetFile}}, BreakerConfig{},
			download, 6, pluginapi.ErrThrottled},
		{"fetch, wrong bytes", fake.Fault{Mode: fake.WrongBytes, Ops: []fake.Op{fake.OpGetFile}}, BreakerConfig{},
			download, 2, ErrChecksum},
		{"upload, every request 5xx", fake.Fault{Mode: fake.ServerError, Ops: []fake.Op{fake.OpPut}}, BreakerConfig{},
			func(ctx context.Context, st *Store, _ string) error {
				_, err := st.UploadSegmentData(ctx, sk(1, 2), seg, SegmentInfo{RecordCount: 1})
				return err
			}, 5, ErrBreakerOpen},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			fb := fake.New(fake.Options{})
			cb := &counting{Backend: fb}
			e := newEnvWith(t, fb, cb, func(cfg *Config) { cfg.Breaker = c.breaker })
			ctx := context.Background()
			_, err := e.store.UploadSegmentData(ctx, sk(1, 1), seg, SegmentInfo{RecordCount: 1})
			require.NoError(t, err)
			require.NoError(t, fb.Inject(c.fault))
			before := cb.n.Load()

			err = c.op(ctx, e.store, t.TempDir())
			require.ErrorIs(t, err, c.want)
			assert.Equal(t, c.requests, cb.n.Load()-before, "backend requests of one failing operation")
			if c.fault.Mode == fake.Throttle {
				for _, d := range e.clock.Sleeps() {
					assert.GreaterOrEqual(t, d, retryAfter, "every retry honours the retry-after")
				}
			}
			if errors.Is(err, ErrBreakerOpen) {
				before = cb.n.Load()
				require.ErrorIs(t, c.op(ctx, e.store, t.TempDir()), ErrBreakerOpen)
				assert.Equal(t, before, cb.n.Load(), "an open breaker sends nothing to the backend")
			}
		})
	}
}

func download(ctx context.Context, st *Store, dir string) error {
	_, err := st.DownloadSegment(ctx, sk(1, 1), filepath.Join(dir, "seg"), Expect{})
	return err
}
