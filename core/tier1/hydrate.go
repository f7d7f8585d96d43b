package tier1

import (
	"context"
	"fmt"
	"time"

	"github.com/aof2/aof2/core/checksum"
	"github.com/aof2/aof2/core/segment"
	"github.com/aof2/aof2/core/types"
	"github.com/aof2/aof2/core/vfs"
)

// Expected is what the caller (the manifest) knows about an artifact.
type Expected struct {
	Key types.SegmentKey
	// SegmentCRC is the segment_crc64 recorded at seal; always checked.
	SegmentCRC uint64
	// Capacity is the original segment size; 0 skips the check.
	Capacity int64
	// CompressedBytes is the artifact size recorded at compression; 0
	// skips the check.
	CompressedBytes int64
	// Uploaded says the artifact is already safe in tier 2 (used by Open
	// to seed the eviction rule).
	Uploaded bool
}

// HydrateResult describes a rebuilt tier-0 segment file.
type HydrateResult struct {
	Key          types.SegmentKey
	Path         string // the rebuilt segment file
	Capacity     int64
	DurableBytes uint64
	RecordCount  uint64
	SegmentCRC   uint64
	Stats        ReadStats // what was read from the artifact's source
	Duration     time.Duration
}

// checkIdentity compares an artifact's embedded header and footer with the
// expectation. It reads the first and the last frame only.
func checkIdentity(a *Artifact, exp Expected) (segment.Header, segment.Footer, error) {
	mismatch := func(got uint64, reason string) error {
		return &ChecksumMismatchError{Stream: exp.Key.Stream, Segment: exp.Key.Segment, Path: a.name, Want: exp.SegmentCRC, Got: got, Reason: reason}
	}
	if exp.Capacity != 0 && a.Size() != exp.Capacity {
		return segment.Header{}, segment.Footer{}, corrupt(a.name, -1, "holds %d bytes, segment capacity is %d", a.Size(), exp.Capacity)
	}
	if exp.CompressedBytes != 0 && a.CompressedSize() != exp.CompressedBytes {
		return segment.Header{}, segment.Footer{}, corrupt(a.name, -1, "is %d bytes, %d were written", a.CompressedSize(), exp.CompressedBytes)
	}
	foot, err := a.Footer()
	if err != nil {
		return segment.Header{}, segment.Footer{}, err
	}
	hdr, err := a.Header()
	if err != nil {
		return segment.Header{}, segment.Footer{}, err
	}
	switch {
	case hdr.StreamID != exp.Key.Stream || hdr.SegmentID != exp.Key.Segment:
		return hdr, foot, corrupt(a.name, 0, "holds stream %d segment %d, want %s", hdr.StreamID, hdr.SegmentID, exp.Key)
	case foot.SegmentID != hdr.SegmentID || foot.BaseRecord != hdr.BaseRecord:
		return hdr, foot, corrupt(a.name, a.frames-1, "footer segment %d / base_record %d disagree with header %d / %d",
			foot.SegmentID, foot.BaseRecord, hdr.SegmentID, hdr.BaseRecord)
	case foot.SegmentCRC != exp.SegmentCRC:
		return hdr, foot, mismatch(foot.SegmentCRC, "the artifact's footer disagrees with the expected segment_crc64")
	}
	return hdr, foot, nil
}

// verifyAll decompresses every frame and checks segment_crc64 without
// writing anything.
func verifyAll(ctx context.Context, a *Artifact, exp Expected) error {
	_, foot, err := checkIdentity(a, exp)
	if err != nil {
		return err
	}
	crc, err := walkFrames(ctx, a, int64(foot.DurableBytes), nil)
	if err != nil {
		return err
	}
	if crc != foot.SegmentCRC {
		return &ChecksumMismatchError{Stream: exp.Key.Stream, Segment: exp.Key.Segment, Path: a.name, Want: foot.SegmentCRC, Got: crc,
			Reason: "decompressed bytes do not match segment_crc64"}
	}
	return nil
}

// walkFrames decodes every frame in order, returns the CRC-64/NVME of
// [0, durable) and hands each frame to fn.
func walkFrames(ctx context.Context, a *Artifact, durable int64, fn func(off int64, b []byte) error) (uint64, error) {
	var crc uint64
	var off int64
	for i := range a.frames {
		if err := ctx.Err(); err != nil {
			return 0, fmt.Errorf("tier1: %s: %w", a.name, err)
		}
		b, err := a.frame(i)
		if err != nil {
			return 0, err
		}
		if off < durable {
			crc = checksum.Update(crc, b[:min(int64(len(b)), durable-off)])
		}
		if fn != nil {
			if err := fn(off, b); err != nil {
				return 0, err
			}
		}
		off += int64(len(b))
	}
	return crc, nil
}

// Hydrate rebuilds the tier-0 segment file held in a at dest, crash-safely
// (dest.tmp sized to the segment's capacity and preallocated but for the
// unused room before the footer, fsync, rename,
// directory fsync). The CRC-64/NVME of the rebuilt [0, durable_bytes)
// must equal both the footer's segment_crc64 and exp.SegmentCRC; on any
// mismatch a *ChecksumMismatchError (ErrChecksumMismatch) is returned and
// dest is never created. Frames that are all zeros are not written: the
// preallocated file already reads as zeros there.
func Hydrate(ctx context.Context, fsys vfs.FS, a *Artifact, exp Expected, dest string) (HydrateResult, error) {
	start := time.Now()
	before := a.Stats()
	_, foot, err := checkIdentity(a, exp)
	if err != nil {
		return HydrateResult{}, err
	}
	out, err := createAtomic(fsys, dest)
	if err != nil {
		return HydrateResult{}, err
	}
	// The zeros between the last record and the footer stay a hole, as
	// in a segment sealed here (segment.SealedUnused).
	lo, hi := segment.SealedUnused(a.Size(), foot.DurableBytes)
	if err := out.allocateExcept(a.Size(), lo, hi); err != nil {
		out.abort()
		return HydrateResult{}, err
	}
	crc, err := walkFrames(ctx, a, int64(foot.DurableBytes), func(off int64, b []byte) error {
		return writeNonZero(out, b, off, lo, hi)
	})
	if err != nil {
		out.abort()
		return HydrateResult{}, err
	}
	if crc != foot.SegmentCRC {
		out.abort()
		return HydrateResult{}, &ChecksumMismatchError{Stream: exp.Key.Stream, Segment: exp.Key.Segment, Path: a.name, Want: foot.SegmentCRC, Got: crc,
			Reason: "rebuilt segment does not match segment_crc64"}
	}
	if err := out.commit(); err != nil {
		return HydrateResult{}, err
	}
	after := a.Stats()
	return HydrateResult{
		Key:          exp.Key,
		Path:         dest,
		Capacity:     a.Size(),
		DurableBytes: foot.DurableBytes,
		RecordCount:  foot.RecordCount,
		SegmentCRC:   foot.SegmentCRC,
		Stats: ReadStats{
			FramesFetched:     after.FramesFetched - before.FramesFetched,
			FrameBytes:        after.FrameBytes - before.FrameBytes,
			TableBytes:        after.TableBytes,
			DecompressedBytes: after.DecompressedBytes - before.DecompressedBytes,
		},
		Duration: time.Since(start),
	}, nil
}

// writeNonZero writes b at off, leaving out the part inside the hole
// [lo, hi) when it is all zeros, and the whole of b when it is.
func writeNonZero(out *atomicFile, b []byte, off, lo, hi int64) error {
	end := off + int64(len(b))
	if segment.IsZero(b) {
		return nil
	}
	if hi <= lo || end <= lo || off >= hi {
		return out.writeAt(b, off)
	}
	in := b[max(lo-off, 0) : min(hi, end)-off]
	if !segment.IsZero(in) {
		return out.writeAt(b, off)
	}
	if lo > off {
		if err := out.writeAt(b[:lo-off], off); err != nil {
			return err
		}
	}
	if end > hi {
		return out.writeAt(b[hi-off:], hi)
	}
	return nil
}

// VerifyArtifact decompresses every frame of a (an artifact from any
// source: the warm file, a downloaded tier-2 object) and checks its header,
// footer and the CRC-64/NVME of [0, durable_bytes) against exp. Nothing is
// written. A mismatch is a *ChecksumMismatchError or a *types.CorruptError.
func VerifyArtifact(ctx context.Context, a *Artifact, exp Expected) error {
	return verifyAll(ctx, a, exp)
}
