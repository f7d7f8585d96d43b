package main

import (
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestServeMetricsMaxStreams: with listen.metrics_max_streams = 1 (set
// through its variable), /metrics names one stream and sums the other
// two under stream_id="other", and the scrape still lints clean.
func TestServeMetricsMaxStreams(t *testing.T) {
	bin := hostBinaries(t)
	h := startHost(t, bin, []string{"AOF2_LISTEN_METRICS_MAX_STREAMS=1"}, defaultHostArgs(filepath.Join(t.TempDir(), "data"))...)
	h.waitReady()
	for _, s := range []string{"1", "2", "3"} {
		code, body, _ := httpDo(t, http.MethodPost, h.url("/v1/streams/"+s+"/records"), "", strings.NewReader("r"+s))
		require.Equal(t, http.StatusOK, code, body)
	}
	code, body, _ := httpDo(t, http.MethodGet, h.url("/metrics"), "", nil)
	require.Equal(t, http.StatusOK, code)
	require.Contains(t, body, `aof_append_records_total{stream_id="1"} 1`)
	require.Contains(t, body, `aof_append_records_total{stream_id="other"} 2`)
	require.NotContains(t, body, `stream_id="2"`)
	require.NotContains(t, body, `stream_id="3"`)
	requireMetricLint(t, body)
}
