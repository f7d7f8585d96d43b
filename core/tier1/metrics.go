package tier1

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/aof2/aof2/core/internal/metricset"
)

// metrics are the warm cache's Prometheus metrics (prefix aof_tier1_).
type metrics struct {
	compressions    *prometheus.CounterVec // result
	rawBytes        prometheus.Counter
	compressedBytes prometheus.Counter
	ratio           prometheus.Gauge
	compressSecs    prometheus.Histogram
	hydrations      *prometheus.CounterVec // result
	hydrateSecs     prometheus.Histogram
	framesFetched   prometheus.Counter
	fetchedBytes    prometheus.Counter
	cacheBytes      prometheus.Gauge
	artifacts       prometheus.Gauge
	evictions       prometheus.Counter
	evictedBytes    prometheus.Counter
	queueDepth      *prometheus.GaugeVec // pool
	verifyProblems  *prometheus.CounterVec

	set *metricset.Set
}

var jobBuckets = prometheus.ExponentialBuckets(1e-3, 2, 16) // 1 ms … ~33 s

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		compressions: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "aof_tier1_compressions_total",
			Help: "Segment compressions by result (ok, failed)."}, []string{"result"}),
		rawBytes: prometheus.NewCounter(prometheus.CounterOpts{Name: "aof_tier1_uncompressed_bytes_total",
			Help: "Segment bytes compressed into artifacts."}),
		compressedBytes: prometheus.NewCounter(prometheus.CounterOpts{Name: "aof_tier1_compressed_bytes_total",
			Help: "Artifact bytes written."}),
		ratio: prometheus.NewGauge(prometheus.GaugeOpts{Name: "aof_tier1_compression_ratio",
			Help: "Original bytes per artifact byte of the last compressed segment."}),
		compressSecs: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "aof_tier1_compression_seconds",
			Help: "Duration of one segment compression.", Buckets: jobBuckets}),
		hydrations: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "aof_tier1_hydrations_total",
			Help: "Hydrations by result (ok, failed, checksum_mismatch, corrupt)."}, []string{"result"}),
		hydrateSecs: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "aof_tier1_hydration_seconds",
			Help: "Duration of one hydration.", Buckets: jobBuckets}),
		framesFetched: prometheus.NewCounter(prometheus.CounterOpts{Name: "aof_tier1_frames_fetched_total",
			Help: "Frames read and decompressed by hydrations and artifact reads."}),
		fetchedBytes: prometheus.NewCounter(prometheus.CounterOpts{Name: "aof_tier1_fetched_bytes_total",
			Help: "Artifact bytes read by hydrations and artifact reads."}),
		cacheBytes: prometheus.NewGauge(prometheus.GaugeOpts{Name: "aof_tier1_bytes",
			Help: "Bytes of artifacts held in the warm cache."}),
		artifacts: prometheus.NewGauge(prometheus.GaugeOpts{Name: "aof_tier1_segments",
			Help: "Artifacts held in the warm cache."}),
		evictions: prometheus.NewCounter(prometheus.CounterOpts{Name: "aof_tier1_evictions_total",
			Help: "Artifacts evicted from the warm cache."}),
		evictedBytes: prometheus.NewCounter(prometheus.CounterOpts{Name: "aof_tier1_evicted_bytes_total",
			Help: "Artifact bytes evicted."}),
		queueDepth: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "aof_tier1_queue_depth",
			Help: "Jobs waiting for a worker, by pool (compress, hydrate)."}, []string{"pool"}),
		verifyProblems: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "aof_tier1_verify_problems_total",
			Help: "Artifacts found at open that did not verify, by kind (mismatch, unknown, missing)."}, []string{"kind"}),
	}
	set, err := metricset.Register(reg, "tier1", m.compressions, m.rawBytes, m.compressedBytes, m.ratio, m.compressSecs,
		m.hydrations, m.hydrateSecs, m.framesFetched, m.fetchedBytes, m.cacheBytes, m.artifacts, m.evictions,
		m.evictedBytes, m.queueDepth, m.verifyProblems)
	if err != nil {
		return nil, err
	}
	m.set = set
	return m, nil
}

// unregister removes the metrics from the registerer (at Close, so a
// reopened Cache can register again).
func (m *metrics) unregister() { m.set.Unregister() }
