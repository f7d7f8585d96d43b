package cloudtest

import (
	"context"
	"errors"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/aof2/aof2/pluginapi"
)

// RunFaults runs the fault tests through a Proxy between the backend and
// its server.
func RunFaults(t *testing.T, r *Rig) {
	t.Run("Throttled", func(t *testing.T) {
		for _, c := range []struct {
			status int
			after  string
			want   time.Duration
		}{{http.StatusServiceUnavailable, "7", 7 * time.Second}, {http.StatusTooManyRequests, "3", 3 * time.Second}} {
			p := r.Proxy(t)
			// One attempt: the SDK's own retries would only delay the answer.
			b := r.Open(t, p.URL, map[string]string{"max_attempts": "1"})
			rule := p.Inject(&Rule{Action: r.Throttle(c.status, c.after)})
			_, err := b.Head(context.Background(), "throttled/object")
			WantCode(t, err, pluginapi.ErrThrottled, "Head through a throttling server")
			if d, ok := pluginapi.RetryAfter(err); !ok || d != c.want {
				t.Fatalf("HTTP %d: retry-after %v (%v), want %v", c.status, d, ok, c.want)
			}
			_, err = PutBytes(context.Background(), b, "throttled/object", []byte("data"))
			WantCode(t, err, pluginapi.ErrThrottled, "Put through a throttling server")
			if rule.Hits() < 2 {
				t.Fatalf("the proxy saw %d requests", rule.Hits())
			}
			p.Clear()
			MustBeAbsent(t, b, "throttled/object", "after a throttled Put")
		}
	})
	t.Run("ResetMidUploadRetried", func(t *testing.T) {
		p := r.Proxy(t)
		b := r.Open(t, p.URL, r.Parts)
		data := Pattern(1, 20<<20)
		rule := p.Inject(&Rule{Match: Upload, Times: 1, Action: ResetAfter(512 << 10)})
		_, err := PutBytes(context.Background(), b, "reset/once", data)
		if rule.Hits() != 1 {
			t.Fatalf("the reset was not injected (%d hits)", rule.Hits())
		}
		switch {
		case err == nil:
			MustMatch(t, b, "reset/once", data)
		case errors.Is(err, pluginapi.ErrUnavailable):
			t.Logf("not retried by the SDK, typed error: %v", err)
			MustBeAbsent(t, b, "reset/once", "after a failed upload")
		default:
			t.Fatalf("Put with one connection reset: %v, want success or ErrUnavailable", err)
		}
	})
	t.Run("ResetEveryUpload", func(t *testing.T) {
		p := r.Proxy(t)
		// Two attempts: enough to show a retry fails too, without the
		// SDKs' long backoffs.
		b := r.Open(t, p.URL, with(r.Parts, "max_attempts", "2"))
		data := Pattern(2, 20<<20)
		p.Inject(&Rule{Match: Upload, Action: ResetAfter(512 << 10)})
		_, err := PutBytes(context.Background(), b, "reset/always", data)
		WantCode(t, err, pluginapi.ErrUnavailable, "Put whose every upload request is reset")
		p.Clear()
		MustBeAbsent(t, b, "reset/always", "after uploads that were all reset")
		if r.Leftovers != nil {
			r.Leftovers(t)
		}
	})
	t.Run("TruncatedGet", func(t *testing.T) {
		p := r.Proxy(t)
		b := r.Open(t, p.URL, map[string]string{"max_attempts": "1"})
		data := Pattern(3, 1<<20)
		if _, err := PutBytes(context.Background(), b, "truncated/object", data); err != nil {
			t.Fatal(err)
		}
		for _, req := range []pluginapi.GetRequest{{Key: "truncated/object"}, {Key: "truncated/object", Offset: 10, Length: 500_000}} {
			rule := p.Inject(&Rule{Match: r.Download, Action: TruncateBody(100 << 10)})
			got, err := readRange(b, req)
			p.Clear()
			if rule.Hits() == 0 {
				t.Fatalf("the truncation was not injected")
			}
			want := data[req.Offset:]
			if req.Length > 0 {
				want = want[:req.Length]
			}
			if err == nil {
				// The SDK resumed the read from where it was cut
				// (GCS's reader does): only the exact bytes may come back.
				if string(got) != string(want) {
					t.Fatalf("Get of a truncated body succeeded with %d wrong bytes", len(got))
				}
				t.Logf("range %d+%d: the SDK resumed the cut read; %d correct bytes", req.Offset, req.Length, len(got))
				continue
			}
			WantCode(t, err, pluginapi.ErrChecksum, "Get of a truncated body")
			if !bytesPrefix(want, got) {
				t.Fatalf("Get returned %d bytes that differ from the object", len(got))
			}
		}
	})
	t.Run("WrongCredentials", func(t *testing.T) {
		extra := r.BadCredentials
		endpoint := r.Endpoint
		if r.AuthFail != nil {
			p := r.Proxy(t)
			p.Inject(&Rule{Action: r.AuthFail})
			endpoint = p.URL
		}
		b := r.Open(t, endpoint, extra)
		_, err := b.Head(context.Background(), "auth/object")
		WantCode(t, err, pluginapi.ErrAuth, "Head with wrong credentials")
		_, err = PutBytes(context.Background(), b, "auth/object", []byte("x"))
		WantCode(t, err, pluginapi.ErrAuth, "Put with wrong credentials")
		WantCode(t, b.Probe(context.Background(), pluginapi.ProbeRequest{}), pluginapi.ErrAuth, "Probe with wrong credentials")
	})
}

func readRange(b pluginapi.Backend, req pluginapi.GetRequest) ([]byte, error) {
	_, rc, err := b.Get(context.Background(), req)
	if err != nil {
		return nil, err
	}
	defer func() { _ = rc.Close() }()
	return io.ReadAll(rc)
}

func bytesPrefix(full, got []byte) bool {
	return len(got) <= len(full) && string(full[:len(got)]) == string(got)
}

func with(m map[string]string, k, v string) map[string]string {
	out := map[string]string{k: v}
	for mk, mv := range m {
		out[mk] = mv
	}
	return out
}
