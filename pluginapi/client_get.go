package pluginapi

import (
	"context"
	"fmt"
	"io"

	pb "github.com/aof2/aof2/pluginapi/proto/aof2/backend/v1"
)

func (c *Client) Get(ctx context.Context, req GetRequest) (ObjectRange, io.ReadCloser, error) {
	if err := ValidateKey(req.Key); err != nil {
		return ObjectRange{}, nil, err
	}
	ctx, cancel := context.WithCancel(ctx)
	stream, err := c.rpc.Get(ctx, getToProto(req))
	if err != nil {
		err = errorFromRPC(ctx, err)
		cancel()
		return ObjectRange{}, nil, err
	}
	first, err := stream.Recv()
	if err != nil {
		if err == io.EOF {
			err = fmt.Errorf("%w: Get stream ended without a header", ErrContractViolation)
		} else {
			err = errorFromRPC(ctx, err)
		}
		cancel()
		return ObjectRange{}, nil, err
	}
	h := first.GetHeader()
	if h == nil {
		cancel()
		return ObjectRange{}, nil, fmt.Errorf("%w: Get stream did not start with a header", ErrContractViolation)
	}
	rng := rangeFromProto(h)
	if err := checkRangeHeader(req, rng); err != nil {
		cancel()
		return rng, nil, err
	}
	r := &getReader{
		ctx: ctx, cancel: cancel, stream: stream, key: req.Key,
		next: rng.Offset, end: rng.Offset + rng.Length,
		verifyCRC: rng.Offset == 0 && rng.Length == rng.Info.Size && rng.Info.HasCRC64,
		wantCRC:   rng.Info.CRC64,
	}
	return rng, r, nil
}

// getReader yields a Get stream's bytes, checking every chunk's offset,
// the total length and, for a whole object, the CRC-64/NVME: a stream
// that breaks any of them ends in an error matching ErrChecksum, never in
// io.EOF.
type getReader struct {
	ctx       context.Context
	cancel    context.CancelFunc
	stream    pb.Backend_GetClient
	key       string
	next, end uint64
	cur       []byte
	crc       uint64
	verifyCRC bool
	wantCRC   uint64
	err       error
}

func (r *getReader) Read(p []byte) (int, error) {
	for len(r.cur) == 0 {
		if r.err != nil {
			return 0, r.err
		}
		r.err = r.fill()
	}
	n := copy(p, r.cur)
	r.cur = r.cur[n:]
	return n, nil
}

// fill receives the next chunk into r.cur, or returns the final outcome.
func (r *getReader) fill() error {
	msg, err := r.stream.Recv()
	if err == io.EOF {
		r.cancel()
		if r.next != r.end {
			return &Error{Code: CodeChecksum, Key: r.key, Message: fmt.Sprintf("Get stream ended at offset %d, range ends at %d", r.next, r.end)}
		}
		if r.verifyCRC && r.crc != r.wantCRC {
			return &Error{Code: CodeChecksum, Key: r.key, Message: fmt.Sprintf("received CRC-64/NVME %016x, object has %016x", r.crc, r.wantCRC)}
		}
		return io.EOF
	}
	if err != nil {
		err = errorFromRPC(r.ctx, err)
		r.cancel()
		return err
	}
	c := msg.GetChunk()
	switch {
	case c == nil:
		err = fmt.Errorf("%w: a second header in a Get stream", ErrContractViolation)
	case c.GetOffset() != r.next:
		err = &Error{Code: CodeChecksum, Key: r.key, Message: fmt.Sprintf("chunk at offset %d, expected %d", c.GetOffset(), r.next)}
	case uint64(len(c.GetData())) > r.end-r.next:
		err = &Error{Code: CodeChecksum, Key: r.key, Message: fmt.Sprintf("stream carries bytes past the end of the range (%d)", r.end)}
	}
	if err != nil {
		r.cancel()
		return err
	}
	r.cur = c.GetData()
	r.next += uint64(len(r.cur))
	if r.verifyCRC {
		r.crc = UpdateCRC64(r.crc, r.cur)
	}
	return nil
}

func (r *getReader) Close() error {
	r.cancel()
	if r.err == nil {
		r.err = fmt.Errorf("read of %q: reader closed", r.key)
	}
	return nil
}
