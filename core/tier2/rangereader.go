package tier2

import (
	"context"
	"fmt"
	"io"
	"sync/atomic"

	"github.com/aof2/aof2/core/types"
	"github.com/aof2/aof2/pluginapi"
)

// RangeReader reads byte ranges of one object version with ranged Gets,
// for cold reads: a seekable-zstd reader over it fetches the seek table
// and then only the frames a read needs. It implements io.ReaderAt (wrap
// it in io.NewSectionReader for an io.ReadSeeker) and is safe for
// concurrent use. Every read is retried like any operation and counted.
//
// Ranges cannot be checked against the whole-object checksum; each read
// is checked for its exact length and pinned to the version opened (by
// etag), and the zstd frames carry their own checksums.
type RangeReader struct {
	s       *Store
	ctx     context.Context
	key     string
	info    pluginapi.ObjectInfo
	ifMatch bool

	fetched  atomic.Uint64
	requests atomic.Uint64
}

var _ io.ReaderAt = (*RangeReader)(nil)

// OpenRange describes the object (one Head) and returns a reader of it.
// ctx bounds every ReadAt (io.ReaderAt takes none); ReadAtContext takes
// its own. The backend must advertise RangeGet, else reads beyond a
// whole-object read fail with pluginapi.ErrUnimplemented: hydrate then.
func (s *Store) OpenRange(ctx context.Context, key string, expect Expect) (*RangeReader, error) {
	info, err := s.Stat(ctx, key)
	if err != nil {
		return nil, err
	}
	if err := checkETag(key, expect, info); err != nil {
		return nil, fmt.Errorf("tier2 range_read %q: %w", key, err)
	}
	if expect.HasSize && info.Size != expect.Size {
		return nil, &ChecksumError{Key: key, What: "range open", Detail: fmt.Sprintf("object is %d bytes, expected %d", info.Size, expect.Size)}
	}
	caps, err := s.caps(ctx)
	if err != nil {
		return nil, err
	}
	return &RangeReader{s: s, ctx: ctx, key: key, info: info, ifMatch: caps.IfMatch}, nil
}

// OpenSegmentRange opens a segment artifact for range reads.
func (s *Store) OpenSegmentRange(ctx context.Context, k types.SegmentKey, expect Expect) (*RangeReader, error) {
	return s.OpenRange(ctx, s.layout.SegmentObjectKey(k), expect)
}

// Size is the object's size.
func (r *RangeReader) Size() int64 { return int64(r.info.Size) }

// Info describes the object version read.
func (r *RangeReader) Info() pluginapi.ObjectInfo { return r.info }

// BytesFetched is how many bytes the reader's Gets returned (retried
// reads included): what a cold read cost.
func (r *RangeReader) BytesFetched() uint64 { return r.fetched.Load() }

// Requests is how many Get requests the reader made.
func (r *RangeReader) Requests() uint64 { return r.requests.Load() }

// ReadAt implements io.ReaderAt under the context given to OpenRange.
func (r *RangeReader) ReadAt(p []byte, off int64) (int, error) {
	return r.ReadAtContext(r.ctx, p, off)
}

// ReadAtContext reads len(p) bytes at off; fewer only at the end of the
// object, with io.EOF.
func (r *RangeReader) ReadAtContext(ctx context.Context, p []byte, off int64) (int, error) {
	size := int64(r.info.Size)
	if off < 0 {
		return 0, fmt.Errorf("tier2 range_read %q: negative offset %d: %w", r.key, off, pluginapi.ErrInvalidArgument)
	}
	if off >= size {
		return 0, io.EOF
	}
	want := min(int64(len(p)), size-off)
	if want == 0 {
		return 0, nil
	}
	req := pluginapi.GetRequest{Key: r.key, Offset: uint64(off), Length: uint64(want)}
	if r.ifMatch {
		req.IfMatch = r.info.ETag
	}
	var n int
	err := r.s.run(ctx, OpRangeRead, r.key, func(ctx context.Context) error {
		n = 0
		return r.s.request(ctx, ClassGet, func(ctx context.Context) error {
			r.requests.Add(1)
			rng, rc, err := r.s.b.Get(ctx, req)
			if err != nil {
				return err
			}
			defer func() { _ = rc.Close() }()
			if rng.Info.ETag != r.info.ETag {
				return &pluginapi.Error{Code: pluginapi.CodePrecondition, Key: r.key, Message: fmt.Sprintf("object rewritten: etag %q, opened %q", rng.Info.ETag, r.info.ETag)}
			}
			n, err = io.ReadFull(rc, p[:want])
			r.fetched.Add(uint64(n))
			r.s.m.downloaded(uint64(n))
			if err != nil {
				return asChecksum(r.key, "range read", rangeErr(r.key, err, n, want))
			}
			if rng.Length != uint64(want) {
				return &ChecksumError{Key: r.key, What: "range read", Detail: fmt.Sprintf("served a range of %d bytes, asked for %d", rng.Length, want)}
			}
			return nil
		})
	})
	if err != nil {
		r.s.fetchFailed(append(refArgs(r.s.layout, r.key), "key", r.key, "offset", off, "length", want, "error", err.Error()), err)
		return 0, err
	}
	r.s.logs.Succeed("tier2_fetch_failed", "")
	if want < int64(len(p)) {
		return n, io.EOF
	}
	return n, nil
}

// rangeErr turns a short range into a checksum error (the stream ended
// early); backend errors pass through.
func rangeErr(key string, err error, n int, want int64) error {
	if err == io.EOF || err == io.ErrUnexpectedEOF {
		return &ChecksumError{Key: key, What: "range read", Detail: fmt.Sprintf("stream ended after %d of %d bytes", n, want)}
	}
	return err
}
