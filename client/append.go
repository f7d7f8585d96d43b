package client

import (
	"context"
	"errors"
	"io"
	"time"

	"google.golang.org/grpc"

	aof2v1 "github.com/aof2/aof2/api/proto/aof2/v1"
)

// Record is a record read from a stream, or one to append (ID and Ordinal
// are then ignored; a zero Timestamp means the host's clock).
type Record struct {
	ID        RecordID
	Ordinal   uint64
	Timestamp int64 // unix ns
	ExtID     uint64
	Payload   []byte
}

// Append appends payloads to stream (created on first use) and returns
// their ids once they are durable.
func (c *Client) Append(ctx context.Context, stream StreamID, payloads ...[]byte) ([]RecordID, error) {
	return c.append(ctx, stream, fromPayloads(payloads), false, nil)
}

// AppendNoWait appends payloads and returns their ids without waiting for
// durability. It fails with a WouldBlockError rather than wait out
// backpressure (retried automatically unless WithAppendRetry(false)).
func (c *Client) AppendNoWait(ctx context.Context, stream StreamID, payloads ...[]byte) ([]RecordID, error) {
	return c.append(ctx, stream, fromPayloads(payloads), true, nil)
}

// AppendRecords appends records with their own timestamps and ext ids;
// noWait as in AppendNoWait.
func (c *Client) AppendRecords(ctx context.Context, stream StreamID, recs []Record, noWait bool) ([]RecordID, error) {
	return c.append(ctx, stream, toProto(recs), noWait, nil)
}

// AppendWatermarked is AppendRecords that then sets the stream's
// coordinator watermark: the value its next seal carries (segment footer,
// current.sealed, manifest). A writer driving the stream from an external
// log (a Raft log, say) records there how far it has got; it survives
// restarts once a seal carried it (StreamInfo.CoordinatorWatermark).
func (c *Client) AppendWatermarked(ctx context.Context, stream StreamID, recs []Record, watermark uint64, noWait bool) ([]RecordID, error) {
	return c.append(ctx, stream, toProto(recs), noWait, &watermark)
}

func (c *Client) append(ctx context.Context, stream StreamID, recs []*aof2v1.Record, noWait bool, watermark *uint64) ([]RecordID, error) {
	size := payloadBytes(recs)
	// An empty append goes alone, so that the host refuses it as it
	// refuses any (coalesced, it would vanish among the others' records).
	coalesce := c.co != nil && len(recs) > 0 && watermark == nil && coalescable(ctx, size)
	var ids []RecordID
	err := c.retryWouldBlock(ctx, func() error {
		if coalesce {
			out := c.co.append(ctx, queueKey{stream: stream, noWait: noWait}, recs, size)
			if !out.alone {
				ids = out.ids
				return out.err
			}
		}
		req := &aof2v1.AppendRequest{StreamId: uint64(stream), Records: recs, NoWaitDurable: noWait, CoordinatorWatermark: watermark}
		resp, err := c.log.Append(ctx, req)
		if err != nil {
			return fromStatus(err)
		}
		ids = make([]RecordID, len(resp.GetIds()))
		for i, id := range resp.GetIds() {
			ids[i] = RecordID(id)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return ids, nil
}

// defaultRetryDelay is used when a WouldBlock carries no delay.
const defaultRetryDelay = 10 * time.Millisecond

// retryWouldBlock runs call again while it fails with WouldBlock and
// appended nothing, waiting the delay the host asked for, unless retries
// are off or ctx would expire first.
func (c *Client) retryWouldBlock(ctx context.Context, call func() error) error {
	for {
		err := call()
		var wb *WouldBlockError
		if err == nil || !c.opts.appendRetry || !errors.As(err, &wb) {
			return err
		}
		if e, ok := errors.AsType[*Error](err); ok && e.Appended > 0 {
			return err
		}
		d := wb.RetryAfter
		if d <= 0 {
			d = defaultRetryDelay
		}
		if dl, ok := ctx.Deadline(); ok && time.Until(dl) < d {
			return err
		}
		t := time.NewTimer(d)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return err
		}
	}
}

func fromPayloads(payloads [][]byte) []*aof2v1.Record {
	recs := make([]*aof2v1.Record, len(payloads))
	for i, p := range payloads {
		recs[i] = &aof2v1.Record{Payload: p}
	}
	return recs
}

func toProto(recs []Record) []*aof2v1.Record {
	out := make([]*aof2v1.Record, len(recs))
	for i, r := range recs {
		out[i] = &aof2v1.Record{Payload: r.Payload, TimestampUnixNano: r.Timestamp, ExtId: r.ExtID}
	}
	return out
}

var errEndedEarly = errors.New("aof2 client: the host ended the append stream")

// Appender streams batches to one stream over a single call
// (AppendStream): each batch is appended as it arrives, and CloseAndFlush
// makes them durable. Not safe for concurrent use.
type Appender struct {
	call   grpc.ClientStreamingClient[aof2v1.AppendRequest, aof2v1.AppendStreamResponse]
	stream StreamID
	cancel context.CancelFunc
}

// AppendSummary answers CloseAndFlush.
type AppendSummary struct {
	Count   int
	LastID  RecordID // zero when Count is zero
	Durable bool
}

// NewAppender opens a streaming append to stream. ctx bounds the whole
// call; Abort or CloseAndFlush releases it.
func (c *Client) NewAppender(ctx context.Context, stream StreamID) (*Appender, error) {
	ctx, cancel := context.WithCancel(ctx)
	call, err := c.log.AppendStream(ctx)
	if err != nil {
		cancel()
		return nil, fromStatus(err)
	}
	return &Appender{call: call, stream: stream, cancel: cancel}, nil
}

// Send appends payloads (durable at CloseAndFlush).
func (a *Appender) Send(payloads ...[]byte) error {
	return a.send(&aof2v1.AppendRequest{StreamId: uint64(a.stream), Records: fromPayloads(payloads)})
}

// SendRecords appends records; noWait leaves them out of the durability
// wait at CloseAndFlush (which makes everything durable unless every batch
// was noWait).
func (a *Appender) SendRecords(recs []Record, noWait bool) error {
	return a.send(&aof2v1.AppendRequest{StreamId: uint64(a.stream), Records: toProto(recs), NoWaitDurable: noWait})
}

func (a *Appender) send(req *aof2v1.AppendRequest) error {
	err := a.call.Send(req)
	if err != io.EOF {
		return fromStatus(err)
	}
	// The host ended the call; its status says why.
	defer a.cancel()
	if _, err = a.call.CloseAndRecv(); err == nil {
		err = errEndedEarly
	}
	return fromStatus(err)
}

// CloseAndFlush ends the call and returns once everything sent is durable.
func (a *Appender) CloseAndFlush() (AppendSummary, error) {
	defer a.cancel()
	resp, err := a.call.CloseAndRecv()
	if err != nil {
		return AppendSummary{}, fromStatus(err)
	}
	return AppendSummary{Count: int(resp.GetCount()), LastID: RecordID(resp.GetLastId()), Durable: resp.GetDurable()}, nil
}

// Abort cancels the call. Batches the host received stay appended but may
// not be durable.
func (a *Appender) Abort() { a.cancel() }
