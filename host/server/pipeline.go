package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"sync"

	"google.golang.org/grpc"

	aof2v1 "github.com/aof2/aof2/api/proto/aof2/v1"
	"github.com/aof2/aof2/core"
)

// AppendPipeline serves many appends on one call. A unary Append costs
// the host a read and a write system call, a goroutine and a header
// exchange whatever it carries, and the Go client can have only a few in
// flight per stream before their latencies add up; on a small machine that,
// not the disk, bounds durable appends through the host
// (docs/adr-write-path.md). On a pipeline the client sends requests as
// they come. One goroutine (receive) reads and appends them in arrival
// order; the handler's goroutine (answer) takes everything appended so far,
// makes it durable with one Flush per stream — the sync shared with every
// request appended while the previous one ran — and answers it in one
// message. Each request is answered as a unary Append would be: its ids or
// its status.
const (
	// pipelineQueue bounds the requests appended and not yet answered on
	// one call: when answering falls that far behind, receive stops
	// reading and HTTP/2 flow control slows the client.
	pipelineQueue = 1024
	// pipelineAnswerIDs bounds the ids in one answer message (≈ 9 bytes
	// each), well under the smallest message limit a client has (4 MiB).
	pipelineAnswerIDs = 64 << 10
)

// errPipelineInCluster refuses AppendPipeline in cluster mode, before
// anything is read: the client sends unary Appends instead, which follow
// the leader.
var errPipelineInCluster = errors.New("aof2: AppendPipeline is not served in cluster mode; use Append")

// pipelined is one request of the call, appended (or refused) and waiting
// for its answer.
type pipelined struct {
	seq     uint64
	str     *core.Stream // nil when refused before a stream was found
	ids     []core.RecordID
	durable bool
	err     error
}

// pipeline is one AppendPipeline call.
type pipeline struct {
	s     *Server
	ss    grpc.BidiStreamingServer[aof2v1.AppendPipelineRequest, aof2v1.AppendPipelineResponse]
	items chan pipelined // receive → answer; closed by receive when it ends
	// recvErr is why receive ended (nil: the client closed its side);
	// written before items is closed, read after.
	recvErr error

	// mu orders receive's appends against the end of the call: receive
	// appends and hands a request over under it, and once answerAll has
	// set closing nothing more is appended. A request appended after the
	// call's context ended waits in leftover instead of items.
	mu       sync.Mutex
	closing  bool        // guarded by mu
	leftover []pipelined // guarded by mu
}

func (l *logService) AppendPipeline(ss grpc.BidiStreamingServer[aof2v1.AppendPipelineRequest, aof2v1.AppendPipelineResponse]) error {
	// Refused on a clustered node whether or not it has joined Raft yet:
	// the call outlives that check, and its appends go to the store.
	if l.s.clustered() != nil {
		return errPipelineInCluster
	}
	// ctx ends with the call, or when Shutdown starts: receive stops
	// appending, answer makes durable and answers what was appended.
	ctx, cancel := l.s.untilStopped(ss.Context())
	defer cancel()
	p := &pipeline{s: l.s, ss: ss, items: make(chan pipelined, pipelineQueue)}
	// receive ends when the client closes its side, when the call ends (this
	// handler's return ends it) or when ctx does.
	go p.receive(ctx)
	return p.answerAll(ctx)
}

func (p *pipeline) receive(ctx context.Context) {
	defer close(p.items)
	var (
		last  uint64
		first = true // seq must exceed the previous request's; the first has none
	)
	for {
		req, err := p.ss.Recv()
		if err == io.EOF {
			return
		}
		if ctx.Err() != nil {
			// The client went away (a cancelled call, not a fault to log)
			// or Shutdown started.
			err = context.Cause(ctx)
		}
		if err == nil && !first && req.GetSeq() <= last {
			err = fmt.Errorf("append pipeline: seq %d after %d: %w", req.GetSeq(), last, ErrBadRequest)
		}
		if err != nil {
			p.recvErr = err
			return
		}
		last, first = req.GetSeq(), false
		if !p.appendAndHandOver(ctx, req) {
			p.recvErr = context.Cause(ctx)
			return
		}
	}
}

// appendAndHandOver appends req and hands it to answer; false when the
// call is ending (the request is then not appended, or waits in leftover
// for answerAll's last answer).
func (p *pipeline) appendAndHandOver(ctx context.Context, req *aof2v1.AppendPipelineRequest) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closing {
		return false
	}
	it := p.append(ctx, req)
	select {
	case p.items <- it:
		return true
	case <-ctx.Done():
		p.leftover = append(p.leftover, it)
		return false
	}
}

// append appends one request's records, as Append does.
func (p *pipeline) append(ctx context.Context, req *aof2v1.AppendPipelineRequest) pipelined {
	a := req.GetAppend()
	it := pipelined{seq: req.GetSeq(), durable: !a.GetNoWaitDurable()}
	switch {
	case a == nil:
		it.err = fmt.Errorf("append pipeline: request %d carries no append: %w", it.seq, ErrBadRequest)
	case a.GetProducerId() != 0:
		it.err = errIdempotentUnsupported("on AppendPipeline; use Append")
	case a.GetSequence() != 0:
		it.err = errSequenceAlone
	default:
		it.err = checkAnswerable(a)
	}
	if it.err != nil {
		return it
	}
	es := entriesFromProto(a.GetRecords())
	if it.str, it.err = p.s.appendTo(core.StreamID(a.GetStreamId()), es); it.err != nil {
		return it
	}
	it.ids, it.err = p.s.appendEntries(ctx, it.str, es, it.durable)
	if it.err == nil && a.CoordinatorWatermark != nil {
		it.str.SetCoordinatorWatermark(a.GetCoordinatorWatermark())
	}
	return it
}

// answerAll answers batches of appended requests until receive ends. When
// ctx ends first (Shutdown) it answers what receive has handed over and
// ends the call; requests still in flight get the call's status.
func (p *pipeline) answerAll(ctx context.Context) error {
	batch := make([]pipelined, 0, 64)
	for {
		select {
		case it, ok := <-p.items:
			if !ok {
				return p.finish(batch[:0], p.recvErr)
			}
			batch = append(batch[:0], it)
		case <-ctx.Done():
			return p.finish(batch[:0], context.Cause(ctx))
		}
		var ended bool
		batch, ended = p.drain(batch, pipelineQueue)
		if err := p.answer(ctx, batch); err != nil {
			return err
		}
		if ended {
			return p.finish(batch[:0], p.recvErr)
		}
	}
}

// finish answers, under the call's own context, what receive appended and
// nobody answered yet, then ends the call with err.
func (p *pipeline) finish(batch []pipelined, err error) error {
	if aerr := p.answer(p.ss.Context(), p.last(batch)); aerr != nil {
		return aerr
	}
	return err
}

// last is everything receive appended and answer has not taken, once no
// more will be appended: the queue, then what receive could not hand over.
func (p *pipeline) last(batch []pipelined) []pipelined {
	p.mu.Lock()
	p.closing = true
	leftover := p.leftover
	p.mu.Unlock()
	batch, _ = p.drain(batch, math.MaxInt)
	return append(batch, leftover...)
}

// drain appends to batch the requests already queued, without waiting, up
// to limit in all; ended reports that receive closed the queue.
func (p *pipeline) drain(batch []pipelined, limit int) (_ []pipelined, ended bool) {
	for len(batch) < limit {
		select {
		case it, ok := <-p.items:
			if !ok {
				return batch, true
			}
			batch = append(batch, it)
		default:
			return batch, false
		}
	}
	return batch, false
}

// answer makes the batch's durable requests durable, one Flush per stream
// to its last id, and sends every request's answer in order.
func (p *pipeline) answer(ctx context.Context, batch []pipelined) error {
	type flush struct {
		str  *core.Stream
		last core.RecordID
		err  error
	}
	var flushes []flush // few: one per stream in the batch
	find := func(str *core.Stream) *flush {
		for i := range flushes {
			if flushes[i].str == str {
				return &flushes[i]
			}
		}
		flushes = append(flushes, flush{str: str})
		return &flushes[len(flushes)-1]
	}
	for _, it := range batch {
		if it.err == nil && it.durable {
			f := find(it.str)
			f.last = max(f.last, it.ids[len(it.ids)-1])
		}
	}
	for i := range flushes {
		flushes[i].err = flushes[i].str.Flush(ctx, flushes[i].last)
	}
	resp := &aof2v1.AppendPipelineResponse{Acks: make([]*aof2v1.AppendAck, 0, len(batch))}
	ids := 0
	for _, it := range batch {
		err := it.err
		if err == nil && it.durable {
			if ferr := find(it.str).err; ferr != nil {
				err = withAppended(it.ids, ferr)
			}
		}
		// An answer of many ids goes out on its own: with the ones before
		// it, the message could exceed the limit.
		if len(resp.Acks) > 0 && ids+len(it.ids) > pipelineAnswerIDs {
			if err := p.ss.Send(resp); err != nil {
				return err
			}
			resp, ids = &aof2v1.AppendPipelineResponse{}, 0
		}
		resp.Acks = append(resp.Acks, p.ack(it, err))
		ids += len(it.ids)
	}
	if len(resp.Acks) == 0 {
		return nil
	}
	return p.ss.Send(resp)
}

// ack is one request's answer: Append's response, or its status.
func (p *pipeline) ack(it pipelined, err error) *aof2v1.AppendAck {
	if err == nil {
		return &aof2v1.AppendAck{Seq: it.seq, Outcome: &aof2v1.AppendAck_Result{
			Result: &aof2v1.AppendResponse{Ids: idsToProto(it.ids), Durable: it.durable},
		}}
	}
	p.s.logFault(aof2v1.Log_AppendPipeline_FullMethodName, err)
	st := toStatus(err).Proto()
	return &aof2v1.AppendAck{Seq: it.seq, Outcome: &aof2v1.AppendAck_Error{
		Error: &aof2v1.AppendError{Code: st.GetCode(), Message: st.GetMessage(), Details: st.GetDetails()},
	}}
}
