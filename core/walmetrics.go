package core

import "github.com/prometheus/client_golang/prometheus"

// walMetrics are the node WAL's (Config.NodeWAL), registered on
// Config.Registerer with the store's.
type walMetrics struct {
	commits       prometheus.Counter
	records       prometheus.Counter
	bytes         prometheus.Counter
	commitLatency prometheus.Histogram
	checkpoints   prometheus.Counter
	replayed      prometheus.Counter
	failures      prometheus.Counter
	blocked       prometheus.Gauge
}

func newWALMetrics() *walMetrics {
	m := &walMetrics{
		commits: prometheus.NewCounter(prometheus.CounterOpts{Name: "aof_node_wal_commits_total",
			Help: "Node WAL group commits: one append and one sync acknowledging the records of every stream in it."}),
		records: prometheus.NewCounter(prometheus.CounterOpts{Name: "aof_node_wal_records_total", Help: "Records made durable through the node WAL."}),
		bytes:   prometheus.NewCounter(prometheus.CounterOpts{Name: "aof_node_wal_bytes_total", Help: "Bytes of entries written to the node WAL."}),
		commitLatency: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "aof_node_wal_commit_latency_seconds",
			Help: "Duration of one node WAL group commit (append and sync).", Buckets: latencyBuckets}),
		checkpoints: prometheus.NewCounter(prometheus.CounterOpts{Name: "aof_node_wal_checkpoints_total",
			Help: "Node WAL checkpoints: every stream's segments synced, the WAL's older segments dropped."}),
		replayed: prometheus.NewCounter(prometheus.CounterOpts{Name: "aof_node_wal_replayed_records_total",
			Help: "Records the node WAL gave back to their streams at open (their segments had lost them)."}),
		failures: prometheus.NewCounter(prometheus.CounterOpts{Name: "aof_node_wal_failures_total",
			Help: "Node WAL write or sync failures; each stops every stream's appends until the store is reopened."}),
		blocked: prometheus.NewGauge(prometheus.GaugeOpts{Name: "aof_node_wal_checkpoints_blocked",
			Help: "1 while node WAL checkpoints are stopped (a stream the replay could not finish, or damage): the WAL keeps growing."}),
	}
	return m
}

// register registers the metrics once the WAL is open (a failed open
// leaves the registry as it was).
func (m *walMetrics) register(reg prometheus.Registerer) {
	if reg != nil {
		for _, c := range []prometheus.Collector{m.commits, m.records, m.bytes, m.commitLatency, m.checkpoints, m.replayed, m.failures, m.blocked} {
			reg.MustRegister(c)
		}
	}
}
