package streamlabels_test

import (
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"

	"github.com/aof2/aof2/host/streamlabels"
)

func registry(t *testing.T, streams ...string) *prometheus.Registry {
	t.Helper()
	reg := prometheus.NewRegistry()
	c := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "t_records_total", Help: "h"}, []string{"stream_id"})
	g := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "t_bytes", Help: "h"}, []string{"stream_id", "tier"})
	h := prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "t_latency_seconds", Help: "h", Buckets: []float64{1, 2}}, []string{"stream_id"})
	plain := prometheus.NewCounter(prometheus.CounterOpts{Name: "t_plain_total", Help: "h"})
	reg.MustRegister(c, g, h, plain)
	plain.Add(7)
	for i, s := range streams {
		c.WithLabelValues(s).Add(float64(i + 1))
		g.WithLabelValues(s, "0").Set(10)
		g.WithLabelValues(s, "1").Set(1)
		h.WithLabelValues(s).Observe(float64(i) + 0.5)
	}
	return reg
}

// TestCap: past the cap, streams are summed into stream_id="other" per
// remaining label set; histograms bucket by bucket; series without the
// label pass untouched; a stream that has its label keeps it.
func TestCap(t *testing.T) {
	reg := registry(t, "1", "2", "3", "4")
	want := `
# HELP t_bytes h
# TYPE t_bytes gauge
t_bytes{stream_id="1",tier="0"} 10
t_bytes{stream_id="1",tier="1"} 1
t_bytes{stream_id="2",tier="0"} 10
t_bytes{stream_id="2",tier="1"} 1
t_bytes{stream_id="other",tier="0"} 20
t_bytes{stream_id="other",tier="1"} 2
# HELP t_latency_seconds h
# TYPE t_latency_seconds histogram
t_latency_seconds_bucket{stream_id="1",le="1"} 1
t_latency_seconds_bucket{stream_id="1",le="2"} 1
t_latency_seconds_bucket{stream_id="1",le="+Inf"} 1
t_latency_seconds_sum{stream_id="1"} 0.5
t_latency_seconds_count{stream_id="1"} 1
t_latency_seconds_bucket{stream_id="2",le="1"} 0
t_latency_seconds_bucket{stream_id="2",le="2"} 1
t_latency_seconds_bucket{stream_id="2",le="+Inf"} 1
t_latency_seconds_sum{stream_id="2"} 1.5
t_latency_seconds_count{stream_id="2"} 1
t_latency_seconds_bucket{stream_id="other",le="1"} 0
t_latency_seconds_bucket{stream_id="other",le="2"} 0
t_latency_seconds_bucket{stream_id="other",le="+Inf"} 2
t_latency_seconds_sum{stream_id="other"} 6
t_latency_seconds_count{stream_id="other"} 2
# HELP t_plain_total h
# TYPE t_plain_total counter
t_plain_total 7
# HELP t_records_total h
# TYPE t_records_total counter
t_records_total{stream_id="1"} 1
t_records_total{stream_id="2"} 2
t_records_total{stream_id="other"} 7
`
	g := streamlabels.Cap(reg, 2)
	require.NoError(t, testutil.GatherAndCompare(g, strings.NewReader(want)))
	// Stream 0 appears later: the two kept streams keep their labels.
	c := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "t_late_total", Help: "h"}, []string{"stream_id"})
	reg.MustRegister(c)
	c.WithLabelValues("0").Inc()
	c.WithLabelValues("2").Inc()
	require.NoError(t, testutil.GatherAndCompare(g, strings.NewReader(`
# HELP t_late_total h
# TYPE t_late_total counter
t_late_total{stream_id="2"} 1
t_late_total{stream_id="other"} 1
`), "t_late_total"))
}

func TestCapNoneAndUnlimited(t *testing.T) {
	reg := registry(t, "1", "2")
	require.NoError(t, testutil.GatherAndCompare(streamlabels.Cap(reg, -1), strings.NewReader(`
# HELP t_records_total h
# TYPE t_records_total counter
t_records_total{stream_id="other"} 3
`), "t_records_total"))
	require.Same(t, reg, streamlabels.Cap(reg, 0))
}
