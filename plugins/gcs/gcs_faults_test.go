package gcs_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/aof2/aof2/pluginapi"
	"github.com/aof2/aof2/plugins/gcs"
	"github.com/aof2/aof2/plugins/internal/cloudtest"
)

func jsonError(status int, reason string) string {
	return fmt.Sprintf(`{"error":{"code":%d,"message":"%s","errors":[{"domain":"global","reason":"%s","message":"%s"}]}}`, status, reason, reason, reason)
}

func throttle(status int, after string) cloudtest.Action {
	return cloudtest.Respond(status, map[string]string{"Retry-After": after, "Content-Type": "application/json"}, jsonError(status, "rateLimitExceeded"))
}

func rig(t *testing.T) *cloudtest.Rig {
	s := localServer(t)
	bucket := s.bucket(t)
	return &cloudtest.Rig{
		Endpoint: s.endpoint,
		Config:   func(endpoint string) map[string]string { return s.config(bucket, endpoint) },
		New:      func() pluginapi.Backend { return gcs.New() },
		Throttle: throttle,
		// fake-gcs-server checks no credentials: the proxy answers as GCS
		// does to an invalid token.
		AuthFail: cloudtest.Respond(http.StatusUnauthorized, map[string]string{"Content-Type": "application/json"}, jsonError(401, "authError")),
		Download: func(r *http.Request) bool {
			return r.Method == http.MethodGet && (r.URL.Query().Get("alt") == "media" || !strings.Contains(r.URL.Path, "/storage/v1/"))
		},
		Parts:       map[string]string{"chunk_size": "8MiB"},
		RewriteHost: true,
	}
}

// TestFaults puts an HTTP fault proxy between the plugin and fake-gcs-server.
func TestFaults(t *testing.T) { cloudtest.RunFaults(t, rig(t)) }

// TestResumable exercises 64 MiB objects in 8 MiB resumable chunks.
func TestResumable(t *testing.T) { cloudtest.RunLarge(t, rig(t)) }

// TestOneRequestPerCall: the SDK sends each request once; tier 2 retries.
func TestOneRequestPerCall(t *testing.T) {
	cloudtest.RunOneRequestPerCall(t, cloudtest.Failing{
		New: func() pluginapi.Backend { return gcs.New() },
		Config: func(endpoint string) map[string]string {
			return map[string]string{"bucket": "b", "endpoint": endpoint, "no_auth": "true"}
		},
		ServerError: cloudtest.Respond(http.StatusInternalServerError, map[string]string{"Content-Type": "application/json"}, jsonError(500, "backendError")),
		Throttle:    throttle,
	})
}
