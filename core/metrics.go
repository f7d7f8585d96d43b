package core

import (
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the tier-0 engine's Prometheus metrics. They are created per
// Store and registered on Config.Registerer when one is given.
type metrics struct {
	appended       *appendCounts
	durableLatency *prometheus.HistogramVec
	flushes        *prometheus.CounterVec
	flushFailures  *prometheus.CounterVec
	flushLatency   *prometheus.HistogramVec
	flushBytes     *prometheus.CounterVec
	metaRetries    *prometheus.CounterVec
	metaFailures   *prometheus.CounterVec
	wouldBlock     *prometheus.CounterVec
	seals          *prometheus.CounterVec
	segments       *prometheus.GaugeVec
	bytes          *prometheus.GaugeVec
	recoveryDrop   *prometheus.CounterVec
	recoverySecs   *prometheus.GaugeVec
	damage         *prometheus.CounterVec
	damaged        *prometheus.GaugeVec
	repairs        *prometheus.CounterVec
}

var latencyBuckets = prometheus.ExponentialBuckets(20e-6, 2, 18) // 20 µs … ~2.6 s

func newMetrics(reg prometheus.Registerer) *metrics {
	sl := []string{"stream_id"}
	m := &metrics{
		appended: newAppendCounts(),
		durableLatency: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "aof_append_durable_latency_seconds",
			Help: "Time from a durable append (or Flush) call to its acknowledgement.", Buckets: latencyBuckets}, sl),
		flushes:       prometheus.NewCounterVec(prometheus.CounterOpts{Name: "aof_flush_total", Help: "Sync rounds (group commits) completed."}, sl),
		flushFailures: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "aof_flush_failures_total", Help: "Failed syncs; each stops its stream."}, sl),
		flushLatency: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "aof_flush_latency_seconds",
			Help: "Duration of one sync round.", Buckets: latencyBuckets}, sl),
		flushBytes: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "aof_flush_bytes_total", Help: "Bytes made durable."}, sl),
		metaRetries: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "aof_flush_metadata_retries_total",
			Help: "Retried metadata writes (the current.sealed pointer) during seal."}, sl),
		metaFailures: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "aof_flush_metadata_failures_total",
			Help: "Metadata writes during seal that failed for good (the stream stops)."}, sl),
		wouldBlock: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "aof_would_block_total", Help: "WouldBlock results by kind."}, []string{"kind"}),
		seals:      prometheus.NewCounterVec(prometheus.CounterOpts{Name: "aof_segment_seals_total", Help: "Segments sealed."}, sl),
		segments:   prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "aof_tier0_segments", Help: "Segments held in tier 0."}, sl),
		bytes:      prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "aof_tier0_bytes", Help: "Bytes of segment files held in tier 0."}, sl),
		recoveryDrop: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "aof_recovery_dropped_bytes_total",
			Help: "Torn or unacknowledged bytes found past a tail segment's intact records at recovery."}, sl),
		recoverySecs: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "aof_recovery_seconds", Help: "Duration of the last recovery of a stream."}, sl),
		damage: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "aof_stream_damage_total",
			Help: "Damage recovery found in durable records (not torn writes): the stream refuses appends until the loss is accepted."}, sl),
		damaged: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "aof_stream_damaged",
			Help: "1 while the stream refuses appends because of damage (docs/tiering.md#damage), else 0."}, sl),
		repairs: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "aof_segment_repairs_total",
			Help: "Damaged copies of sealed segments replaced from another tier, by the tier of the damaged copy and the reason."}, []string{"tier", "reason"}),
	}
	if reg != nil {
		for _, c := range []prometheus.Collector{m.appended, m.durableLatency, m.flushes, m.flushFailures,
			m.flushLatency, m.flushBytes, m.metaRetries, m.metaFailures, m.wouldBlock, m.seals, m.segments, m.bytes,
			m.recoveryDrop, m.recoverySecs, m.damage, m.damaged, m.repairs} {
			reg.MustRegister(c)
		}
	}
	return m
}

// streamMetrics are one stream's resolved metric children, so the hot path
// does no label lookups.
type streamMetrics struct {
	durableLatency prometheus.Observer
	flushes        prometheus.Counter
	flushFailures  prometheus.Counter
	flushLatency   prometheus.Observer
	flushBytes     prometheus.Counter
	metaRetries    prometheus.Counter
	metaFailures   prometheus.Counter
	seals          prometheus.Counter
	segments       prometheus.Gauge
	bytes          prometheus.Gauge
	recoveryDrop   prometheus.Counter
	recoverySecs   prometheus.Gauge
	damage         prometheus.Counter
	damaged        prometheus.Gauge
	repairs        *prometheus.CounterVec
	wouldBlock     *prometheus.CounterVec
}

func (m *metrics) forStream(id StreamID) *streamMetrics {
	l := strconv.FormatUint(uint64(id), 10)
	return &streamMetrics{
		durableLatency: m.durableLatency.WithLabelValues(l), flushes: m.flushes.WithLabelValues(l),
		flushFailures: m.flushFailures.WithLabelValues(l), flushLatency: m.flushLatency.WithLabelValues(l),
		flushBytes: m.flushBytes.WithLabelValues(l), metaRetries: m.metaRetries.WithLabelValues(l),
		metaFailures: m.metaFailures.WithLabelValues(l), seals: m.seals.WithLabelValues(l),
		segments: m.segments.WithLabelValues(l), bytes: m.bytes.WithLabelValues(l),
		recoveryDrop: m.recoveryDrop.WithLabelValues(l), recoverySecs: m.recoverySecs.WithLabelValues(l),
		damage: m.damage.WithLabelValues(l), damaged: m.damaged.WithLabelValues(l), repairs: m.repairs, wouldBlock: m.wouldBlock,
	}
}

// blocked counts a WouldBlock and returns it.
func (sm *streamMetrics) blocked(wb *WouldBlock) error {
	sm.wouldBlock.WithLabelValues(wb.Kind.String()).Inc()
	return wb
}
