package tier1

import (
	"context"
	"errors"
	"fmt"
	"io"
	"runtime"
	"sync"
	"time"

	seekable "github.com/SaveTheRbtz/zstd-seekable-format-go/pkg"
	"github.com/klauspost/compress/zstd"

	"github.com/aof2/aof2/core/checksum"
	"github.com/aof2/aof2/core/segment"
	"github.com/aof2/aof2/core/types"
	"github.com/aof2/aof2/core/vfs"
)

// encoders holds one zstd encoder per level. EncodeAll is safe for
// concurrent use and keeps up to GOMAXPROCS internal states, so the pools
// never build more encoder state than there are cores.
var encoders struct {
	mu sync.Mutex
	m  map[Level]*zstd.Encoder
}

func encoderFor(l Level) (*zstd.Encoder, error) {
	encoders.mu.Lock()
	defer encoders.mu.Unlock()
	if e, ok := encoders.m[l]; ok {
		return e, nil
	}
	e, err := zstd.NewWriter(nil,
		zstd.WithEncoderLevel(l.zstd()),
		zstd.WithEncoderCRC(true), // every frame carries its content checksum
		zstd.WithEncoderConcurrency(runtime.GOMAXPROCS(0)),
		zstd.WithWindowSize(MaxFrameSize),
	)
	if err != nil {
		return nil, fmt.Errorf("tier1: zstd encoder: %w", err)
	}
	if encoders.m == nil {
		encoders.m = map[Level]*zstd.Encoder{}
	}
	encoders.m[l] = e
	return e, nil
}

// Source is a sealed tier-0 segment to compress.
type Source struct {
	Stream types.StreamID
	// Path is the segment file.
	Path string
	// Segment, when non-zero, must match the segment's header.
	Segment types.SegmentID
}

// CompressResult describes a written artifact.
type CompressResult struct {
	Key             types.SegmentKey
	Path            string // the artifact
	Capacity        int64  // size of the original segment file
	DurableBytes    uint64 // footer durable_bytes
	RecordCount     uint64
	SegmentCRC      uint64 // footer segment_crc64, verified against the source bytes
	CompressedBytes int64  // artifact size
	ArtifactCRC     uint64 // CRC-64/NVME of the artifact file (tier-2 upload metadata)
	Frames          int64
	Duration        time.Duration
}

// Ratio returns original bytes per artifact byte.
func (r CompressResult) Ratio() float64 {
	if r.CompressedBytes == 0 {
		return 0
	}
	return float64(r.Capacity) / float64(r.CompressedBytes)
}

// CompressSegment compresses the sealed segment src into a seekable-zstd
// artifact at dst, crash-safely (dst.tmp, fsync, rename, directory fsync).
// The whole segment file is compressed verbatim, so hydration rebuilds it
// byte for byte. The source is checked as it is read: its header and
// footer must decode and agree, and the CRC-64/NVME of [0, durable_bytes)
// must equal the footer's segment_crc64, or ErrSourceCorrupt is returned
// and nothing is left at dst. ctx is checked between frames.
func CompressSegment(ctx context.Context, fsys vfs.FS, src Source, dst string, o Options) (res CompressResult, err error) {
	start := time.Now()
	if o, err = o.withDefaults(); err != nil {
		return res, err
	}
	f, err := fsys.Open(src.Path)
	if err != nil {
		return res, fmt.Errorf("tier1: open source %s: %w", src.Path, err)
	}
	defer f.Close()
	hdr, foot, size, err := inspectSource(f, src)
	if err != nil {
		return res, err
	}
	enc, err := encoderFor(o.Level)
	if err != nil {
		return res, err
	}
	senc, err := seekable.NewEncoder(enc)
	if err != nil {
		return res, fmt.Errorf("tier1: seekable encoder: %w", err)
	}
	out, err := createAtomic(fsys, dst)
	if err != nil {
		return res, err
	}
	defer func() {
		if err != nil {
			out.abort()
		}
	}()
	var (
		buf    = make([]byte, o.FrameSize)
		crc    uint64 // segment_crc64 of the source as read
		outCRC uint64
		woff   int64
		frames int64
	)
	durable := int64(foot.DurableBytes)
	for off := int64(0); off < size; off += int64(o.FrameSize) {
		if err := ctx.Err(); err != nil {
			return res, fmt.Errorf("tier1: compress %s: %w", src.Path, err)
		}
		chunk := buf[:min(int64(o.FrameSize), size-off)]
		if n, err := f.ReadAt(chunk, off); n != len(chunk) {
			return res, fmt.Errorf("tier1: read source %s at %d: %w", src.Path, off, shortRead(err))
		}
		if off < durable {
			crc = checksum.Update(crc, chunk[:min(int64(len(chunk)), durable-off)])
		}
		frame, err := senc.Encode(chunk)
		if err != nil {
			return res, fmt.Errorf("tier1: encode frame %d of %s: %w", frames, src.Path, err)
		}
		if err := out.writeAt(frame, woff); err != nil {
			return res, err
		}
		outCRC = checksum.Update(outCRC, frame)
		woff += int64(len(frame))
		frames++
	}
	if crc != foot.SegmentCRC {
		return res, &sourceCorruptError{path: src.Path, reason: fmt.Sprintf("segment_crc64 of the bytes read is %#x, footer says %#x", crc, foot.SegmentCRC)}
	}
	table, err := senc.EndStream()
	if err != nil {
		return res, fmt.Errorf("tier1: seek table of %s: %w", src.Path, err)
	}
	if err := out.writeAt(table, woff); err != nil {
		return res, err
	}
	outCRC = checksum.Update(outCRC, table)
	woff += int64(len(table))
	if err := out.commit(); err != nil {
		return res, err
	}
	return CompressResult{
		Key:             types.SegmentKey{Stream: hdr.StreamID, Segment: hdr.SegmentID},
		Path:            dst,
		Capacity:        size,
		DurableBytes:    foot.DurableBytes,
		RecordCount:     foot.RecordCount,
		SegmentCRC:      foot.SegmentCRC,
		CompressedBytes: woff,
		ArtifactCRC:     outCRC,
		Frames:          frames,
		Duration:        time.Since(start),
	}, nil
}

// inspectSource reads and cross-checks a source segment's header and footer.
func inspectSource(f vfs.File, src Source) (segment.Header, segment.Footer, int64, error) {
	bad := func(format string, args ...any) (segment.Header, segment.Footer, int64, error) {
		return segment.Header{}, segment.Footer{}, 0, &sourceCorruptError{path: src.Path, reason: fmt.Sprintf(format, args...)}
	}
	size, err := f.Size()
	if err != nil {
		return segment.Header{}, segment.Footer{}, 0, fmt.Errorf("tier1: size of %s: %w", src.Path, err)
	}
	if !segment.ValidCapacity(size) {
		return bad("size %d is not a segment capacity", size)
	}
	var hb [segment.HeaderSize]byte
	if n, err := f.ReadAt(hb[:], 0); n != len(hb) {
		return segment.Header{}, segment.Footer{}, 0, fmt.Errorf("tier1: read header of %s: %w", src.Path, shortRead(err))
	}
	hdr, err := segment.DecodeHeader(hb[:])
	if err != nil {
		return bad("%v", err)
	}
	var fb [segment.FooterSize]byte
	if n, err := f.ReadAt(fb[:], segment.DataEnd(size)); n != len(fb) {
		return segment.Header{}, segment.Footer{}, 0, fmt.Errorf("tier1: read footer of %s: %w", src.Path, shortRead(err))
	}
	foot, err := segment.DecodeFooter(fb[:], size)
	if err != nil {
		return bad("not sealed: %v", err)
	}
	switch {
	case hdr.StreamID != src.Stream:
		return bad("header names stream %d, want %d", hdr.StreamID, src.Stream)
	case src.Segment != 0 && hdr.SegmentID != src.Segment:
		return bad("header names segment %d, want %d", hdr.SegmentID, src.Segment)
	case foot.SegmentID != hdr.SegmentID || foot.BaseRecord != hdr.BaseRecord:
		return bad("footer segment %d / base_record %d disagree with header %d / %d", foot.SegmentID, foot.BaseRecord, hdr.SegmentID, hdr.BaseRecord)
	}
	return hdr, foot, size, nil
}

func shortRead(err error) error {
	if err == nil || errors.Is(err, io.EOF) {
		return io.ErrUnexpectedEOF
	}
	return err
}
