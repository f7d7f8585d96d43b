package tier1

import (
	"errors"
	"fmt"

	"github.com/aof2/aof2/core/types"
)

// Sentinels. Errors returned by this package carry context and wrap one of
// these (or a types sentinel); callers branch with errors.Is.
var (
	// ErrCorruptArtifact: an artifact's bytes fail a structural or checksum
	// check (seek table, zstd frame, frame checksum, embedded header or
	// footer). It also matches types.ErrCorrupt.
	ErrCorruptArtifact = errors.New("tier1: corrupt artifact")
	// ErrChecksumMismatch: bytes decompressed from an artifact do not hash
	// to the expected segment_crc64 (the footer's, and the one the caller
	// expects). Such a segment is never served or renamed into place. It
	// also matches types.ErrCorrupt.
	ErrChecksumMismatch = errors.New("tier1: segment checksum mismatch")
	// ErrSourceCorrupt: the sealed tier-0 segment given to compression fails
	// its own checks (footer, segment_crc64); no artifact is written. It
	// also matches types.ErrCorrupt.
	ErrSourceCorrupt = errors.New("tier1: source segment corrupt")
	// ErrNotCached: the cache holds no artifact for the segment.
	ErrNotCached = errors.New("tier1: artifact not cached")
	// ErrPinned: the artifact is pinned (or open) and cannot be removed.
	ErrPinned = errors.New("tier1: artifact pinned")
	// ErrInProgress: a job for the same segment is already running.
	ErrInProgress = errors.New("tier1: job already in progress for segment")
	// ErrBusy: the worker pool's queue is full; the non-blocking submit
	// calls return it instead of waiting (tier 0 never waits on tier 1).
	ErrBusy = errors.New("tier1: worker queue full")
	// ErrClosed: the cache is closed. It is types.ErrClosed.
	ErrClosed = types.ErrClosed
)

// CorruptArtifactError says where an artifact is damaged.
type CorruptArtifactError struct {
	Path   string // artifact path or source name
	Frame  int64  // frame index, -1 for the seek table or the whole file
	Reason string
}

func (e *CorruptArtifactError) Error() string {
	if e.Frame < 0 {
		return fmt.Sprintf("tier1: corrupt artifact %s: %s", e.Path, e.Reason)
	}
	return fmt.Sprintf("tier1: corrupt artifact %s frame %d: %s", e.Path, e.Frame, e.Reason)
}

// Is matches ErrCorruptArtifact and types.ErrCorrupt.
func (e *CorruptArtifactError) Is(target error) bool {
	return target == ErrCorruptArtifact || target == types.ErrCorrupt
}

// ChecksumMismatchError reports a segment whose bytes, rebuilt from an
// artifact, do not match the segment_crc64 they must have.
type ChecksumMismatchError struct {
	Stream  types.StreamID
	Segment types.SegmentID
	Path    string
	Want    uint64 // expected segment_crc64
	Got     uint64 // CRC-64/NVME of the rebuilt [0, durable_bytes)
	Reason  string // which expectation failed
}

func (e *ChecksumMismatchError) Error() string {
	return fmt.Sprintf("tier1: stream %d segment %d (%s): segment_crc64 %#x, want %#x: %s",
		e.Stream, e.Segment, e.Path, e.Got, e.Want, e.Reason)
}

// Is matches ErrChecksumMismatch and types.ErrCorrupt.
func (e *ChecksumMismatchError) Is(target error) bool {
	return target == ErrChecksumMismatch || target == types.ErrCorrupt
}

// sourceCorrupt wraps a problem with a source segment.
type sourceCorruptError struct {
	path   string
	reason string
}

func (e *sourceCorruptError) Error() string {
	return fmt.Sprintf("tier1: source segment %s: %s", e.path, e.reason)
}

func (e *sourceCorruptError) Is(target error) bool {
	return target == ErrSourceCorrupt || target == types.ErrCorrupt
}

func corrupt(path string, frame int64, format string, args ...any) error {
	return &CorruptArtifactError{Path: path, Frame: frame, Reason: fmt.Sprintf(format, args...)}
}
