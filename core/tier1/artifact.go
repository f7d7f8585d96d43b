package tier1

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"sync"

	seekable "github.com/SaveTheRbtz/zstd-seekable-format-go/pkg"
	"github.com/cespare/xxhash/v2"
	"github.com/klauspost/compress/zstd"

	"github.com/aof2/aof2/core/segment"
)

// Seek-table framing (zstd seekable format v0.1).
const (
	skippableHeader  = 8          // magic u32 + frame size u32
	seekFooterSize   = 9          // number_of_frames u32, descriptor u8, magic u32
	seekEntrySize    = 12         // compressed u32, decompressed u32, xxh64 low 32 bits
	seekTableMagic   = 0x184D2A5E // skippable frame magic + tag 0xE
	seekableMagic    = 0x8F92EAB1
	checksumFlag     = 1 << 7
	reservedBitsMask = 0x7C
)

// MaxFrameSize is the largest decompressed frame an artifact may hold; it
// bounds the memory one frame read can allocate whatever the input says.
const MaxFrameSize = 16 << 20

// maxFrames is the most frames an artifact holds: the largest segment cut
// into frames of the smallest frame size.
const maxFrames = segment.MaxCapacity / MinFrameSize

// compressBound is more than the largest zstd frame of n bytes (zstd's
// own bound: n + n/256 and a little more for small inputs, plus the frame
// header and checksum). A frame is read whole into memory, so its
// compressed size is held to it: the u32 in the seek table does not
// choose an allocation of up to 4 GiB.
func compressBound(n int64) int64 { return n + n>>8 + 64<<10 }

// decoder is shared: DecodeAll is safe for concurrent use. Frame sizes are
// checked against the seek table before decoding, and the decoder refuses
// to allocate beyond the largest legal frame.
var decoder = func() *zstd.Decoder {
	d, err := zstd.NewReader(nil,
		zstd.WithDecoderConcurrency(0),
		zstd.WithDecoderMaxMemory(MaxFrameSize),
		zstd.WithDecoderMaxWindow(MaxFrameSize),
	)
	if err != nil {
		panic(err)
	}
	return d
}()

// ReadStats counts what an Artifact fetched from its source. For a remote
// source every fetch is one range read.
type ReadStats struct {
	FramesFetched     int64 // frames read from the source and decompressed
	FrameBytes        int64 // compressed frame bytes read
	TableBytes        int64 // seek-table bytes read (once, at open)
	DecompressedBytes int64 // bytes produced by decompression
}

// Fetched returns every byte read from the source.
func (s ReadStats) Fetched() int64 { return s.FrameBytes + s.TableBytes }

// Artifact gives random access to the original segment bytes held in a
// seekable-zstd artifact, decompressing only the frames a read touches.
// Every frame is verified (zstd content checksum and the seek table's
// xxhash) before its bytes are returned. An Artifact is safe for concurrent
// use; it keeps the last decoded frame (and the final one, which holds the
// segment footer) so small sequential reads do not fetch a frame twice.
type Artifact struct {
	src     io.ReaderAt
	name    string
	size    int64 // compressed size
	table   *seekable.SeekTable
	frames  int64
	rawSize int64 // decompressed size
	onClose func() error

	mu        sync.Mutex
	closed    bool
	lastFrame int64
	lastBuf   []byte
	tailBuf   []byte // the final frame (segment footer), kept apart: every check reads it
	stats     ReadStats
}

// OpenReaderAt opens an artifact held by any io.ReaderAt of the given
// size: a local file, or a range-reading view of a tier-2 object. It reads
// and validates the seek table only. name is used in errors.
func OpenReaderAt(r io.ReaderAt, size int64, name string) (*Artifact, error) {
	a := &Artifact{src: r, name: name, size: size, lastFrame: -1}
	if err := a.readTable(); err != nil {
		return nil, err
	}
	return a, nil
}

func (a *Artifact) readTable() error {
	if a.size < skippableHeader+seekFooterSize {
		return corrupt(a.name, -1, "%d bytes is too short for a seek table", a.size)
	}
	var foot [seekFooterSize]byte
	if err := a.readFull(foot[:], a.size-seekFooterSize, -1); err != nil {
		return err
	}
	n := int64(binary.LittleEndian.Uint32(foot[0:]))
	desc := foot[4]
	switch {
	case binary.LittleEndian.Uint32(foot[5:]) != seekableMagic:
		return corrupt(a.name, -1, "no seekable magic at the end")
	case desc&reservedBitsMask != 0:
		return corrupt(a.name, -1, "seek table descriptor %#x has reserved bits set", desc)
	case desc&checksumFlag == 0:
		return corrupt(a.name, -1, "seek table has no frame checksums")
	case n == 0:
		return corrupt(a.name, -1, "seek table lists no frames")
	case n > maxFrames:
		// Checked before the table is read: its length comes from n,
		// and the artifact's size (a file's, or a tier-2 object's as
		// its metadata says) bounds nothing useful.
		return corrupt(a.name, -1, "seek table lists %d frames, more than the %d a segment is cut into", n, maxFrames)
	}
	tableLen := skippableHeader + n*seekEntrySize + seekFooterSize
	if tableLen > a.size {
		return corrupt(a.name, -1, "seek table of %d frames (%d bytes) exceeds the %d-byte artifact", n, tableLen, a.size)
	}
	buf := make([]byte, tableLen)
	if err := a.readFull(buf, a.size-tableLen, -1); err != nil {
		return err
	}
	a.stats.TableBytes = tableLen
	if binary.LittleEndian.Uint32(buf[0:]) != seekTableMagic {
		return corrupt(a.name, -1, "seek table frame magic %#x", binary.LittleEndian.Uint32(buf[0:]))
	}
	t, err := seekable.NewSeekTable(buf)
	if err != nil {
		return corrupt(a.name, -1, "seek table: %v", err)
	}
	var comp, raw uint64
	for i := range n {
		e, _ := t.EntryByID(i)
		if e.CompressedSize == 0 || e.DecompressedSize == 0 || e.DecompressedSize > MaxFrameSize ||
			int64(e.CompressedSize) > compressBound(int64(e.DecompressedSize)) {
			return corrupt(a.name, i, "frame sizes %d/%d out of range", e.CompressedSize, e.DecompressedSize)
		}
		comp += uint64(e.CompressedSize)
		raw += uint64(e.DecompressedSize)
	}
	if comp != uint64(a.size-tableLen) {
		return corrupt(a.name, -1, "frames hold %d bytes, artifact has %d before the seek table", comp, a.size-tableLen)
	}
	if raw > segment.MaxCapacity {
		return corrupt(a.name, -1, "decompressed size %d exceeds the largest segment", raw)
	}
	a.table, a.frames, a.rawSize = t, n, int64(raw)
	return nil
}

// readFull reads len(p) bytes at off; a short read is corruption (the
// artifact is truncated), any other error is passed through.
func (a *Artifact) readFull(p []byte, off int64, frame int64) error {
	n, err := a.src.ReadAt(p, off)
	if n == len(p) {
		return nil
	}
	if err == nil || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return corrupt(a.name, frame, "short read: %d of %d bytes at %d", n, len(p), off)
	}
	return fmt.Errorf("tier1: read %s at %d: %w", a.name, off, err)
}

// Name returns the name given at open.
func (a *Artifact) Name() string { return a.name }

// Size returns the size of the original segment (the decompressed size).
func (a *Artifact) Size() int64 { return a.rawSize }

// CompressedSize returns the artifact's size.
func (a *Artifact) CompressedSize() int64 { return a.size }

// Frames returns the number of frames.
func (a *Artifact) Frames() int64 { return a.frames }

// Stats returns what the artifact has fetched so far.
func (a *Artifact) Stats() ReadStats {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.stats
}

// frame returns the decoded frame i, fetching and verifying it unless it
// is the cached one. The returned slice must not be modified.
func (a *Artifact) frame(i int64) ([]byte, error) {
	a.mu.Lock()
	if a.closed {
		a.mu.Unlock()
		return nil, ErrClosed
	}
	if a.lastFrame == i {
		b := a.lastBuf
		a.mu.Unlock()
		return b, nil
	}
	if i == a.frames-1 && a.tailBuf != nil {
		b := a.tailBuf
		a.mu.Unlock()
		return b, nil
	}
	a.mu.Unlock()
	e, _ := a.table.EntryByID(i)
	src := make([]byte, e.CompressedSize)
	if err := a.readFull(src, int64(e.CompressedOffset), i); err != nil {
		return nil, err
	}
	out, err := decoder.DecodeAll(src, make([]byte, 0, e.DecompressedSize))
	if err != nil {
		return nil, corrupt(a.name, i, "zstd: %v", err)
	}
	if len(out) != int(e.DecompressedSize) {
		return nil, corrupt(a.name, i, "decompressed %d bytes, seek table says %d", len(out), e.DecompressedSize)
	}
	if uint32(xxhash.Sum64(out)) != e.Checksum {
		return nil, corrupt(a.name, i, "frame checksum mismatch")
	}
	a.mu.Lock()
	a.stats.FramesFetched++
	a.stats.FrameBytes += int64(e.CompressedSize)
	a.stats.DecompressedBytes += int64(len(out))
	if i == a.frames-1 {
		a.tailBuf = out
	} else {
		a.lastFrame, a.lastBuf = i, out
	}
	a.mu.Unlock()
	return out, nil
}

// frameAt returns the index and decompressed start of the frame holding off.
func (a *Artifact) frameAt(off int64) (int64, int64) {
	e, _ := a.table.EntryByDecompressedOffset(uint64(off))
	return e.ID, int64(e.DecompressedOffset)
}

// ReadAt reads len(p) bytes of the original segment at off, following
// io.ReaderAt (io.EOF when the read reaches past the end).
func (a *Artifact) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, fmt.Errorf("tier1: read %s at negative offset %d", a.name, off)
	}
	n := 0
	for n < len(p) {
		pos := off + int64(n)
		if pos >= a.rawSize {
			return n, io.EOF
		}
		id, start := a.frameAt(pos)
		b, err := a.frame(id)
		if err != nil {
			return n, err
		}
		n += copy(p[n:], b[pos-start:])
	}
	return n, nil
}

// Header decodes the segment header held in the artifact.
func (a *Artifact) Header() (segment.Header, error) {
	var b [segment.HeaderSize]byte
	if _, err := a.ReadAt(b[:], 0); err != nil {
		return segment.Header{}, a.eofCorrupt(err)
	}
	h, err := segment.DecodeHeader(b[:])
	if err != nil {
		return segment.Header{}, corrupt(a.name, 0, "embedded segment %v", err)
	}
	return h, nil
}

// Footer decodes the segment footer held in the artifact (the last bytes
// of the original segment).
func (a *Artifact) Footer() (segment.Footer, error) {
	if !segment.ValidCapacity(a.rawSize) {
		return segment.Footer{}, corrupt(a.name, -1, "decompressed size %d is not a segment capacity", a.rawSize)
	}
	var b [segment.FooterSize]byte
	if _, err := a.ReadAt(b[:], segment.DataEnd(a.rawSize)); err != nil {
		return segment.Footer{}, a.eofCorrupt(err)
	}
	f, err := segment.DecodeFooter(b[:], a.rawSize)
	if err != nil {
		return segment.Footer{}, corrupt(a.name, a.frames-1, "embedded segment %v", err)
	}
	return f, nil
}

func (a *Artifact) eofCorrupt(err error) error {
	if errors.Is(err, io.EOF) {
		return corrupt(a.name, -1, "segment shorter than its header and footer")
	}
	return err
}

// Close releases the artifact (and whatever the cache attached to it: the
// file, the pin). Reads after Close return ErrClosed.
func (a *Artifact) Close() error {
	a.mu.Lock()
	if a.closed {
		a.mu.Unlock()
		return nil
	}
	a.closed = true
	a.lastBuf, a.tailBuf = nil, nil
	a.mu.Unlock()
	if a.onClose != nil {
		return a.onClose()
	}
	return nil
}
