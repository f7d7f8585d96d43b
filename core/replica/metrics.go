package replica

import (
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
)

var (
	lagSecondsDesc = prometheus.NewDesc("aof_replica_lag_seconds",
		"Seconds since the replica last found nothing in tier 2 newer than what it serves, per stream (0 to the poll interval while it keeps up; it grows while tier 2 is away or following is stalled at a gap).",
		[]string{"stream_id"}, nil)
	lagRecordsDesc = prometheus.NewDesc("aof_replica_lag_records",
		"Records the replica saw in tier 2 and does not serve yet, per stream.",
		[]string{"stream_id"}, nil)
	stalledDesc = prometheus.NewDesc("aof_replica_stalled",
		"1 while a stream's next segment is missing from tier 2 and later ones are (following stopped at the gap).",
		[]string{"stream_id"}, nil)
)

// lagCollector reports the lag at scrape time, so that a replica that
// stopped polling shows a growing lag rather than its last value.
type lagCollector struct{ f *Follower }

func (c *lagCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- lagSecondsDesc
	ch <- lagRecordsDesc
	ch <- stalledDesc
}

func (c *lagCollector) Collect(ch chan<- prometheus.Metric) {
	f := c.f
	now := f.cfg.Now()
	f.mu.Lock()
	defer f.mu.Unlock()
	for id, st := range f.streams {
		label := strconv.FormatUint(uint64(id), 10)
		lag := 0.0
		if !st.caughtUp.IsZero() {
			lag = max(now.Sub(st.caughtUp).Seconds(), 0)
		} else {
			lag = max(now.Sub(f.started).Seconds(), 0)
		}
		stalled := 0.0
		if st.stalled != nil || st.mismatch != nil {
			stalled = 1
		}
		ch <- prometheus.MustNewConstMetric(lagSecondsDesc, prometheus.GaugeValue, lag, label)
		ch <- prometheus.MustNewConstMetric(lagRecordsDesc, prometheus.GaugeValue, float64(st.behind), label)
		ch <- prometheus.MustNewConstMetric(stalledDesc, prometheus.GaugeValue, stalled, label)
	}
}
