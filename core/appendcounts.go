package core

import (
	"strconv"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
)

// appendCounts serves aof_append_records_total and aof_append_bytes_total.
// Each append adds to its stream's counts under the writer lock it holds
// anyway (Stream.mu.appended), and the counters are read at scrape time:
// two atomic adds per append, as prometheus.Counter does them, were about
// 6 % of an append loop of 256 B records (W1, docs/performance.md).
type appendCounts struct {
	records, bytes *prometheus.Desc

	mu      sync.Mutex
	streams map[*Stream]struct{} // guarded by mu: open streams
	// closed holds the counts of streams closed since the store opened:
	// a stream opened again under the same id goes on from them, so the
	// counters never go down.
	closed map[StreamID]appended // guarded by mu
}

// appended is what a stream's appends added up to.
type appended struct {
	records, bytes uint64
}

func newAppendCounts() *appendCounts {
	sl := []string{"stream_id"}
	return &appendCounts{
		records: prometheus.NewDesc("aof_append_records_total", "Records appended.", sl, nil),
		bytes:   prometheus.NewDesc("aof_append_bytes_total", "Payload bytes appended.", sl, nil),
		streams: map[*Stream]struct{}{},
		closed:  map[StreamID]appended{},
	}
}

func (c *appendCounts) add(s *Stream) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.streams[s] = struct{}{}
}

// remove keeps a closing stream's counts.
func (c *appendCounts) remove(s *Stream) {
	n := s.appendedCounts()
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.streams[s]; !ok {
		return
	}
	delete(c.streams, s)
	t := c.closed[s.id]
	c.closed[s.id] = appended{records: t.records + n.records, bytes: t.bytes + n.bytes}
}

func (c *appendCounts) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.records
	ch <- c.bytes
}

func (c *appendCounts) Collect(ch chan<- prometheus.Metric) {
	c.mu.Lock()
	totals := make(map[StreamID]appended, len(c.streams)+len(c.closed))
	for id, n := range c.closed {
		totals[id] = n
	}
	open := make([]*Stream, 0, len(c.streams))
	for s := range c.streams {
		open = append(open, s)
	}
	c.mu.Unlock()
	for _, s := range open {
		n, t := s.appendedCounts(), totals[s.id]
		totals[s.id] = appended{records: t.records + n.records, bytes: t.bytes + n.bytes}
	}
	for id, n := range totals {
		l := strconv.FormatUint(uint64(id), 10)
		ch <- prometheus.MustNewConstMetric(c.records, prometheus.CounterValue, float64(n.records), l)
		ch <- prometheus.MustNewConstMetric(c.bytes, prometheus.CounterValue, float64(n.bytes), l)
	}
}

// appendedCounts reads the stream's counts.
func (s *Stream) appendedCounts() appended {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.mu.appended
}
