package tier2

import (
	"context"
	"errors"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/aof2/aof2/pluginapi"
)

// Class is a backend request class, the label of the request counters.
type Class int

// Request classes.
const (
	ClassPut Class = iota
	ClassGet
	ClassHead
	ClassList
	ClassDelete
	ClassInfo
	numClasses
)

var classNames = [numClasses]string{"PUT", "GET", "HEAD", "LIST", "DELETE", "INFO"}

func (c Class) String() string { return classNames[c] }

// Outcome classifies one backend request.
type Outcome int

// Request outcomes.
const (
	OutcomeOK Outcome = iota
	OutcomeNotFound
	OutcomeExists
	OutcomePrecondition
	OutcomeThrottled
	OutcomeUnavailable
	OutcomeCrashed
	OutcomeChecksum
	OutcomeTimeout
	OutcomeCanceled
	OutcomeBreakerOpen
	OutcomeError
	numOutcomes
)

var outcomeNames = [numOutcomes]string{"ok", "not_found", "exists", "precondition", "throttled", "unavailable",
	"crashed", "checksum", "timeout", "canceled", "breaker_open", "error"}

func (o Outcome) String() string { return outcomeNames[o] }

func outcomeOf(err error) Outcome {
	if err == nil {
		return OutcomeOK
	}
	if errors.Is(err, ErrBreakerOpen) {
		return OutcomeBreakerOpen
	}
	switch pluginapi.CodeOf(err) {
	case pluginapi.CodeNotFound:
		return OutcomeNotFound
	case pluginapi.CodeAlreadyExists:
		return OutcomeExists
	case pluginapi.CodePrecondition:
		return OutcomePrecondition
	case pluginapi.CodeThrottled:
		return OutcomeThrottled
	case pluginapi.CodeUnavailable:
		return OutcomeUnavailable
	case pluginapi.CodePluginCrashed:
		return OutcomeCrashed
	case pluginapi.CodeChecksum:
		return OutcomeChecksum
	case pluginapi.CodeDeadline:
		return OutcomeTimeout
	case pluginapi.CodeCanceled:
		return OutcomeCanceled
	}
	if errors.Is(err, context.Canceled) {
		return OutcomeCanceled
	}
	return OutcomeError
}

// Op is a logical operation of the store (one or more requests,
// retried as a whole).
type Op int

// Operations.
const (
	OpUpload Op = iota
	OpFetch
	OpRangeRead
	OpStat
	OpList
	OpDelete
	numOps
)

var opNames = [numOps]string{"upload", "fetch", "range_read", "stat", "list", "delete"}

func (o Op) String() string { return opNames[o] }

// metrics are the store's Prometheus collectors plus atomic mirrors
// that Stats reads without a registry.
type metrics struct {
	requests    *prometheus.CounterVec
	opAttempts  *prometheus.CounterVec
	opRetries   *prometheus.CounterVec
	opFailures  *prometheus.CounterVec
	bytesUp     prometheus.Counter
	bytesDown   prometheus.Counter
	breakerGa   *prometheus.GaugeVec
	transitions *prometheus.CounterVec
	inflight    prometheus.Gauge
	waiting     prometheus.Gauge
	dataLoss    prometheus.Counter
	checksum    prometheus.Counter

	reqCount              [numClasses][numOutcomes]atomic.Uint64
	attempts, retries     [numOps]atomic.Uint64
	failures              [numOps]atomic.Uint64
	up, down              atomic.Uint64
	dataLossN, checksumsN atomic.Uint64
	inflightN, waitingN   atomic.Int64
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "aof_tier2_requests_total",
			Help: "Tier-2 backend requests by class (PUT, GET, HEAD, LIST, DELETE, INFO) and result (ok, not_found, exists, precondition, throttled, unavailable, ...)."}, []string{"class", "result"}),
		opAttempts: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "aof_tier2_operation_attempts_total",
			Help: "Attempts of tier-2 operations (upload, fetch, range_read, stat, list, delete), retries included."}, []string{"op"}),
		opRetries: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "aof_tier2_operation_retries_total",
			Help: "Retries of tier-2 operations after a retryable failure."}, []string{"op"}),
		opFailures: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "aof_tier2_operation_failures_total",
			Help: "Tier-2 operations that failed after their last attempt."}, []string{"op"}),
		bytesUp: prometheus.NewCounter(prometheus.CounterOpts{Name: "aof_tier2_uploaded_bytes_total",
			Help: "Bytes of objects stored in tier 2 (acknowledged uploads)."}),
		bytesDown: prometheus.NewCounter(prometheus.CounterOpts{Name: "aof_tier2_downloaded_bytes_total",
			Help: "Bytes fetched from tier 2 (whole objects and ranges)."}),
		breakerGa: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "aof_tier2_breaker_state",
			Help: "Tier-2 circuit breaker: 1 for the state it is in (closed, half_open, open), 0 for the others."}, []string{"state"}),
		transitions: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "aof_tier2_breaker_transitions_total",
			Help: "Tier-2 circuit breaker state changes, by the state entered."}, []string{"state"}),
		inflight: prometheus.NewGauge(prometheus.GaugeOpts{Name: "aof_tier2_inflight_requests",
			Help: "Tier-2 backend requests in flight."}),
		waiting: prometheus.NewGauge(prometheus.GaugeOpts{Name: "aof_tier2_waiting_requests",
			Help: "Tier-2 requests waiting for a concurrency slot."}),
		dataLoss: prometheus.NewCounter(prometheus.CounterOpts{Name: "aof_tier2_data_loss_total",
			Help: "Uploads refused because the key holds a different object."}),
		checksum: prometheus.NewCounter(prometheus.CounterOpts{Name: "aof_tier2_checksum_failures_total",
			Help: "Downloads whose bytes did not match the stored checksum."}),
	}
	m.setBreakerGauge(BreakerClosed)
	if reg == nil {
		return m, nil
	}
	for _, c := range []prometheus.Collector{m.requests, m.opAttempts, m.opRetries, m.opFailures, m.bytesUp, m.bytesDown,
		m.breakerGa, m.transitions, m.inflight, m.waiting, m.dataLoss, m.checksum} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

func (m *metrics) request(c Class, o Outcome) {
	m.requests.WithLabelValues(c.String(), o.String()).Inc()
	m.reqCount[c][o].Add(1)
}

func (m *metrics) attempt(op Op) {
	m.opAttempts.WithLabelValues(op.String()).Inc()
	m.attempts[op].Add(1)
}
func (m *metrics) retry(op Op) { m.opRetries.WithLabelValues(op.String()).Inc(); m.retries[op].Add(1) }
func (m *metrics) failure(op Op) {
	m.opFailures.WithLabelValues(op.String()).Inc()
	m.failures[op].Add(1)
}
func (m *metrics) uploaded(n uint64) {
	m.bytesUp.Add(float64(n))
	m.up.Add(n)
}
func (m *metrics) downloaded(n uint64) {
	m.bytesDown.Add(float64(n))
	m.down.Add(n)
}
func (m *metrics) lostData()    { m.dataLoss.Inc(); m.dataLossN.Add(1) }
func (m *metrics) badChecksum() { m.checksum.Inc(); m.checksumsN.Add(1) }

func (m *metrics) addInflight(d int64) { m.inflight.Add(float64(d)); m.inflightN.Add(d) }
func (m *metrics) addWaiting(d int64)  { m.waiting.Add(float64(d)); m.waitingN.Add(d) }

func (m *metrics) breakerState(from, to BreakerState) {
	m.setBreakerGauge(to)
	m.transitions.WithLabelValues(to.String()).Inc()
}

// setBreakerGauge sets 1 on the state the breaker is in, 0 on the others.
func (m *metrics) setBreakerGauge(in BreakerState) {
	for _, st := range []BreakerState{BreakerClosed, BreakerHalfOpen, BreakerOpen} {
		v := 0.0
		if st == in {
			v = 1
		}
		m.breakerGa.WithLabelValues(st.String()).Set(v)
	}
}

// Stats is a point-in-time copy of the store's counters, for the host's
// observability snapshot.
type Stats struct {
	// Requests counts backend requests by class and outcome (non-zero only).
	Requests map[Class]map[Outcome]uint64
	// Attempts, Retries and Failures count logical operations.
	Attempts, Retries, Failures    map[Op]uint64
	BytesUploaded, BytesDownloaded uint64
	DataLoss, ChecksumFailures     uint64
	Inflight, Waiting              int64
	Breaker                        Health
}

func (m *metrics) stats() Stats {
	s := Stats{Requests: map[Class]map[Outcome]uint64{}, Attempts: map[Op]uint64{}, Retries: map[Op]uint64{}, Failures: map[Op]uint64{}}
	for c := range numClasses {
		for o := range numOutcomes {
			if n := m.reqCount[c][o].Load(); n > 0 {
				if s.Requests[c] == nil {
					s.Requests[c] = map[Outcome]uint64{}
				}
				s.Requests[c][o] = n
			}
		}
	}
	for op := range numOps {
		if n := m.attempts[op].Load(); n > 0 {
			s.Attempts[op] = n
		}
		if n := m.retries[op].Load(); n > 0 {
			s.Retries[op] = n
		}
		if n := m.failures[op].Load(); n > 0 {
			s.Failures[op] = n
		}
	}
	s.BytesUploaded, s.BytesDownloaded = m.up.Load(), m.down.Load()
	s.DataLoss, s.ChecksumFailures = m.dataLossN.Load(), m.checksumsN.Load()
	s.Inflight, s.Waiting = m.inflightN.Load(), m.waitingN.Load()
	return s
}
