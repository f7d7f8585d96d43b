package client

import (
	"errors"
	"sync"

	spb "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	aof2v1 "github.com/aof2/aof2/api/proto/aof2/v1"
)

// Pipelining: the coalescer's batches travel on one AppendPipeline call
// per Client instead of a unary Append each. A unary call costs both sides
// a header exchange, system calls and a goroutine whatever it carries, and
// its sender waits for the answer before it takes the next batch; on a
// pipeline a request is a message, the host syncs once for everything that
// arrived while its previous sync ran and answers several requests per
// message (docs/adr-write-path.md). A host that does not serve the call
// (older than it, or in cluster mode) refuses it before reading anything;
// the coalescer then goes back to unary calls for good, and each caller of
// a batch sent on the refused call sends its records again, alone.
//
// A queue has at most pipelineDepth requests unanswered; its sender waits
// for an answer before sending more, and what arrives meanwhile goes in
// the next request. Without the bound every append became a request of
// its own (1.2 records each at 64 callers) and the host spent its CPU
// reading them; with it (2 to 8 measured alike) a request carries what
// arrived during a sync, and the syncs got shorter on a busy machine
// (docs/performance.md).
const pipelineDepth = 4

// slot is a queue's room for one request on a pipeline call; the zero
// slot is none: the batch goes as a unary call.
type slot struct {
	co  *coalescer
	key queueKey
	q   *appendQueue
}

// drop gives the room back unused. Called with coalescer.mu held.
func (s slot) drop() {
	if s.q != nil {
		<-s.q.slots
	}
}

// release gives the room back, and forgets the queue when nothing uses it
// any more (send forgets it otherwise: whichever comes last).
func (s slot) release() {
	if s.q == nil {
		return
	}
	s.co.mu.Lock()
	<-s.q.slots
	if s.co.queues[s.key] == s.q && s.q.idle() {
		delete(s.co.queues, s.key)
	}
	s.co.mu.Unlock()
}

// pipelineCall is the AppendPipeline call of a coalescer. Its receiver
// goroutine lives as long as the call: it ends when the host ends the call
// or the Client closes (the call runs under the coalescer's life).
type pipelineCall struct {
	call grpc.BidiStreamingClient[aof2v1.AppendPipelineRequest, aof2v1.AppendPipelineResponse]

	// sendMu orders Send and seq: the host requires seq to grow.
	sendMu sync.Mutex
	seq    uint64 // guarded by sendMu

	mu       sync.Mutex
	waiting  map[uint64]pipelineBatch // guarded by mu; sent, not answered
	ended    bool                     // guarded by mu; no more answers will come
	answered bool                     // guarded by mu; the host answered at least once
	done     chan struct{}            // closed when the call has ended
}

type pipelineBatch struct {
	batch  []*pendingAppend
	counts []int
	slot   slot // released when the batch is answered or the call ends
}

// errPipelineEnded: the call ended before a batch could be sent on it.
var errPipelineEnded = errors.New("aof2 client: append pipeline ended")

// pipelineSlot waits until q may send one more request on the pipeline
// call and returns the slot; none when batches go as unary calls, or when
// the call or the Client ended meanwhile.
func (co *coalescer) pipelineSlot(key queueKey, q *appendQueue) slot {
	p := co.pipelineCall()
	if p == nil {
		return slot{}
	}
	select {
	case q.slots <- struct{}{}:
		return slot{co: co, key: key, q: q}
	case <-p.done:
	case <-co.life.Done():
	}
	return slot{}
}

// pipelined sends batch on the coalescer's pipeline call, opening one if
// none is open; s is the queue's slot for it. It reports false when the
// batch must go as a unary call instead: no slot, pipelining is off, or no
// call could be opened.
func (co *coalescer) pipelined(key queueKey, s slot, batch []*pendingAppend) bool {
	if s.q == nil {
		return false
	}
	for range 2 {
		p := co.pipelineCall()
		if p == nil {
			return false
		}
		if !errors.Is(p.send(co, key, s, batch), errPipelineEnded) {
			// Sent (Send encodes before it returns), or left to the
			// receiver: no one reads the callers' records any more.
			for _, pa := range batch {
				pa.doneReading()
			}
			return true
		}
	}
	return false
}

// pipelineCall returns the open call, opening one when there is none.
func (co *coalescer) pipelineCall() *pipelineCall {
	co.pipeMu.Lock()
	defer co.pipeMu.Unlock()
	if !co.pipeline {
		return nil
	}
	if co.pipe != nil {
		return co.pipe
	}
	call, err := co.log.AppendPipeline(co.life)
	if err != nil {
		return nil
	}
	p := &pipelineCall{call: call, waiting: map[uint64]pipelineBatch{}, done: make(chan struct{})}
	co.pipe = p
	go co.receive(p)
	return p
}

// send sends batch as one request. A send that fails leaves the batch to
// the receiver, which fails it with the call's status.
func (p *pipelineCall) send(co *coalescer, key queueKey, s slot, batch []*pendingAppend) error {
	recs, counts := joinBatch(batch)
	req := &aof2v1.AppendPipelineRequest{Append: &aof2v1.AppendRequest{
		StreamId: uint64(key.stream), Records: recs, NoWaitDurable: key.noWait,
	}}
	if len(batch) > 1 && proto.Size(req)+16 > co.maxMessage {
		// Over the Client's message limit: a failed Send would end the
		// call under every request on it.
		s.release()
		deliverAlone(batch)
		return nil
	}
	p.sendMu.Lock()
	defer p.sendMu.Unlock()
	p.mu.Lock()
	if p.ended {
		p.mu.Unlock()
		return errPipelineEnded
	}
	p.seq++
	seq := p.seq
	p.waiting[seq] = pipelineBatch{batch: batch, counts: counts, slot: s}
	p.mu.Unlock()
	req.Seq = seq
	return p.call.Send(req)
}

// receive hands each answer to its callers until the call ends, then
// fails (or, when the host refused the call, resends) what is left.
func (co *coalescer) receive(p *pipelineCall) {
	for {
		resp, err := p.call.Recv()
		if err != nil {
			co.pipelineEnded(p, err)
			return
		}
		for _, ack := range resp.GetAcks() {
			p.mu.Lock()
			b, ok := p.waiting[ack.GetSeq()]
			delete(p.waiting, ack.GetSeq())
			p.answered = true
			p.mu.Unlock()
			if !ok {
				continue // not ours: nothing waits for it
			}
			b.slot.release()
			if e := ack.GetError(); e != nil {
				st := status.FromProto(&spb.Status{Code: e.GetCode(), Message: e.GetMessage(), Details: e.GetDetails()})
				deliver(b.batch, nil, fromStatus(st.Err()), b.counts)
			} else {
				deliver(b.batch, ack.GetResult().GetIds(), nil, b.counts)
			}
		}
	}
}

// pipelineEnded retires p. A call the host refused before answering
// anything appended nothing: pipelining goes off and each waiting caller
// sends its records again, alone. Otherwise the waiting callers get the
// call's status: their records may or may not have been appended, as
// for a unary call whose connection failed.
func (co *coalescer) pipelineEnded(p *pipelineCall, err error) {
	p.mu.Lock()
	p.ended = true
	waiting := p.waiting
	p.waiting = nil
	refused := !p.answered && status.Code(err) == codes.Unimplemented
	p.mu.Unlock()
	// A send in progress may still be encoding its callers' payloads (the
	// host can refuse the call before it reads them): they get their
	// answer, and their buffers back, only once it has returned. With the
	// call ended, it returns at once, and no other send starts.
	p.sendMu.Lock()
	//lint:ignore SA2001 the empty critical section waits for the send
	p.sendMu.Unlock()
	close(p.done)
	co.pipeMu.Lock()
	if co.pipe == p {
		co.pipe = nil
	}
	if refused {
		co.pipeline = false
	}
	co.pipeMu.Unlock()
	err = fromStatus(err)
	for _, b := range waiting {
		b.slot.release()
		for _, pa := range b.batch {
			pa.done <- appendOutcome{err: err, alone: refused}
		}
	}
}

// joinBatch is the records of a batch in order, and how many each caller
// has.
func joinBatch(batch []*pendingAppend) ([]*aof2v1.Record, []int) {
	var recs []*aof2v1.Record
	counts := make([]int, len(batch))
	for i, p := range batch {
		recs = append(recs, p.recs...)
		counts[i] = len(p.recs)
	}
	return recs, counts
}

// deliver hands each caller of a batch its share of the answer: ids
// (when err is nil) or err.
func deliver(batch []*pendingAppend, ids []uint64, err error, counts []int) {
	var outs []appendOutcome
	if err == nil {
		outs = splitIDs(ids, counts)
	} else {
		outs = splitError(err, counts)
	}
	for i, p := range batch {
		p.done <- outs[i]
	}
}
