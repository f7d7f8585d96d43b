package client

import (
	"context"
	"errors"
	"iter"
	"sync"

	"google.golang.org/grpc"

	aof2v1 "github.com/aof2/aof2/api/proto/aof2/v1"
)

var errTailClosed = errors.New("aof2 client: tail closed")

// Tailer follows a stream's durable records. Not safe for concurrent use,
// except Close.
type Tailer struct {
	cancel  context.CancelFunc
	batches <-chan tailBatch
	done    chan struct{} // closed when the receiver has stopped
	buf     []Record
	err     error // sticky, once the call ended
	once    sync.Once
}

type tailBatch struct {
	recs []Record
	err  error
}

// Tail follows stream from a position: Next returns each durable record
// and waits for new ones. The stream must exist (an unknown one fails
// here). ctx bounds the whole tail; Close ends it.
func (c *Client) Tail(ctx context.Context, stream StreamID, from Position) (*Tailer, error) {
	ctx, cancel := context.WithCancel(ctx)
	call, err := c.log.Tail(ctx, &aof2v1.TailRequest{StreamId: uint64(stream), Start: from.p})
	if err == nil {
		// The host sends headers once the tail is open, and a status
		// instead when it cannot be.
		var md map[string][]string
		if md, err = call.Header(); err == nil && md == nil {
			_, err = call.Recv()
		}
	}
	if err != nil {
		cancel()
		return nil, fromStatus(err)
	}
	batches := make(chan tailBatch, 1)
	t := &Tailer{cancel: cancel, batches: batches, done: make(chan struct{})}
	go t.receive(ctx, call, batches)
	return t, nil
}

// receive runs on its own goroutine until the call ends or Close: it
// lets Next take its own context while a Recv is blocked.
func (t *Tailer) receive(ctx context.Context, call grpc.ServerStreamingClient[aof2v1.TailResponse], out chan<- tailBatch) {
	defer close(t.done)
	defer close(out)
	for {
		msg, err := call.Recv()
		b := tailBatch{err: fromStatus(err)}
		if err == nil {
			b.recs = make([]Record, len(msg.GetRecords()))
			for i, r := range msg.GetRecords() {
				b.recs[i] = fromStored(r)
			}
		}
		select {
		case out <- b:
		case <-ctx.Done():
			return
		}
		if err != nil {
			return
		}
	}
}

// Next returns the next durable record, waiting until one is appended or
// ctx is done. After the tail ended (Close, the host stopping, an error)
// it keeps returning that error; a host that ends the tail cleanly gives
// io.EOF.
func (t *Tailer) Next(ctx context.Context) (Record, error) {
	for len(t.buf) == 0 {
		if t.err != nil {
			return Record{}, t.err
		}
		select {
		case b, ok := <-t.batches:
			if !ok {
				t.err = errTailClosed
				continue
			}
			t.buf, t.err = b.recs, b.err
		case <-ctx.Done():
			return Record{}, ctx.Err()
		}
	}
	r := t.buf[0]
	t.buf = t.buf[1:]
	return r, nil
}

// All yields records until ctx is done or the tail ends, then the error
// (once). Breaking out of the loop leaves the tailer usable.
func (t *Tailer) All(ctx context.Context) iter.Seq2[Record, error] {
	return func(yield func(Record, error) bool) {
		for {
			r, err := t.Next(ctx)
			if err != nil {
				yield(Record{}, err)
				return
			}
			if !yield(r, nil) {
				return
			}
		}
	}
}

// Close ends the tail and waits for its receiver to stop.
func (t *Tailer) Close() {
	t.once.Do(t.cancel)
	<-t.done
}
