package client

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	aof2v1 "github.com/aof2/aof2/api/proto/aof2/v1"
)

// AppendIdempotent sends one idempotent append: records under producer
// and sequence (docs/tiering.md#idempotent-appends). duplicate reports
// that the host had already taken this request: ids are the first
// attempt's and nothing was appended. It is not retried; Producer does
// that.
func (c *Client) AppendIdempotent(ctx context.Context, stream StreamID, producer, sequence uint64, recs []Record, noWait bool) (ids []RecordID, duplicate bool, err error) {
	if producer == 0 {
		return nil, false, fmt.Errorf("aof2 client: producer id 0: %w", ErrBadRequest)
	}
	req := &aof2v1.AppendRequest{StreamId: uint64(stream), Records: toProto(recs), NoWaitDurable: noWait, ProducerId: producer, Sequence: sequence}
	resp, err := c.log.Append(ctx, req)
	if err != nil {
		return nil, false, fromStatus(err)
	}
	ids = make([]RecordID, len(resp.GetIds()))
	for i, id := range resp.GetIds() {
		ids[i] = RecordID(id)
	}
	return ids, resp.GetDuplicate(), nil
}

// Producer appends durably and idempotently to one stream: each Append
// is a request with the producer's next sequence, sent again with the
// same sequence after a failure that may have lost the answer (the host
// unreachable or restarting, a dropped connection, backpressure) until
// ctx ends. The host answers a request it already took with the first
// attempt's ids, so a retried record is never appended twice, also when
// the host crashed in between. Requests go one at a time; Producer is
// safe for concurrent use. The id is random per Producer: a process that
// must keep retrying across its own restarts persists ID and Sequence and
// uses ResumeProducer.
type Producer struct {
	c      *Client
	stream StreamID
	id     uint64
	// mu serialises requests (the host answers only a producer's last
	// one) and guards seq.
	mu  sync.Mutex
	seq uint64 // the last sequence sent
}

// NewProducer returns a Producer for stream with a random id.
func (c *Client) NewProducer(stream StreamID) (*Producer, error) {
	var b [8]byte
	for {
		if _, err := rand.Read(b[:]); err != nil {
			return nil, fmt.Errorf("aof2 client: producer id: %w", err)
		}
		if id := binary.LittleEndian.Uint64(b[:]); id != 0 {
			return c.ResumeProducer(stream, id, 0), nil
		}
	}
}

// ResumeProducer returns a Producer with a known id whose last request
// had sequence last: its next Append uses last+1. To retry a request
// whose outcome a crash hid, resume with last one less than its sequence
// and append the same records first.
func (c *Client) ResumeProducer(stream StreamID, id, last uint64) *Producer {
	return &Producer{c: c, stream: stream, id: id, seq: last}
}

// ID returns the producer id.
func (p *Producer) ID() uint64 { return p.id }

// Sequence returns the sequence of the last request sent.
func (p *Producer) Sequence() uint64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.seq
}

// Append appends payloads as one request and returns their ids once they
// are durable.
func (p *Producer) Append(ctx context.Context, payloads ...[]byte) ([]RecordID, error) {
	recs := make([]Record, len(payloads))
	for i, pl := range payloads {
		recs[i] = Record{Payload: pl}
	}
	return p.AppendRecords(ctx, recs)
}

// Retry delays of Producer: doubling from the first to the last.
const (
	producerRetryFirst = 10 * time.Millisecond
	producerRetryMax   = time.Second
)

// AppendRecords appends recs as one request (at most one segment's worth:
// ErrBatchTooLarge otherwise) and returns their ids once they are
// durable.
func (p *Producer) AppendRecords(ctx context.Context, recs []Record) ([]RecordID, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.seq++
	delay := producerRetryFirst
	for {
		ids, _, err := p.c.AppendIdempotent(ctx, p.stream, p.id, p.seq, recs, false)
		if err == nil || !resendable(err) || ctx.Err() != nil {
			return ids, err
		}
		var wb *WouldBlockError
		if errors.As(err, &wb) && wb.RetryAfter > delay {
			delay = wb.RetryAfter
		}
		t := time.NewTimer(delay)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return nil, err
		}
		delay = min(2*delay, producerRetryMax)
	}
}

// resendable reports whether a failed idempotent request may be sent
// again: the host may not have answered (it was unreachable, restarting
// or shedding load). Refusals of the request itself are final.
func resendable(err error) bool {
	switch status.Code(err) {
	case codes.Unavailable, codes.Aborted:
		return true
	}
	return false
}
