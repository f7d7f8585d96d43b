// Package streamlabels caps how many streams /metrics names. Every
// component labels its per-stream series with stream_id (about 60 series
// a stream, most of them latency histogram buckets), which a host with
// thousands of streams turns into a cardinality problem for Prometheus.
// Rather than teach each component a policy, the cap applies where the
// series leave the process: a Gatherer wrapper keeps the stream_id of the
// first Limit streams it sees and sums every other stream's series into
// one with stream_id="other" — counters and gauges added, histograms
// added bucket by bucket — so totals, rates and quantiles over all
// streams stay right. A stream keeps its label for the life of the
// process once it has one.
package streamlabels

import (
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"google.golang.org/protobuf/proto"
)

// Label is the label the cap applies to; Other is the value the series
// of streams past the cap share.
const (
	Label = "stream_id"
	Other = "other"
)

// Cap wraps g: limit > 0 keeps that many streams' own labels, limit < 0
// keeps none (every stream is "other"), limit 0 returns g unchanged.
func Cap(g prometheus.Gatherer, limit int) prometheus.Gatherer {
	if limit == 0 {
		return g
	}
	return &capped{g: g, limit: limit, kept: map[string]bool{}}
}

type capped struct {
	g     prometheus.Gatherer
	limit int
	mu    sync.Mutex
	kept  map[string]bool // guarded by mu: streams that keep their label
}

// keep reports whether stream id keeps its own label, admitting it while
// there is room. Called with mu held.
func (c *capped) keepLocked(id string) bool {
	if c.kept[id] {
		return true
	}
	if c.limit < 0 || len(c.kept) >= c.limit {
		return false
	}
	c.kept[id] = true
	return true
}

func (c *capped) Gather() ([]*dto.MetricFamily, error) {
	mfs, err := c.g.Gather()
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, mf := range mfs {
		if ferr := c.capFamily(mf); ferr != nil && err == nil {
			err = ferr
		}
	}
	return mfs, err
}

// capFamily folds the series of streams past the cap into "other" series.
func (c *capped) capFamily(mf *dto.MetricFamily) error {
	var out []*dto.Metric
	others := map[string]*dto.Metric{} // by the other labels' values
	var order []string
	for _, m := range mf.GetMetric() {
		i := slices.IndexFunc(m.GetLabel(), func(l *dto.LabelPair) bool { return l.GetName() == Label })
		if i < 0 || c.keepLocked(m.GetLabel()[i].GetValue()) {
			out = append(out, m)
			continue
		}
		k := otherKey(m, i)
		acc, ok := others[k]
		if !ok {
			acc = proto.Clone(m).(*dto.Metric)
			acc.Label[i].Value = proto.String(Other)
			acc.TimestampMs = nil
			dropExemplars(acc)
			others[k] = acc
			order = append(order, k)
			continue
		}
		if err := add(acc, m); err != nil {
			return fmt.Errorf("%s: %w", mf.GetName(), err)
		}
	}
	for _, k := range order {
		out = append(out, others[k])
	}
	mf.Metric = out
	return nil
}

func otherKey(m *dto.Metric, skip int) string {
	var b strings.Builder
	for j, l := range m.GetLabel() {
		if j != skip {
			b.WriteString(l.GetName())
			b.WriteByte(0)
			b.WriteString(l.GetValue())
			b.WriteByte(0)
		}
	}
	return b.String()
}

// add adds m's value into acc (the same family, so the same type).
func add(acc, m *dto.Metric) error {
	switch {
	case acc.Counter != nil && m.Counter != nil:
		acc.Counter.Value = proto.Float64(acc.Counter.GetValue() + m.Counter.GetValue())
	case acc.Gauge != nil && m.Gauge != nil:
		acc.Gauge.Value = proto.Float64(acc.Gauge.GetValue() + m.Gauge.GetValue())
	case acc.Untyped != nil && m.Untyped != nil:
		acc.Untyped.Value = proto.Float64(acc.Untyped.GetValue() + m.Untyped.GetValue())
	case acc.Histogram != nil && m.Histogram != nil:
		return addHistogram(acc.Histogram, m.Histogram)
	default:
		return fmt.Errorf("cannot sum a %s series into stream_id=%q", kind(m), Other)
	}
	return nil
}

func addHistogram(acc, h *dto.Histogram) error {
	if len(acc.Bucket) != len(h.Bucket) {
		return fmt.Errorf("histograms with %d and %d buckets", len(acc.Bucket), len(h.Bucket))
	}
	for i, b := range h.Bucket {
		if acc.Bucket[i].GetUpperBound() != b.GetUpperBound() {
			return fmt.Errorf("histogram bucket %d bounds %g and %g", i, acc.Bucket[i].GetUpperBound(), b.GetUpperBound())
		}
		acc.Bucket[i].CumulativeCount = proto.Uint64(acc.Bucket[i].GetCumulativeCount() + b.GetCumulativeCount())
	}
	acc.SampleCount = proto.Uint64(acc.GetSampleCount() + h.GetSampleCount())
	acc.SampleSum = proto.Float64(acc.GetSampleSum() + h.GetSampleSum())
	return nil
}

func dropExemplars(m *dto.Metric) {
	if m.Counter != nil {
		m.Counter.Exemplar, m.Counter.CreatedTimestamp = nil, nil
	}
	if m.Histogram != nil {
		m.Histogram.CreatedTimestamp, m.Histogram.Exemplars = nil, nil
		for _, b := range m.Histogram.Bucket {
			b.Exemplar = nil
		}
	}
}

func kind(m *dto.Metric) string {
	switch {
	case m.Summary != nil:
		return "summary"
	case m.Histogram != nil:
		return "histogram"
	}
	return "mixed"
}
