package server

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sync/semaphore"
	"google.golang.org/grpc/encoding"
	"google.golang.org/grpc/mem"
	"google.golang.org/grpc/stats"
	"google.golang.org/protobuf/proto"
)

// readBudget bounds the record bytes the server holds for readers at once
// (Options.ReadBudgetBytes), across every Read, HTTP read and Tail: a
// record is counted from the moment it is copied out of its segment until
// its bytes have left for the network (HTTP: written to the connection;
// gRPC: the encoded message written out by the transport, or the
// connection gone). A request that holds nothing waits for room for its
// first record (a record larger than the whole budget takes all of it);
// one that holds some takes more only if it is free right away, and
// otherwise ends its response there. Waiting readers hold nothing, so
// nobody waits for a reader that waits.
type readBudget struct {
	total int64               // immutable
	stall time.Duration       // immutable: Options.ReadStallTimeout
	sem   *semaphore.Weighted // synchronizes itself
	// pending maps gRPC responses handed to the transport to the hold of
	// their records, until the codec encodes them (a sync.Map: no lock).
	pending sync.Map // proto.Message → *hold

	inUse   prometheus.Gauge   // synchronizes itself
	waits   prometheus.Counter // synchronizes itself
	stalled prometheus.Counter // synchronizes itself
	// held is the bytes held (at most total: it grows after the semaphore
	// is acquired and shrinks before it is released); peak is its largest
	// value; waiting counts requests waiting for room. Atomics, for the
	// metrics and for tests.
	held, peak, waiting atomic.Int64
}

func newReadBudget(total int64, stall time.Duration, reg prometheus.Registerer) *readBudget {
	b := &readBudget{
		total: total,
		stall: stall,
		sem:   semaphore.NewWeighted(total),
		inUse: prometheus.NewGauge(prometheus.GaugeOpts{Name: "aof_read_inflight_bytes",
			Help: "Record bytes the client API holds for readers: copied out of segments, encoded, or queued for the network."}),
		waits: prometheus.NewCounter(prometheus.CounterOpts{Name: "aof_read_budget_waits_total",
			Help: "Reads and tail messages that waited for room in the read budget (limits.read_inflight_bytes)."}),
		stalled: prometheus.NewCounter(prometheus.CounterOpts{Name: "aof_read_budget_stalled_total",
			Help: "Read responses a client did not take within limits.read_stall_timeout: their bytes left the read budget (HTTP: the connection was closed)."}),
	}
	if reg != nil {
		limit := prometheus.NewGauge(prometheus.GaugeOpts{Name: "aof_read_budget_bytes",
			Help: "The read budget: record bytes the client API may hold for readers at once."})
		limit.Set(float64(total))
		reg.MustRegister(b.inUse, b.waits, b.stalled, limit)
	}
	return b
}

// acquired counts n bytes just acquired from the semaphore.
func (b *readBudget) acquired(n int64) {
	held := b.held.Add(n)
	for {
		p := b.peak.Load()
		if held <= p || b.peak.CompareAndSwap(p, held) {
			break
		}
	}
	b.inUse.Add(float64(n))
}

// released gives n bytes back: uncounted first, so that held never counts
// bytes another reader has acquired again.
func (b *readBudget) released(n int64) {
	b.held.Add(-n)
	b.inUse.Sub(float64(n))
	b.sem.Release(n)
}

// hold is what one response (or tail message) holds of the budget. Its
// owner grows it; anyone may shrink or release it.
type hold struct {
	b    *readBudget  // immutable
	conn *holdSet     // immutable: the gRPC connection it is sent on; nil for HTTP
	rpc  *holdSet     // immutable: the gRPC call it is sent by; nil for HTTP
	nc   *trackedConn // immutable: the gRPC connection, when the tracking listener accepted it

	mu    sync.Mutex
	n     int64         // guarded by mu: the bytes held
	resp  proto.Message // guarded by mu: the response it was handed off with
	stall *time.Timer   // guarded by mu: releases a handed-off hold the client does not take
	// unsent: the encoded response is counted in nc.unsent (from the
	// codec's Marshal until the transport gives its buffer back).
	unsent bool // guarded by mu
}

// newHold returns an empty hold. A gRPC request's hold is tied to its
// connection and to its call, which release it if they end before the
// transport has written the message out.
func (b *readBudget) newHold(ctx context.Context) *hold {
	h := &hold{b: b, nc: connOf(ctx)}
	if c, ok := ctx.Value(connHoldsKey{}).(*holdSet); ok && c.add(h) {
		h.conn = c
	}
	if r, ok := ctx.Value(rpcHoldsKey{}).(*rpcHolds); ok && r.add(h) {
		h.rpc = &r.holdSet
	}
	return h
}

// wait adds n bytes (at most the whole budget) to the hold, waiting for
// room until ctx is done. Only a hold that holds nothing may wait.
func (h *hold) wait(ctx context.Context, n int64) error {
	n = min(n, h.b.total)
	if !h.b.sem.TryAcquire(n) {
		h.b.waits.Inc()
		h.b.waiting.Add(1)
		err := h.b.sem.Acquire(ctx, n)
		h.b.waiting.Add(-1)
		if err != nil {
			return err
		}
	}
	h.add(n)
	return nil
}

// try adds n bytes to the hold if the budget has room now (and nobody is
// waiting for it).
func (h *hold) try(n int64) bool {
	if n > h.b.total || !h.b.sem.TryAcquire(n) {
		return false
	}
	h.add(n)
	return true
}

func (h *hold) add(n int64) {
	h.mu.Lock()
	h.n += n
	h.mu.Unlock()
	h.b.acquired(n)
}

// free gives back up to n bytes of the hold (its records have been
// written out).
func (h *hold) free(n int64) {
	h.mu.Lock()
	n = min(n, h.n)
	h.n -= n
	h.mu.Unlock()
	if n > 0 {
		h.b.released(n)
	}
}

// release gives back everything the hold has; calling it again is a
// no-op.
func (h *hold) release() {
	h.mu.Lock()
	n := h.n
	h.n = 0
	if h.stall != nil {
		h.stall.Stop()
	}
	h.mu.Unlock()
	if n > 0 {
		h.b.released(n)
	}
	if h.conn != nil {
		h.conn.remove(h)
	}
	if h.rpc != nil {
		h.rpc.remove(h)
	}
	if resp := h.response(); resp != nil {
		h.b.pending.CompareAndDelete(resp, h)
	}
}

func (h *hold) response() proto.Message {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.resp
}

// handoff passes the hold to the encoding of resp: the codec releases it
// once the transport has written the encoded message out (or dropped it).
func (b *readBudget) handoff(resp proto.Message, h *hold) {
	h.mu.Lock()
	h.resp = resp
	h.mu.Unlock()
	b.pending.Store(resp, h)
}

// unclaimed releases h if the codec never took it: resp was not encoded
// (a send that failed before encoding).
func (b *readBudget) unclaimed(resp proto.Message, h *hold) {
	if b.pending.CompareAndDelete(resp, h) {
		h.release()
	}
}

// budgetCodec is the server's proto codec. A response handed off with
// readBudget.handoff is encoded into a buffer of its own whose release
// (after the transport wrote it, or dropped it) gives its hold back; every
// other message goes through the default codec.
type budgetCodec struct {
	b    *readBudget
	base encoding.CodecV2
}

func (c budgetCodec) Marshal(v any) (mem.BufferSlice, error) {
	hv, ok := c.b.pending.LoadAndDelete(v)
	if !ok {
		return c.base.Marshal(v)
	}
	h := hv.(*hold)
	buf, err := proto.Marshal(v.(proto.Message))
	if err != nil || mem.IsBelowBufferPoolingThreshold(cap(buf)) {
		h.release() // too small for a releasing buffer, or nothing to send
		if err != nil {
			return nil, err
		}
		return mem.BufferSlice{mem.SliceBuffer(buf)}, nil
	}
	h.armStall()
	h.setUnsent(true)
	return mem.BufferSlice{mem.NewBuffer(&buf, releasePool{h})}, nil
}

// setUnsent counts the hold's encoded response in its connection's unsent
// answers, or takes it out (once).
func (h *hold) setUnsent(unsent bool) {
	if h.nc == nil {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	switch {
	case unsent && !h.unsent:
		h.nc.unsent.Add(1)
	case !unsent && h.unsent:
		h.nc.unsent.Add(-1)
	}
	h.unsent = unsent
}

// armStall releases the hold if its response is still not written out
// after the stall timeout: a client that stops reading (gRPC flow control
// holds the message back, on a connection that stays up) must not keep
// its bytes in the budget, and so every other reader waiting, for ever.
func (h *hold) armStall() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.stall = time.AfterFunc(h.b.stall, func() {
		h.mu.Lock()
		n := h.n
		h.mu.Unlock()
		if n > 0 {
			h.b.stalled.Inc()
			h.release()
		}
	})
}

// Unmarshal decodes append requests bounded (unmarshalBounded), every
// other message through the default codec.
func (c budgetCodec) Unmarshal(data mem.BufferSlice, v any) error {
	if ok, err := unmarshalBounded(data, v); ok {
		return err
	}
	return c.base.Unmarshal(data, v)
}

func (c budgetCodec) Name() string { return c.base.Name() }

// releasePool receives the encoded buffer of one response back from the
// transport once nothing refers to it any more.
type releasePool struct{ h *hold }

func (p releasePool) Get(n int) *[]byte { b := make([]byte, n); return &b }

func (p releasePool) Put(*[]byte) {
	p.h.setUnsent(false)
	p.h.release()
}

// holdSet is the holds of one gRPC connection or call, released
// together when it ends before the transport gave their buffers back.
//
// gRPC does not give back every buffer of a connection that went away
// (those its writer loop had already taken for a stream, or was writing,
// are dropped with the connection, never freed), nor a message queued by
// a handler just after its client reset the stream (the writer loop finds
// no stream for it and drops it).
type holdSet struct {
	mu     sync.Mutex
	holds  map[*hold]struct{} // guarded by mu
	closed bool               // guarded by mu: the connection or call ended
}

type connHoldsKey struct{}

// rpcHolds is the holdSet of one call, and whether its status was
// written: if it was, the stream was still open when the handler was
// done, and every message queued before the status is written out (or
// dropped with the connection) and gives its buffer back.
type rpcHolds struct {
	holdSet
	status atomic.Bool
}

type rpcHoldsKey struct{}

func (c *holdSet) add(h *hold) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return false // its sends fail, and their buffers are released
	}
	c.holds[h] = struct{}{}
	return true
}

func (c *holdSet) remove(h *hold) {
	c.mu.Lock()
	delete(c.holds, h)
	c.mu.Unlock()
}

func (c *holdSet) releaseAll() {
	c.mu.Lock()
	c.closed = true
	holds := make([]*hold, 0, len(c.holds))
	for h := range c.holds {
		holds = append(holds, h)
	}
	c.mu.Unlock()
	for _, h := range holds {
		h.release()
	}
}

// budgetStats is the stats.Handler that ties holds to their connection
// and call.
type budgetStats struct{}

func (budgetStats) TagConn(ctx context.Context, _ *stats.ConnTagInfo) context.Context {
	return context.WithValue(ctx, connHoldsKey{}, &holdSet{holds: map[*hold]struct{}{}})
}

func (budgetStats) HandleConn(ctx context.Context, s stats.ConnStats) {
	if _, end := s.(*stats.ConnEnd); end {
		if c, ok := ctx.Value(connHoldsKey{}).(*holdSet); ok {
			c.releaseAll()
		}
	}
}

func (budgetStats) TagRPC(ctx context.Context, _ *stats.RPCTagInfo) context.Context {
	return context.WithValue(ctx, rpcHoldsKey{}, &rpcHolds{holdSet: holdSet{holds: map[*hold]struct{}{}}})
}

// HandleRPC releases a call's holds when it ends without its status
// written: the stream was reset (the client cancelled, its deadline
// passed), and gRPC may have dropped a message without giving it back.
func (budgetStats) HandleRPC(ctx context.Context, s stats.RPCStats) {
	r, ok := ctx.Value(rpcHoldsKey{}).(*rpcHolds)
	if !ok || s.IsClient() {
		return
	}
	switch s.(type) {
	case *stats.OutTrailer:
		r.status.Store(true)
	case *stats.End:
		if !r.status.Load() {
			r.releaseAll()
		}
	}
}
