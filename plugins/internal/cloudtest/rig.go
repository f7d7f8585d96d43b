package cloudtest

import (
	"bytes"
	"context"
	"errors"
	"io"
	"maps"
	"net/http"
	"strings"
	"testing"

	"github.com/aof2/aof2/pluginapi"
)

// Rig describes one cloud backend to the shared fault and large-object
// tests.
type Rig struct {
	// Endpoint is the local server's base URL.
	Endpoint string
	// Config returns the backend's settings to reach the server through
	// endpoint (the server itself or a Proxy in front of it).
	Config func(endpoint string) map[string]string
	// New returns an unconfigured backend.
	New func() pluginapi.Backend
	// Throttle is how the provider says "slow down" with HTTP status and
	// a Retry-After of retryAfter seconds.
	Throttle func(status int, retryAfter string) Action
	// BadCredentials overrides the settings with wrong credentials; when
	// the server checks none, AuthFail is the answer a real service gives.
	BadCredentials map[string]string
	AuthFail       Action
	// Download matches the requests that fetch object bytes.
	Download func(r *http.Request) bool
	// Parts are the settings for 8 MiB parts/blocks/chunks.
	Parts map[string]string
	// RewriteHost makes fault proxies send the server's own Host.
	RewriteHost bool
	// Leftovers, when set, fails the test if a cancelled or failed upload
	// left server-side state (e.g. an S3 multipart upload not aborted).
	Leftovers func(t *testing.T)
}

// Open configures a backend against endpoint with extra settings on top.
func (r *Rig) Open(t testing.TB, endpoint string, extra map[string]string) pluginapi.Backend {
	t.Helper()
	cfg := r.Config(endpoint)
	maps.Copy(cfg, extra)
	b := r.New()
	if _, err := b.Configure(context.Background(), pluginapi.ConfigureRequest{Config: cfg}); err != nil {
		t.Fatalf("Configure: %v", err)
	}
	t.Cleanup(func() {
		if c, ok := b.(io.Closer); ok {
			_ = c.Close()
		}
	})
	return b
}

// Upload matches requests that carry object bytes (a PUT or POST of 1 MiB
// or more: a single upload, a part, a block or a resumable chunk).
func Upload(r *http.Request) bool {
	return (r.Method == http.MethodPut || r.Method == http.MethodPost) && (r.ContentLength >= 1<<20 || r.ContentLength < 0)
}

// Proxy starts a fault proxy in front of the rig's server.
func (r *Rig) Proxy(t testing.TB) *Proxy {
	p := NewProxy(t, r.Endpoint)
	if r.RewriteHost {
		p.RewriteHost()
	}
	return p
}

// Pattern returns n deterministic bytes.
func Pattern(seed byte, n int) []byte {
	out := make([]byte, n)
	x := uint32(seed) + 1
	for i := range out {
		x = x*1664525 + 1013904223
		out[i] = byte(x >> 24)
	}
	return out
}

// PutBytes stores data under key.
func PutBytes(ctx context.Context, b pluginapi.Backend, key string, data []byte) (pluginapi.ObjectInfo, error) {
	return b.Put(ctx, pluginapi.PutRequest{Key: key, Size: uint64(len(data)), CRC64: pluginapi.CRC64(data)}, bytes.NewReader(data))
}

// MustMatch fails unless key holds exactly data.
func MustMatch(t *testing.T, b pluginapi.Backend, key string, data []byte) {
	t.Helper()
	_, rc, err := b.Get(context.Background(), pluginapi.GetRequest{Key: key})
	if err != nil {
		t.Fatalf("Get %s: %v", key, err)
	}
	defer func() { _ = rc.Close() }()
	crc, n, err := pluginapi.CRC64Reader(rc)
	if err != nil || n != uint64(len(data)) || crc != pluginapi.CRC64(data) {
		t.Fatalf("Get %s: %d bytes, CRC %016x, err %v; want %d bytes, CRC %016x", key, n, crc, err, len(data), pluginapi.CRC64(data))
	}
}

// MustBeAbsent fails unless key does not exist.
func MustBeAbsent(t *testing.T, b pluginapi.Backend, key, when string) {
	t.Helper()
	if _, err := b.Head(context.Background(), key); !errors.Is(err, pluginapi.ErrNotFound) {
		t.Fatalf("Head %s %s: %v, want ErrNotFound (nothing visible)", key, when, err)
	}
}

// WantCode fails unless err matches want.
func WantCode(t *testing.T, err, want error, what string) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Fatalf("%s: got %v, want %v", what, err, want)
	}
	// No provider text may reach the host: the message is ours.
	var e *pluginapi.Error
	if errors.As(err, &e) && strings.Contains(strings.ToLower(e.Message), "operation error") {
		t.Fatalf("%s: the error message leaks the SDK's text: %q", what, e.Message)
	}
}
