package cloudtest

import (
	"context"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aof2/aof2/pluginapi"
)

// Failing describes a backend to RunOneRequestPerCall: how to reach any
// server, and how its provider answers "internal error" and "slow down".
// It needs no local server: the test serves the failures itself.
type Failing struct {
	New func() pluginapi.Backend
	// Config reaches a server at endpoint, with made-up credentials.
	Config func(endpoint string) map[string]string
	// ServerError is the provider's HTTP 500.
	ServerError Action
	// Throttle is the provider's throttling answer (see Rig.Throttle).
	Throttle func(status int, retryAfter string) Action
}

// RunOneRequestPerCall holds a backend with its default settings to one
// HTTP request per call when the server fails it: the SDK does not retry,
// because the host's tier 2 owns retries (docs/adr-tier2.md, "Retries and
// the breaker, end to end"), and the failure reaches it as the contract's
// code, a throttling one with the server's retry-after.
func RunOneRequestPerCall(t *testing.T, f Failing) {
	for _, c := range []struct {
		name   string
		answer Action
		want   error
	}{
		{"ServerError", f.ServerError, pluginapi.ErrUnavailable},
		{"Throttled", f.Throttle(http.StatusTooManyRequests, "2"), pluginapi.ErrThrottled},
	} {
		t.Run(c.name, func(t *testing.T) {
			var requests atomic.Int64
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				requests.Add(1)
				c.answer(w, r, http.NotFoundHandler())
			}))
			t.Cleanup(srv.Close)
			b := f.New()
			_, err := b.Configure(context.Background(), pluginapi.ConfigureRequest{Config: maps.Clone(f.Config(srv.URL))})
			if err != nil {
				t.Fatalf("Configure: %v", err)
			}
			t.Cleanup(func() {
				if cl, ok := b.(io.Closer); ok {
					_ = cl.Close()
				}
			})
			data := []byte("one request per call")
			src := filepath.Join(t.TempDir(), "src")
			if err := os.WriteFile(src, data, 0o600); err != nil {
				t.Fatal(err)
			}
			put := pluginapi.PutRequest{Key: "attempts/object", Size: uint64(len(data)), CRC64: pluginapi.CRC64(data)}
			calls := []struct {
				name string
				call func(ctx context.Context) error
			}{
				{"Head", func(ctx context.Context) error { _, err := b.Head(ctx, put.Key); return err }},
				{"Get", func(ctx context.Context) error {
					_, rc, err := b.Get(ctx, pluginapi.GetRequest{Key: put.Key})
					if err == nil {
						_, err = io.ReadAll(rc)
						_ = rc.Close()
					}
					return err
				}},
				{"GetFile", func(ctx context.Context) error {
					_, err := b.GetFile(ctx, pluginapi.GetRequest{Key: put.Key}, filepath.Join(t.TempDir(), "dst"))
					return err
				}},
				{"Put", func(ctx context.Context) error {
					_, err := b.Put(ctx, put, strings.NewReader(string(data)))
					return err
				}},
				{"PutFile", func(ctx context.Context) error { _, err := b.PutFile(ctx, put, src); return err }},
				{"List", func(ctx context.Context) error {
					return b.List(ctx, pluginapi.ListRequest{Prefix: "attempts/"}, func([]pluginapi.ObjectInfo) error { return nil })
				}},
				{"Delete", func(ctx context.Context) error { return b.Delete(ctx, put.Key) }},
			}
			for _, call := range calls {
				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				before := requests.Load()
				err := call.call(ctx)
				cancel()
				WantCode(t, err, c.want, call.name+" against a failing server")
				if n := requests.Load() - before; n != 1 {
					t.Errorf("%s sent %d HTTP requests to a failing server, want 1 (the SDK must not retry)", call.name, n)
				}
				if c.want == pluginapi.ErrThrottled {
					if d, ok := pluginapi.RetryAfter(err); !ok || d != 2*time.Second {
						t.Errorf("%s: retry-after %v (%v), want 2s", call.name, d, ok)
					}
				}
			}
		})
	}
}
