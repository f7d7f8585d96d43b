package coordinator

import (
	"strconv"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/aof2/aof2/core/manifest"
)

// needsRecoveryDesc describes aof_needs_recovery_segments: segments of a
// stream in the NeedsRecovery residency (no verified copy is known), the
// gauge behind the NeedsRecovery alert.
var needsRecoveryDesc = prometheus.NewDesc("aof_needs_recovery_segments",
	"Segments whose manifest residency is needs_recovery (no verified copy known), per stream.", []string{"stream_id"}, nil)

// residencyCollector derives the gauge from the manifests at scrape time,
// so it can never drift from them.
type residencyCollector struct{ c *Coordinator }

func (r residencyCollector) Describe(ch chan<- *prometheus.Desc) { ch <- needsRecoveryDesc }

func (r residencyCollector) Collect(ch chan<- prometheus.Metric) {
	r.c.mu.Lock()
	st := r.c.mu.store
	r.c.mu.Unlock()
	if st == nil {
		return
	}
	for _, id := range st.Streams() {
		s, err := st.Lookup(id)
		if err != nil || s.TierLog() == nil {
			continue
		}
		n := 0
		for _, ms := range s.TierLog().Segments() {
			if ms.Residency == manifest.NeedsRecovery {
				n++
			}
		}
		ch <- prometheus.MustNewConstMetric(needsRecoveryDesc, prometheus.GaugeValue, float64(n), strconv.FormatUint(uint64(id), 10))
	}
}
