package manifest

import (
	"errors"
	"reflect"
	"strconv"

	"github.com/hashicorp/go-hclog"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/aof2/aof2/core/types"
)

// Metric names. The four replay metrics have documented names that must not change (their
// dashboards and alerts use them); all carry the label stream_id.
const (
	// MetricReplayChunkLag is a gauge: wall seconds the latest replay spent
	// reading, verifying, applying and trimming the most recent chunk.
	MetricReplayChunkLag = "aof_manifest_replay_chunk_lag_seconds"
	// MetricReplayJournalLag is a gauge: trailing uncommitted bytes the
	// latest replay found (and trimmed) past committed_len.
	MetricReplayJournalLag = "aof_manifest_replay_journal_lag_bytes"
	// MetricReplayChunkCount is a gauge: chunks the latest replay inspected.
	MetricReplayChunkCount = "aof_manifest_replay_chunk_count"
	// MetricReplayCorruption is a counter: CRC or decode failures observed
	// by replays of the stream since the process started. A counter (not a
	// gauge) so that an alert on increase() catches a corruption even when
	// a later replay is clean.
	MetricReplayCorruption = "aof_manifest_replay_corruption_events"
	// MetricShadowDivergence is a gauge: segments whose tier-1 JSON view
	// differs from the log-derived view at the latest parity check.
	MetricShadowDivergence = "aof_manifest_shadow_divergence"
	// MetricUnknownRecords is a counter of records of unknown types that
	// replay skipped.
	MetricUnknownRecords = "aof_manifest_replay_unknown_records_total"
)

// metricVecs are the package's collectors in one registry.
type metricVecs struct {
	chunkLag, journalLag, chunkCount, divergence *prometheus.GaugeVec
	corruption, unknown                          *prometheus.CounterVec
}

func newMetricVecs(reg prometheus.Registerer) (*metricVecs, error) {
	label := []string{"stream_id"}
	m := &metricVecs{
		chunkLag: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: MetricReplayChunkLag,
			Help: "Wall-clock seconds the latest manifest replay spent trimming and replaying the most recent chunk."}, label),
		journalLag: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: MetricReplayJournalLag,
			Help: "Trailing uncommitted manifest bytes found and trimmed by the latest replay."}, label),
		chunkCount: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: MetricReplayChunkCount,
			Help: "Manifest log chunks inspected by the latest replay."}, label),
		divergence: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: MetricShadowDivergence,
			Help: "Segments whose tier-1 JSON view differs from the manifest-log view at the latest parity check."}, label),
		corruption: prometheus.NewCounterVec(prometheus.CounterOpts{Name: MetricReplayCorruption,
			Help: "CRC or decode failures observed while replaying the stream's manifest."}, label),
		unknown: prometheus.NewCounterVec(prometheus.CounterOpts{Name: MetricUnknownRecords,
			Help: "Manifest records of unknown types skipped by replay."}, label),
	}
	if reg == nil || isNilPointer(reg) {
		return m, nil
	}
	var err error
	m.chunkLag = register(reg, m.chunkLag, &err)
	m.journalLag = register(reg, m.journalLag, &err)
	m.chunkCount = register(reg, m.chunkCount, &err)
	m.divergence = register(reg, m.divergence, &err)
	m.corruption = register(reg, m.corruption, &err)
	m.unknown = register(reg, m.unknown, &err)
	return m, err
}

// isNilPointer catches a typed nil (a nil *prometheus.Registry passed as a
// Registerer), which would otherwise panic on first use.
func isNilPointer(v any) bool {
	rv := reflect.ValueOf(v)
	return rv.Kind() == reflect.Pointer && rv.IsNil()
}

// register registers c, or returns the identical collector already
// registered (several streams, or a reopened stream, share one registry).
func register[C prometheus.Collector](reg prometheus.Registerer, c C, errp *error) C {
	if err := reg.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if existing, ok := are.ExistingCollector.(C); ok {
				return existing
			}
		}
		if *errp == nil {
			*errp = err
		}
	}
	return c
}

// streamMetrics are the children of one stream.
type streamMetrics struct {
	streamID   types.StreamID
	log        hclog.Logger
	chunkLag   prometheus.Gauge
	journalLag prometheus.Gauge
	chunkCount prometheus.Gauge
	divergence *prometheus.GaugeVec // child created by the first parity check
	corruption prometheus.Counter
	unknown    prometheus.Counter
}

func newStreamMetrics(reg prometheus.Registerer, log hclog.Logger, streamID types.StreamID) (*streamMetrics, error) {
	v, err := newMetricVecs(reg)
	if err != nil {
		return nil, err
	}
	id := strconv.FormatUint(uint64(streamID), 10)
	return &streamMetrics{
		streamID:   streamID,
		log:        log,
		chunkLag:   v.chunkLag.WithLabelValues(id),
		journalLag: v.journalLag.WithLabelValues(id),
		chunkCount: v.chunkCount.WithLabelValues(id),
		divergence: v.divergence,
		corruption: v.corruption.WithLabelValues(id),
		unknown:    v.unknown.WithLabelValues(id),
	}, nil
}

// event logs one metric observation as a structured event that the query
// metric_name:"aof_manifest_replay_*" stream_id:N finds.
func (m *streamMetrics) event(level hclog.Level, name string, value any, extra ...any) {
	args := append([]any{"metric_name", name, "stream_id", m.streamID, "value", value}, extra...)
	m.log.Log(level, "manifest_metric", args...)
}

// observeReplay publishes the replay statistics as metrics and events.
func (m *streamMetrics) observeReplay(st *ReplayStats) {
	lag := st.LastChunkLag.Seconds()
	m.chunkLag.Set(lag)
	m.journalLag.Set(float64(st.JournalLagBytes))
	m.chunkCount.Set(float64(st.ChunksInspected))
	m.corruption.Add(float64(st.CorruptionEvents))
	m.unknown.Add(float64(st.UnknownRecords))

	m.event(hclog.Info, MetricReplayChunkLag, lag, "chunk_index", st.LastChunk)
	m.event(hclog.Info, MetricReplayJournalLag, st.JournalLagBytes)
	m.event(hclog.Info, MetricReplayChunkCount, st.ChunksInspected)
	level := hclog.Info
	if st.CorruptionEvents > 0 {
		level = hclog.Error
	}
	m.event(level, MetricReplayCorruption, st.CorruptionEvents, "needs_repair", st.NeedsRepair)
	for _, c := range st.Corruptions {
		m.log.Error("manifest_corruption", "stream_id", m.streamID, "file", c.File,
			"chunk_index", c.ChunkIndex, "offset", c.Offset, "reason", c.Reason)
	}
}

// observeDivergence publishes a parity result.
func (m *streamMetrics) observeDivergence(n int) {
	m.divergence.WithLabelValues(strconv.FormatUint(uint64(m.streamID), 10)).Set(float64(n))
	level := hclog.Info
	if n > 0 {
		level = hclog.Warn
	}
	m.event(level, MetricShadowDivergence, n)
}
