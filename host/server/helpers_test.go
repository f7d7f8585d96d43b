package server_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/aof2/aof2/core"
	"github.com/aof2/aof2/core/segment"
	"github.com/aof2/aof2/host/server"
	"github.com/aof2/aof2/host/server/servertest"
)

// smallConfig rolls segments over every MiB.
func smallConfig() core.Config {
	return core.Config{SegmentSize: segment.MinCapacity}
}

func start(t *testing.T, cfg core.Config, opts server.Options) *servertest.Host {
	t.Helper()
	return servertest.Start(t, cfg, opts)
}

// response is an HTTP answer read whole.
type response struct {
	code   int
	header http.Header
	body   []byte
}

func (r response) json(t *testing.T, v any) {
	t.Helper()
	require.NoError(t, json.Unmarshal(r.body, v), "body: %s", r.body)
}

// errBody is the JSON error shape.
type errBody struct {
	Error        string `json:"error"`
	Code         string `json:"code"`
	Kind         string `json:"kind"`
	RetryAfterMS int64  `json:"retry_after_ms"`
	Appended     int    `json:"appended"`
}

// httpClient bounds every HTTP request of the tests.
var httpClient = &http.Client{Timeout: time.Minute}

func do(t *testing.T, method, url, contentType string, body []byte, header ...string) response {
	t.Helper()
	req, err := http.NewRequest(method, url, bytes.NewReader(body))
	require.NoError(t, err)
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := httpClient.Do(req)
	require.NoError(t, err, "%s %s", method, url)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return response{code: resp.StatusCode, header: resp.Header, body: b}
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	require.NoError(t, err)
	return b
}

// payload returns a recognisable payload of size bytes for record i.
func payload(i, size int) []byte {
	p := make([]byte, size)
	for j := range p {
		p[j] = byte(i*7 + j)
	}
	copy(p, []byte{byte(i >> 24), byte(i >> 16), byte(i >> 8), byte(i)})
	return p
}
