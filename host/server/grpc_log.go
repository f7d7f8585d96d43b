package server

import (
	"cmp"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"

	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"

	aof2v1 "github.com/aof2/aof2/api/proto/aof2/v1"
	"github.com/aof2/aof2/core"
	"github.com/aof2/aof2/host/cluster"
)

// logService implements aof2.v1.Log. Handlers return plain errors; the
// error interceptor turns them into statuses through the error table.
type logService struct {
	aof2v1.UnimplementedLogServer
	s *Server
}

// Read limits: defaults and caps for ReadRequest.max_records.
const (
	defaultReadRecords = 1000
	maxReadRecords     = 100000
)

// maxAnswerRecords caps the records of one Append (or AppendPipeline
// request): the answer carries an id per record, up to ten bytes each, and
// must fit one message of the smallest size either side accepts (4 MiB).
// A request that fits one message can hold more records than its answer
// holds ids: it would be appended, then not answered.
const maxAnswerRecords = (minMessageSize - 1<<10) / binary.MaxVarintLen64

// checkAnswerable refuses a request whose answer would not fit one
// message, before anything of it is appended.
func checkAnswerable(req *aof2v1.AppendRequest) error {
	n := len(req.GetRecords())
	if n <= maxAnswerRecords {
		return nil
	}
	count := strconv.Itoa(n)
	if n == maxAnswerRecords+1 { // the codec decodes no more (unmarshalBounded)
		count = "more than " + strconv.Itoa(maxAnswerRecords)
	}
	return fmt.Errorf("stream %d: %s records in one request, at most %d (the answer holds an id for each): split it: %w",
		req.GetStreamId(), count, maxAnswerRecords, ErrBadRequest)
}

func (l *logService) Append(ctx context.Context, req *aof2v1.AppendRequest) (*aof2v1.AppendResponse, error) {
	if err := checkAnswerable(req); err != nil {
		return nil, err
	}
	es := entriesFromProto(req.GetRecords())
	if req.GetProducerId() == 0 && req.GetSequence() != 0 {
		return nil, errSequenceAlone
	}
	c, err := l.s.cluster()
	if err != nil {
		return nil, err
	}
	if c != nil {
		if req.CoordinatorWatermark != nil {
			return nil, errWatermarkInCluster
		}
		if req.GetProducerId() != 0 {
			return nil, errIdempotentUnsupported("in cluster mode")
		}
		ids, err := l.s.clusterAppend(ctx, c, core.StreamID(req.GetStreamId()), es)
		if err != nil {
			return nil, err
		}
		return &aof2v1.AppendResponse{Ids: idsToProto(ids), Durable: true}, nil
	}
	str, err := l.s.appendTo(core.StreamID(req.GetStreamId()), es)
	if err != nil {
		return nil, err
	}
	durable := !req.GetNoWaitDurable()
	var (
		ids []core.RecordID
		dup bool
	)
	if pid := req.GetProducerId(); pid != 0 {
		ids, dup, err = l.s.appendIdempotent(ctx, str, core.Producer{ID: pid, Seq: req.GetSequence()}, es, durable)
	} else {
		ids, err = l.s.appendDurable(ctx, str, es, durable)
	}
	if err != nil {
		return nil, err
	}
	if req.CoordinatorWatermark != nil {
		str.SetCoordinatorWatermark(req.GetCoordinatorWatermark())
	}
	return &aof2v1.AppendResponse{Ids: idsToProto(ids), Durable: durable, Duplicate: dup}, nil
}

func (l *logService) AppendStream(ss grpc.ClientStreamingServer[aof2v1.AppendRequest, aof2v1.AppendStreamResponse]) error {
	ctx := ss.Context()
	var (
		str     *core.Stream
		count   int
		last    core.RecordID
		durable bool
	)
	for {
		req, err := recvAppendStream(ss)
		if err == io.EOF {
			break
		}
		if err != nil {
			return withAppendedN(count, last, err)
		}
		id, es := core.StreamID(req.GetStreamId()), entriesFromProto(req.GetRecords())
		if req.GetProducerId() != 0 {
			return withAppendedN(count, last, errIdempotentUnsupported("on AppendStream; use Append"))
		}
		c, err := l.s.cluster()
		if err != nil {
			return withAppendedN(count, last, err)
		}
		if c != nil {
			if count, last, err = l.clusterAppendStream(ctx, c, id, req, es, count, last); err != nil {
				return err
			}
			durable = true
			continue
		}
		if str == nil {
			if str, err = l.s.appendTo(id, es); err != nil {
				return err
			}
		} else if id != str.ID() {
			return withAppendedN(count, last, fmt.Errorf("append stream: a message for stream %d after messages for stream %d: %w", id, str.ID(), ErrBadRequest))
		}
		ids, err := l.s.appendEntries(ctx, str, es, true)
		if len(ids) > 0 {
			count, last = count+len(ids), ids[len(ids)-1]
		}
		if err != nil {
			return withAppendedN(count, last, err)
		}
		if req.CoordinatorWatermark != nil {
			str.SetCoordinatorWatermark(req.GetCoordinatorWatermark())
		}
		durable = durable || !req.GetNoWaitDurable()
	}
	resp := &aof2v1.AppendStreamResponse{Count: uint64(count), Durable: durable || count == 0}
	if count > 0 {
		resp.LastId = new(uint64(last))
	}
	if count > 0 && durable && str != nil {
		if err := str.Flush(ctx, last); err != nil {
			return withAppendedN(count, last, err)
		}
	}
	return ss.SendAndClose(resp)
}

func (l *logService) Read(ctx context.Context, req *aof2v1.ReadRequest) (*aof2v1.ReadResponse, error) {
	if err := l.s.readBarrier(ctx, req.GetConsistency()); err != nil {
		return nil, err
	}
	str, err := l.s.lookup(core.StreamID(req.GetStreamId()))
	if err != nil {
		return nil, err
	}
	h := l.s.reads.newHold(ctx)
	res, err := readRange(ctx, str, positionFromProto(req.GetStart()), l.s.readLimits(int(req.GetMaxRecords()), req.GetMaxBytes()), req.GetNoWaitHydration(), h)
	if err != nil {
		h.release()
		return nil, err
	}
	resp := &aof2v1.ReadResponse{Records: make([]*aof2v1.StoredRecord, len(res.records)), Next: positionToProto(res.next), End: res.end}
	for i, r := range res.records {
		resp.Records[i] = recordToProto(r)
	}
	// The records stay counted until the transport has written the
	// encoded response out.
	l.s.reads.handoff(resp, h)
	return resp, nil
}

// readLimits turns a request's limits into bounded ones: zero means the
// default (Options.ReadDefaultBytes), and no response exceeds
// Options.ReadMaxBytes or what one message carries.
func (s *Server) readLimits(records int, bytes uint64) readLimits {
	if records <= 0 {
		records = defaultReadRecords
	}
	size := s.maxResponse()
	lim := readLimits{records: min(records, maxReadRecords), bytes: int(min(s.opts.ReadDefaultBytes, int64(size))), budget: size}
	if bytes > 0 {
		lim.bytes = int(min(bytes, uint64(size)))
	}
	return lim
}

// maxResponse is the largest read response or tail message: payload and
// framing up to ReadMaxBytes, within one gRPC message.
func (s *Server) maxResponse() int {
	return int(min(s.opts.ReadMaxBytes, int64(s.opts.maxMessage()-framingSlack/2)))
}

// tailBatchRecords caps one Tail message: it carries what is durable
// already, up to this many records (and Options.ReadDefaultBytes).
const tailBatchRecords = 1000

func (l *logService) Tail(req *aof2v1.TailRequest, ss grpc.ServerStreamingServer[aof2v1.TailResponse]) error {
	str, err := l.s.lookup(core.StreamID(req.GetStreamId()))
	if err != nil {
		return err
	}
	t, err := str.Tail(positionFromProto(req.GetStart()).core())
	if err != nil {
		return err
	}
	defer t.Close()
	if c := connOf(ss.Context()); c != nil {
		tc := &tailCall{conn: c, done: make(chan struct{})}
		l.s.tails.Store(tc, struct{}{})
		defer func() { close(tc.done); l.s.tails.Delete(tc) }()
	}
	// Headers tell the client the tail is open (errors so far came instead
	// of them).
	if err := ss.SendHeader(metadata.MD{}); err != nil {
		return err
	}
	ctx, cancel := l.s.untilStopped(ss.Context())
	defer cancel()
	limit := int(min(l.s.opts.ReadDefaultBytes, int64(l.s.maxResponse())))
	var carried *core.Record // taken from the tailer, not sent yet: it leads the next message
	for {
		var rec core.Record
		if carried != nil {
			rec, carried = *carried, nil
		} else if rec, err = t.Next(ctx); err != nil {
			return l.tailErr(ctx, err)
		}
		// Each message's records are counted in the read budget until the
		// transport has written it out; the first waits for room.
		h := l.s.reads.newHold(ss.Context())
		size := len(rec.Payload) + perRecordFraming
		if err := h.wait(ctx, int64(size)); err != nil {
			h.release()
			return l.tailErr(ctx, fmt.Errorf("stream %d: tail: waiting for the read budget: %w", str.ID(), err))
		}
		batch := []*aof2v1.StoredRecord{recordToProto(copyRecord(rec))}
		for len(batch) < tailBatchRecords {
			rec, err := t.TryNext()
			if err != nil {
				break // nothing durable right now, or an error Next reports
			}
			cost := len(rec.Payload) + perRecordFraming
			if size+cost > limit || !h.try(int64(cost)) {
				// The tailer has moved past it: it leads the next message.
				carried = &rec
				break
			}
			batch = append(batch, recordToProto(copyRecord(rec)))
			size += cost
		}
		resp := &aof2v1.TailResponse{Records: batch}
		l.s.reads.handoff(resp, h)
		err := ss.Send(resp)
		l.s.reads.unclaimed(resp, h)
		if err != nil {
			return err
		}
	}
}

// tailErr is what a tail returns when waiting failed: the shutdown, or
// the error itself.
func (l *logService) tailErr(ctx context.Context, err error) error {
	if errors.Is(context.Cause(ctx), errShuttingDown) {
		return errShuttingDown
	}
	return err
}

func copyRecord(r core.Record) core.Record {
	r.Payload = append([]byte(nil), r.Payload...)
	return r
}

func (l *logService) Flush(ctx context.Context, req *aof2v1.FlushRequest) (*aof2v1.FlushResponse, error) {
	str, err := l.s.lookup(core.StreamID(req.GetStreamId()))
	if err != nil {
		return nil, err
	}
	if err := str.FlushAll(ctx); err != nil {
		return nil, err
	}
	return &aof2v1.FlushResponse{Info: infoToProto(str)}, nil
}

func (l *logService) Seal(ctx context.Context, req *aof2v1.SealRequest) (*aof2v1.SealResponse, error) {
	str, err := l.s.lookup(core.StreamID(req.GetStreamId()))
	if err != nil {
		return nil, err
	}
	c, err := l.s.cluster()
	switch {
	case err != nil:
	case c != nil:
		err = c.Seal(ctx, str.ID(), 0)
	default:
		err = str.Seal(ctx)
	}
	if err != nil {
		return nil, err
	}
	return &aof2v1.SealResponse{Info: infoToProto(str)}, nil
}

func (l *logService) StreamInfo(_ context.Context, req *aof2v1.StreamInfoRequest) (*aof2v1.StreamInfoResponse, error) {
	str, err := l.s.lookup(core.StreamID(req.GetStreamId()))
	if err != nil {
		return nil, err
	}
	return infoToProto(str), nil
}

func (l *logService) ListStreams(context.Context, *aof2v1.ListStreamsRequest) (*aof2v1.ListStreamsResponse, error) {
	st, err := l.s.store()
	if err != nil {
		return nil, err
	}
	resp := &aof2v1.ListStreamsResponse{}
	for _, id := range st.Streams() {
		resp.StreamIds = append(resp.StreamIds, uint64(id))
	}
	for id, err := range st.Broken() {
		resp.Broken = append(resp.Broken, &aof2v1.BrokenStream{StreamId: uint64(id), Error: redactPaths(err.Error())})
	}
	slices.SortFunc(resp.Broken, func(a, b *aof2v1.BrokenStream) int { return cmp.Compare(a.StreamId, b.StreamId) })
	return resp, nil
}

// clusterAppendStream appends one AppendStream message through Raft,
// adding to the count and last id of the messages before it.
func (l *logService) clusterAppendStream(ctx context.Context, c *cluster.Node, id core.StreamID, req *aof2v1.AppendRequest, es []entry, count int, last core.RecordID) (int, core.RecordID, error) {
	if req.CoordinatorWatermark != nil {
		return count, last, withAppendedN(count, last, errWatermarkInCluster)
	}
	ids, err := l.s.clusterAppend(ctx, c, id, es)
	if len(ids) > 0 {
		count, last = count+len(ids), ids[len(ids)-1]
	}
	return count, last, withAppendedN(count, last, err)
}
