package coordinator

import (
	"errors"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

type metrics struct {
	jobs      *prometheus.CounterVec
	duration  *prometheus.HistogramVec
	coldReads prometheus.Counter
	coldBytes prometheus.Counter
	hydrate   *prometheus.HistogramVec
	hydrating prometheus.Gauge
	queue     prometheus.Gauge
	fetched   prometheus.Counter
	// diskPressure and diskUsed: pressure.go.
	diskPressure prometheus.Gauge
	diskUsed     prometheus.Gauge
	// The scrubber's (scrub.go).
	scrubBytes    *prometheus.CounterVec
	scrubFindings *prometheus.CounterVec
	scrubLastPass prometheus.Gauge
	// ageSeals: age.go.
	ageSeals prometheus.Counter
	// snapshotUploads and manifestTrims: snapshots.go.
	snapshotUploads prometheus.Counter
	manifestTrims   *prometheus.CounterVec
	scrubProgress   prometheus.Gauge
	// reservations: reserve.go.
	reservations *prometheus.CounterVec
	// fenced: writer.go.
	fenced prometheus.Gauge
	// overBudget: cluster.go.
	overBudget prometheus.Counter
	// uploadsPaused: pause.go.
	uploadsPaused prometheus.Gauge
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		jobs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "aof_coordinator_jobs_total", Help: "Tiering jobs run, by kind (compress, upload, evict, ...) and result (ok, failed).",
		}, []string{"kind", "result"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "aof_coordinator_job_seconds", Help: "Duration of tiering jobs, by kind.",
			Buckets: prometheus.ExponentialBuckets(0.001, 4, 10),
		}, []string{"kind"}),
		coldReads: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "aof_coordinator_cold_point_reads_total", Help: "Records read from artifacts of segments not in tier 0, without hydrating them.",
		}),
		coldBytes: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "aof_coordinator_cold_point_read_bytes_total", Help: "Artifact bytes fetched (seek tables and frames) by cold point reads.",
		}),
	}
	m.hydrate = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "aof_hydration_seconds", Help: "Latency of hydrations (admission wait included), by source tier and result (ok, failed).",
		Buckets: prometheus.ExponentialBuckets(0.001, 2, 16),
	}, []string{"source_tier", "result"})
	m.hydrating = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "aof_hydration_queue_depth", Help: "Hydrations waiting for tier-0 room or in progress."})
	m.queue = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "aof_coordinator_queue_depth", Help: "Tiering jobs (compress, upload, evict, retire, manifest chunk) queued or running."})
	m.fetched = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "aof_hydration_fetched_bytes_total", Help: "Artifact bytes downloaded from tier 2 for hydrations."})
	m.diskPressure = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "aof_coordinator_disk_pressure", Help: "1 while the coordinator evicts segments other tiers hold because the disk is full or above tier0.disk_high_watermark, else 0."})
	m.diskUsed = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "aof_coordinator_disk_used_ratio", Help: "Fraction (0 to 1) of the data directory's file system in use at the last scan (statfs: 1 - available/total)."})
	m.scrubBytes = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "aof_scrub_bytes_verified_total", Help: "Bytes the scrubber verified against the manifest, by tier (tier0: segment bytes, tier1: artifact bytes, tier2: object bytes of full GETs)."},
		[]string{"tier"})
	m.scrubFindings = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "aof_scrub_findings_total", Help: "Damaged or missing copies the scrubber found, by tier and result (repaired, unrepairable)."},
		[]string{"tier", "result"})
	m.scrubLastPass = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "aof_scrub_last_pass_timestamp_seconds", Help: "Unix time the last complete scrub pass finished (0: none since start)."})
	m.scrubProgress = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "aof_scrub_pass_progress_ratio", Help: "Fraction (0 to 1) of the sealed segments the current or last scrub pass has checked."})
	m.ageSeals = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "aof_segment_age_seals_total", Help: "Active segments sealed because their first record reached segment.max_age (the recovery point bound)."})
	m.snapshotUploads = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "aof_manifest_snapshot_uploads_total", Help: "Manifest snapshots uploaded to tier 2."})
	m.manifestTrims = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "aof_tier2_manifest_trimmed_total", Help: "Tier-2 manifest objects deleted because two newer uploaded snapshots cover them, by kind (chunk, snapshot)."},
		[]string{"kind"})
	m.reservations = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "aof_tier2_reservations_total", Help: "Segment-id reservations stored in tier 2 (ok) or that failed (failed); new segments wait while one they need fails."},
		[]string{"result"})
	for _, o := range []string{"ok", "failed"} {
		m.reservations.WithLabelValues(o)
	}
	m.fenced = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "aof_writer_fenced", Help: "1 once another node claimed the tier-2 prefix (a takeover): this node makes no tier-2 mutation and refuses appends."})
	m.overBudget = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "aof_tier0_over_budget_admissions_total", Help: "Segments a cluster member admitted over its tier-0 budget, because applying a Raft entry needed them and never waits (the leader then refuses appends until tier 0 is back under budget)."})
	m.uploadsPaused = newUploadsPausedGauge()
	if err := register(reg, m.uploadsPaused, m.jobs, m.duration, m.coldReads, m.coldBytes, m.hydrate, m.hydrating, m.queue, m.fetched,
		m.diskPressure, m.diskUsed, m.scrubBytes, m.scrubFindings, m.scrubLastPass, m.scrubProgress, m.ageSeals,
		m.snapshotUploads, m.manifestTrims, m.reservations, m.fenced, m.overBudget); err != nil {
		return nil, err
	}
	return m, nil
}

// register registers the collectors on reg (nil: none), tolerating
// collectors already registered by an earlier coordinator.
func register(reg prometheus.Registerer, cols ...prometheus.Collector) error {
	if reg == nil {
		return nil
	}
	for _, col := range cols {
		if err := reg.Register(col); err != nil {
			var are prometheus.AlreadyRegisteredError
			if !errors.As(err, &are) {
				return err
			}
		}
	}
	return nil
}

func (m *metrics) observe(k jobKind, err error, d time.Duration) {
	result := "ok"
	if err != nil {
		result = "failed"
	}
	m.jobs.WithLabelValues(k.String(), result).Inc()
	m.duration.WithLabelValues(k.String()).Observe(d.Seconds())
}
