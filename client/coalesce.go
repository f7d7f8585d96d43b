package client

import (
	"context"
	"errors"
	"slices"
	"sync"
	"sync/atomic"

	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	aof2v1 "github.com/aof2/aof2/api/proto/aof2/v1"
	"github.com/aof2/aof2/core/types"
)

// Coalescing: concurrent appends to one stream through one Client are sent
// together. A call costs the host a read and a write system call and a
// goroutine whatever it carries, and on a small machine that, not the
// disk, bounds how many durable appends a second the host serves
// (docs/performance.md). Appends are queued per stream while the stream has
// as many requests in flight as it may (pipelineDepth on an AppendPipeline
// call, pipeline.go; maxSenders unary calls against a host without it);
// the next request carries everything queued, each caller's records
// contiguous and in the order the callers queued, and each caller gets its
// own ids once the whole request is durable. An append that arrives while
// there is room is sent at once: coalescing adds no wait, it only uses the
// time requests are in flight anyway.
const (
	// maxSenders bounds the calls in flight per stream and durability:
	// two, so the host can sync one batch while the next arrives.
	maxSenders = 2
	// coalesceMaxBytes and coalesceMaxRecords bound one coalesced call,
	// well under the smallest message limit a host has (4 MiB); an append
	// larger than coalesceAloneBytes is always sent on its own.
	coalesceMaxBytes   = 1 << 20
	coalesceMaxRecords = 4096
	coalesceAloneBytes = 256 << 10
)

// queueKey: appends are coalesced only with others to the same stream that
// want the same durability.
type queueKey struct {
	stream StreamID
	noWait bool
}

// coalescer owns the per-stream queues and the goroutines that send them.
// Each sender goroutine lives while its queue has appends; every call it
// makes ends when the host answers, when every caller waiting on it has
// given up, or when the Client closes (life).
type coalescer struct {
	log  aof2v1.LogClient
	life context.Context
	// maxMessage is the largest message the Client sends
	// (WithMaxMessageSize): a batch whose request would be larger is not
	// sent; each of its callers sends its records alone.
	maxMessage int

	mu     sync.Mutex
	queues map[queueKey]*appendQueue // guarded by mu

	pipeMu   sync.Mutex
	pipeline bool          // guarded by pipeMu; batches go on an AppendPipeline call
	pipe     *pipelineCall // guarded by pipeMu; the open call, nil when none
}

type appendQueue struct {
	senders int              // sender goroutines working the queue; guarded by coalescer.mu
	waiting []*pendingAppend // guarded by coalescer.mu
	// slots holds a token per request of the queue sent on a pipeline
	// call and not answered yet (pipelineDepth at most).
	slots chan struct{}
}

// pendingAppend is one caller's append waiting in a queue.
type pendingAppend struct {
	ctx   context.Context
	recs  []*aof2v1.Record
	size  int                // payload bytes
	taken bool               // a sender has it; guarded by coalescer.mu
	done  chan appendOutcome // buffered: the sender never blocks on it
	// read is closed once no sender reads recs any more (their request
	// was encoded, or will not be): a caller that gives up after its
	// records were taken waits for it before its buffers are its own.
	read     chan struct{}
	readOnce sync.Once
}

func (p *pendingAppend) doneReading() { p.readOnce.Do(func() { close(p.read) }) }

type appendOutcome struct {
	ids []RecordID
	err error
	// alone: the host refused the coalesced call as a whole for a reason
	// that may be one caller's (an empty or oversized record); each
	// caller sends its records again in a call of its own.
	alone bool
}

func newCoalescer(life context.Context, log aof2v1.LogClient, pipeline bool, maxMessage int) *coalescer {
	return &coalescer{log: log, life: life, maxMessage: maxMessage, queues: map[queueKey]*appendQueue{}, pipeline: pipeline}
}

// coalescable says whether an append may share a call with others: not too
// large, and without outgoing metadata of its own (a coalesced call carries
// none of its callers' contexts).
func coalescable(ctx context.Context, size int) bool {
	_, md := metadata.FromOutgoingContext(ctx)
	return size <= coalesceAloneBytes && !md
}

func payloadBytes(recs []*aof2v1.Record) int {
	n := 0
	for _, r := range recs {
		n += len(r.GetPayload())
	}
	return n
}

// append queues recs and waits for their outcome or ctx. A caller that
// gives up before its records were taken leaves nothing behind; one that
// gives up after is in the position of a unary call cut off by its
// context: the records may have been appended.
func (co *coalescer) append(ctx context.Context, key queueKey, recs []*aof2v1.Record, size int) appendOutcome {
	p := &pendingAppend{ctx: ctx, recs: recs, size: size, done: make(chan appendOutcome, 1), read: make(chan struct{})}
	co.mu.Lock()
	q := co.queues[key]
	if q == nil {
		q = &appendQueue{slots: make(chan struct{}, pipelineDepth)}
		co.queues[key] = q
	}
	q.waiting = append(q.waiting, p)
	start := q.senders < maxSenders
	if start {
		q.senders++
	}
	co.mu.Unlock()
	if start {
		go co.send(key, q)
	}
	select {
	case out := <-p.done:
		return out
	case <-ctx.Done():
	}
	co.mu.Lock()
	taken := p.taken
	if !taken {
		q.waiting = slices.DeleteFunc(q.waiting, func(w *pendingAppend) bool { return w == p })
	}
	co.mu.Unlock()
	if taken {
		<-p.read
	}
	return appendOutcome{err: fromStatus(status.FromContextError(ctx.Err()).Err())}
}

// send makes calls for the queue until it is empty.
func (co *coalescer) send(key queueKey, q *appendQueue) {
	for {
		slot := co.pipelineSlot(key, q)
		co.mu.Lock()
		batch := q.take(co.batchBytes())
		if len(batch) == 0 {
			slot.drop()
			q.senders--
			if q.idle() {
				delete(co.queues, key)
			}
			co.mu.Unlock()
			return
		}
		co.mu.Unlock()
		if !co.pipelined(key, slot, batch) {
			slot.release()
			co.call(key, batch)
		}
	}
}

// idle: no sender, nothing waiting, nothing unanswered on a pipeline
// call. Called with coalescer.mu held.
func (q *appendQueue) idle() bool {
	return q.senders == 0 && len(q.waiting) == 0 && len(q.slots) == 0
}

// recordOverhead bounds what a record adds to a request besides its
// payload (field tags, lengths, timestamp, ext_id), and requestOverhead
// what the request adds besides its records.
const (
	recordOverhead  = 32
	requestOverhead = 64
)

// batchBytes bounds a batch's payload and per-record overhead: within
// coalesceMaxBytes and the Client's message limit (a pipelined request
// over it would end the call under every request on it).
func (co *coalescer) batchBytes() int {
	return max(min(coalesceMaxBytes, co.maxMessage-requestOverhead), 0)
}

// take removes the longest prefix of the waiting appends that fits one
// call of at most limit bytes (at least one append). Called with
// coalescer.mu held.
func (q *appendQueue) take(limit int) []*pendingAppend {
	bytes, recs, n := 0, 0, 0
	for _, p := range q.waiting {
		size := p.size + recordOverhead*len(p.recs)
		if n > 0 && (bytes+size > limit || recs+len(p.recs) > coalesceMaxRecords) {
			break
		}
		bytes, recs, n = bytes+size, recs+len(p.recs), n+1
	}
	batch := slices.Clone(q.waiting[:n])
	q.waiting = slices.Delete(q.waiting, 0, n)
	for _, p := range batch {
		p.taken = true
	}
	return batch
}

// call sends batch as one Append and hands each caller its share.
func (co *coalescer) call(key queueKey, batch []*pendingAppend) {
	ctx, cancel := co.callContext(batch)
	defer cancel()
	recs, counts := joinBatch(batch)
	req := &aof2v1.AppendRequest{StreamId: uint64(key.stream), Records: recs, NoWaitDurable: key.noWait}
	if len(batch) > 1 && proto.Size(req) > co.maxMessage {
		deliverAlone(batch)
		return
	}
	if len(batch) > 1 {
		// The call outlives a caller that gives up: it must not read
		// that caller's buffers once Append has returned.
		req = proto.CloneOf(req)
		for _, p := range batch {
			p.doneReading()
		}
	} else {
		// The call runs under its caller's context: it ends, and stops
		// reading, soon after the caller gives up.
		defer batch[0].doneReading()
	}
	resp, err := co.log.Append(ctx, req)
	deliver(batch, resp.GetIds(), fromStatus(err), counts)
}

// callContext is the context of a coalesced call: cancelled once every
// caller in it has given up, or when the Client closes. A batch of one
// uses its caller's context as it is.
func (co *coalescer) callContext(batch []*pendingAppend) (context.Context, context.CancelFunc) {
	if len(batch) == 1 {
		return batch[0].ctx, func() {}
	}
	ctx, cancel := context.WithCancel(co.life)
	left := atomic.Int64{}
	left.Store(int64(len(batch)))
	stops := make([]func() bool, len(batch))
	for i, p := range batch {
		stops[i] = context.AfterFunc(p.ctx, func() {
			if left.Add(-1) == 0 {
				cancel()
			}
		})
	}
	return ctx, func() {
		for _, stop := range stops {
			stop()
		}
		cancel()
	}
}

// splitIDs gives each caller its ids, counts[i] of them in order.
func splitIDs(ids []uint64, counts []int) []appendOutcome {
	outs := make([]appendOutcome, len(counts))
	total := 0
	for _, n := range counts {
		total += n
	}
	if len(ids) != total {
		err := &Error{Message: "aof2 client: the host answered a coalesced append with the wrong number of ids", target: ErrBadRequest}
		for i := range outs {
			outs[i].err = err
		}
		return outs
	}
	off := 0
	for i, n := range counts {
		mine := make([]RecordID, n)
		for j := range mine {
			mine[j] = RecordID(ids[off+j])
		}
		outs[i].ids = mine
		off += n
	}
	return outs
}

// splitError gives each caller its share of a coalesced call's error. A
// call refused as a whole for what may be one caller's record is retried
// by each caller alone; a call that appended a prefix of its records
// before failing tells each caller how many of its own were appended (the
// last id only to the caller holding the last appended record: ids are
// positions the client cannot work out).
func splitError(err error, counts []int) []appendOutcome {
	outs := make([]appendOutcome, len(counts))
	e, ok := errors.AsType[*Error](err)
	if !ok || e.Appended == 0 {
		alone := len(counts) > 1 && refusedAsAWhole(err)
		for i := range outs {
			outs[i] = appendOutcome{err: err, alone: alone}
		}
		return outs
	}
	off := 0
	for i, n := range counts {
		mine := *e
		mine.Appended = min(max(e.Appended-off, 0), n)
		if off+n < e.Appended || mine.Appended == 0 {
			mine.LastID = 0
		}
		outs[i].err = &mine
		off += n
	}
	return outs
}

// refusedAsAWhole: errors about a request's records (one of them empty or
// too large, a malformed batch), for which the host appends nothing.
func refusedAsAWhole(err error) bool {
	return errors.Is(err, types.ErrEmptyRecord) || errors.Is(err, types.ErrRecordTooLarge) || errors.Is(err, ErrBadRequest)
}

// deliverAlone tells each caller of batch to send its records alone.
func deliverAlone(batch []*pendingAppend) {
	for _, p := range batch {
		p.doneReading()
		p.done <- appendOutcome{alone: true}
	}
}
