package tier1

import (
	"encoding/binary"
	"errors"
	"io"
	"testing"

	"github.com/stretchr/testify/require"
)

// footerOnly is an artifact of the given size whose bytes are zeros but
// for a seek-table footer at the end; it records the largest read asked
// of it (what the reader allocated for one read).
type footerOnly struct {
	size    int64
	foot    [seekFooterSize]byte
	largest int
}

func (r *footerOnly) ReadAt(p []byte, off int64) (int, error) {
	r.largest = max(r.largest, len(p))
	if off >= r.size {
		return 0, io.EOF
	}
	n := int(min(int64(len(p)), r.size-off))
	clear(p[:n])
	if start := r.size - seekFooterSize; off+int64(n) > start {
		from := max(start, off)
		copy(p[from-off:n], r.foot[from-start:])
	}
	return n, nil
}

// TestSeekTableFrameCountBoundsAllocation: the number of frames in a seek
// table's footer sizes the table the reader reads; it is checked against
// the most frames a segment has before anything is allocated from it, not
// only against the artifact's size (which, for a tier-2 object, is what
// its metadata claims).
func TestSeekTableFrameCountBoundsAllocation(t *testing.T) {
	r := &footerOnly{size: 1 << 40}
	binary.LittleEndian.PutUint32(r.foot[0:], 1<<24) // 192 MiB of table
	r.foot[4] = checksumFlag
	binary.LittleEndian.PutUint32(r.foot[5:], seekableMagic)
	_, err := OpenReaderAt(r, r.size, "huge-table")
	require.True(t, errors.Is(err, ErrCorruptArtifact), "%v", err)
	require.LessOrEqual(t, r.largest, skippableHeader+maxFrames*seekEntrySize+seekFooterSize,
		"read (and allocated) %d bytes for the seek table of a corrupt footer", r.largest)
}

// TestSeekTableFrameSizeBoundsAllocation: a frame's compressed size in
// the seek table (a u32) must be one a frame of its decompressed size can
// have before a read of the frame allocates it.
func TestSeekTableFrameSizeBoundsAllocation(t *testing.T) {
	const compressed = 1 << 30
	table := make([]byte, skippableHeader+seekEntrySize+seekFooterSize)
	binary.LittleEndian.PutUint32(table[0:], seekTableMagic)
	binary.LittleEndian.PutUint32(table[4:], seekEntrySize+seekFooterSize)
	binary.LittleEndian.PutUint32(table[8:], compressed)
	binary.LittleEndian.PutUint32(table[12:], 64<<10)
	foot := table[skippableHeader+seekEntrySize:]
	binary.LittleEndian.PutUint32(foot[0:], 1)
	foot[4] = checksumFlag
	binary.LittleEndian.PutUint32(foot[5:], seekableMagic)
	r := &tableOnly{size: compressed + int64(len(table)), table: table}
	a, err := OpenReaderAt(r, r.size, "huge-frame")
	if err == nil {
		_, err = a.ReadAt(make([]byte, 1), 0)
	}
	require.True(t, errors.Is(err, ErrCorruptArtifact), "%v", err)
	require.LessOrEqual(t, r.largest, 1<<20, "read (and allocated) %d bytes for one frame of 64 KiB", r.largest)
}

// tableOnly is an artifact of the given size: zeros, then table.
type tableOnly struct {
	size    int64
	table   []byte
	largest int
}

func (r *tableOnly) ReadAt(p []byte, off int64) (int, error) {
	r.largest = max(r.largest, len(p))
	if off >= r.size {
		return 0, io.EOF
	}
	n := int(min(int64(len(p)), r.size-off))
	clear(p[:n])
	if start := r.size - int64(len(r.table)); off+int64(n) > start {
		from := max(start, off)
		copy(p[from-off:n], r.table[from-start:])
	}
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}
