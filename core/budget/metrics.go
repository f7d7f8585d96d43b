package budget

import (
	"strconv"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/aof2/aof2/core/internal/metricset"
	"github.com/aof2/aof2/core/types"
)

// metrics are the budget's Prometheus metrics (prefix aof_tier0_). The
// core package already exports aof_tier0_bytes and aof_tier0_segments (what
// is on disk, per stream), so these names say what they count: the budget
// and its accounting.
type metrics struct {
	budget        prometheus.Gauge
	used          *prometheus.GaugeVec // stream_id
	evicting      prometheus.Gauge
	evictions     prometheus.Counter
	evictedBytes  prometheus.Counter
	dropped       prometheus.Counter
	admissions    *prometheus.CounterVec // kind: active, hydrate
	blocks        prometheus.Counter
	queueDepth    *prometheus.GaugeVec // priority
	queueByPrio   [numPriorities]prometheus.Gauge
	set           *metricset.Set
	admitActive   prometheus.Counter
	admitHydrated prometheus.Counter
	// sealRequests and pressureEvictions: pressure.go.
	sealRequests      prometheus.Counter
	pressureEvictions prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		budget: prometheus.NewGauge(prometheus.GaugeOpts{Name: "aof_tier0_budget_bytes",
			Help: "Configured tier-0 byte budget (tier0.max_bytes); 0 means unlimited."}),
		used: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "aof_tier0_budget_used_bytes",
			Help: "Segment bytes (capacity) counted against the tier-0 budget, per stream."}, []string{"stream_id"}),
		evicting: prometheus.NewGauge(prometheus.GaugeOpts{Name: "aof_tier0_evicting_bytes",
			Help: "Bytes of segments handed out for eviction and not yet removed."}),
		evictions: prometheus.NewCounter(prometheus.CounterOpts{Name: "aof_tier0_evictions_scheduled_total",
			Help: "Sealed segments handed out as eviction candidates (tier0_eviction_scheduled)."}),
		evictedBytes: prometheus.NewCounter(prometheus.CounterOpts{Name: "aof_tier0_evictions_scheduled_bytes_total",
			Help: "Bytes of the segments handed out as eviction candidates."}),
		dropped: prometheus.NewCounter(prometheus.CounterOpts{Name: "aof_tier0_segments_dropped_total",
			Help: "Segments removed from tier-0 accounting (tier0_segment_dropped)."}),
		admissions: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "aof_tier0_admissions_total",
			Help: "Segments admitted into tier 0, by kind (active, hydrate)."}, []string{"kind"}),
		blocks: prometheus.NewCounter(prometheus.CounterOpts{Name: "aof_tier0_admission_blocked_total",
			Help: "Admissions that could not proceed (WouldBlock(Admission) or a queued wait)."}),
		queueDepth: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "aof_tier0_activation_queue_depth",
			Help: "Pending activations waiting for tier-0 space, by priority."}, []string{"priority"}),
		sealRequests: prometheus.NewCounter(prometheus.CounterOpts{Name: "aof_tier0_seal_requests_total",
			Help: "Active segments asked to seal so that a refused activation can be served (tier0_seal_requested)."}),
		pressureEvictions: prometheus.NewCounter(prometheus.CounterOpts{Name: "aof_tier0_disk_pressure_evictions_total",
			Help: "Eviction candidates handed out because the disk is filling (ReclaimBytes), whatever the budget."}),
	}
	for p := range numPriorities {
		m.queueByPrio[p] = m.queueDepth.WithLabelValues(Priority(p).String())
	}
	m.admitActive = m.admissions.WithLabelValues("active")
	m.admitHydrated = m.admissions.WithLabelValues("hydrate")
	set, err := metricset.Register(reg, "tier0", m.budget, m.used, m.evicting, m.evictions, m.evictedBytes, m.dropped,
		m.admissions, m.blocks, m.queueDepth, m.sealRequests, m.pressureEvictions)
	if err != nil {
		return nil, err
	}
	m.set = set
	return m, nil
}

// unregister removes the metrics from the registerer (at Close, so a new
// Budget can register again).
func (m *metrics) unregister() { m.set.Unregister() }

func (m *metrics) streamUsed(id types.StreamID) prometheus.Gauge {
	return m.used.WithLabelValues(strconv.FormatUint(uint64(id), 10))
}

func (m *metrics) forgetStream(id types.StreamID) {
	m.used.DeleteLabelValues(strconv.FormatUint(uint64(id), 10))
}
