package segment

import (
	"errors"
	"fmt"

	"github.com/aof2/aof2/core/checksum"
	"github.com/aof2/aof2/core/types"
	"github.com/aof2/aof2/core/vfs"
)

// WriteMode selects how record bytes reach the page cache.
type WriteMode uint8

const (
	// WritePwrite stages records in a user-space buffer and hands them to
	// the kernel with pwrite when the buffer fills, on Push and on Sync;
	// durability is fdatasync. Readers use a read-only mapping, which sees
	// the written bytes through the page cache. It is the default: it was
	// fastest in every shape we measured (docs/adr-write-path.md).
	WritePwrite WriteMode = iota
	// WriteMmap copies each record into a shared writable mapping and makes
	// it durable with msync.
	WriteMmap
)

func (m WriteMode) String() string {
	if m == WriteMmap {
		return "mmap"
	}
	return "pwrite"
}

// ParseWriteMode parses "pwrite" or "mmap".
func ParseWriteMode(s string) (WriteMode, bool) {
	switch s {
	case "pwrite":
		return WritePwrite, true
	case "mmap":
		return WriteMmap, true
	}
	return 0, false
}

// pwriteBuffer is the largest staging buffer of WritePwrite. The buffer
// is allocated at the first append, minPwriteBuffer or the first record's
// size, and doubles as records need up to pwriteBuffer; Seal and
// ReleaseBuffer drop it, so a sealed or idle segment holds none.
const (
	pwriteBuffer    = 1 << 20
	minPwriteBuffer = 4 << 10
)

// ErrFull is returned by Writer.Append when the record does not fit; the
// caller rolls over to a new segment.
var ErrFull = errors.New("segment: full")

// Writer appends records to an active segment. Append, Push and the
// accessors are called by one goroutine at a time (the stream's writer
// lock); SyncTo and Seal by the stream's syncer, one at a time. Appended
// bytes below Visible may be read concurrently through Bytes.
type Writer struct {
	file     vfs.File
	region   vfs.Region
	path     string
	capacity int64
	hdr      Header
	mode     WriteMode
	index    *Index

	end     int64 // next record offset: bytes [0,end) are written
	count   uint64
	lastOff int64
	lastTS  int64
	lastExt uint64

	buf      []byte // WritePwrite: staged bytes for [bufStart, end); nil until needed
	bufStart int64

	// Syncer-owned.
	synced int64 // [0,synced) is durable
	// crc is the CRC-64/NVME of [0,crcEnd). Under WritePwrite it is kept by
	// Push (the appenders' side, like buf); under WriteMmap by the syncer.
	crc    uint64
	crcEnd int64
}

// Path returns the segment's file path.
func (w *Writer) Path() string { return w.path }

// Header returns the segment header.
func (w *Writer) Header() Header { return w.hdr }

// Capacity returns the file size.
func (w *Writer) Capacity() int64 { return w.capacity }

// End returns the offset after the last appended record.
func (w *Writer) End() int64 { return w.end }

// Count returns the number of records appended.
func (w *Writer) Count() uint64 { return w.count }

// Index returns the segment's sparse index.
func (w *Writer) Index() *Index { return w.index }

// Bytes returns the mapped file for reading; bytes below Visible are stable.
func (w *Writer) Bytes() []byte { return w.region.Bytes() }

// Visible returns the end of the bytes readers can see through Bytes.
func (w *Writer) Visible() int64 {
	if w.mode == WritePwrite {
		return w.bufStart
	}
	return w.end
}

// Last returns the offset, timestamp and ext_id of the last record.
func (w *Writer) Last() (off int64, ts int64, ext uint64) { return w.lastOff, w.lastTS, w.lastExt }

// Fits reports whether a record with an n-byte payload fits.
func (w *Writer) Fits(n int) bool { return w.end+RecordSpan(n) <= DataEnd(w.capacity) }

// Append writes one record and returns its offset. It returns ErrFull when
// the record does not fit; nothing is written then.
func (w *Writer) Append(payload []byte, ts int64, ext uint64) (int64, error) {
	n := len(payload)
	if !w.Fits(n) {
		return 0, ErrFull
	}
	off := w.end
	write := w.writeMapped
	if w.mode == WritePwrite {
		write = w.writeStaged
	}
	if err := write(payload, ts, ext, off); err != nil {
		return 0, err
	}
	w.index.Add(off, w.count)
	w.end = off + RecordSpan(n)
	w.count++
	w.lastOff, w.lastTS, w.lastExt = off, ts, ext
	return off, nil
}

// writeStaged stages a record for pwrite. Its header lives on the stack:
// one array shared with writeMapped, whose region is an interface, would
// be moved to the heap for every record.
func (w *Writer) writeStaged(payload []byte, ts int64, ext uint64, off int64) error {
	var hdr [RecordHeaderSize]byte
	// Staged frames are contiguous: checksum them in place.
	encodeRecordFields(hdr[:], len(payload), ts, ext)
	return w.stage(hdr[:], payload, off)
}

// writeMapped writes a record through the mapping.
func (w *Writer) writeMapped(payload []byte, ts int64, ext uint64, off int64) error {
	var hdr [RecordHeaderSize]byte
	EncodeRecordHeader(hdr[:], payload, ts, ext)
	// The mapping is zero-filled, so the padding needs no store.
	if _, err := w.region.WriteAt(payload, off+RecordHeaderSize); err != nil {
		return err
	}
	_, err := w.region.WriteAt(hdr[:], off)
	return err
}

func (w *Writer) stage(hdr, payload []byte, off int64) error {
	span := int(RecordSpan(len(payload)))
	if len(w.buf)+span > pwriteBuffer {
		if err := w.Push(); err != nil {
			return err
		}
	}
	if span > pwriteBuffer {
		// Larger than the buffer: write it straight through.
		rec := make([]byte, span)
		copy(rec, hdr)
		copy(rec[RecordHeaderSize:], payload)
		le.PutUint32(rec[4:], FrameChecksum(rec[:RecordHeaderSize+len(payload)]))
		if _, err := w.file.WriteAt(rec, off); err != nil {
			return err
		}
		w.crcWritten(rec, off)
		w.bufStart = off + int64(span)
		return nil
	}
	if len(w.buf)+span > cap(w.buf) {
		w.grow(len(w.buf) + span)
	}
	start := len(w.buf)
	w.buf = w.buf[:start+span]
	copy(w.buf[start:], hdr)
	copy(w.buf[start+RecordHeaderSize:], payload)
	end := start + RecordHeaderSize + len(payload)
	clear(w.buf[end:])
	le.PutUint32(w.buf[start+4:], FrameChecksum(w.buf[start:end]))
	return nil
}

// grow makes the staging buffer hold at least n bytes (n <= pwriteBuffer).
func (w *Writer) grow(n int) {
	c := max(2*cap(w.buf), minPwriteBuffer)
	for c < n {
		c *= 2
	}
	b := make([]byte, len(w.buf), min(c, pwriteBuffer))
	copy(b, w.buf)
	w.buf = b
}

// ReleaseBuffer drops the staging buffer if it holds nothing: the stream
// calls it when the segment goes idle. The next append allocates a new one.
func (w *Writer) ReleaseBuffer() {
	if len(w.buf) == 0 {
		w.buf = nil
	}
}

// Push hands staged bytes to the kernel (WritePwrite); a no-op for WriteMmap.
func (w *Writer) Push() error {
	if w.mode != WritePwrite || len(w.buf) == 0 {
		return nil
	}
	if _, err := w.file.WriteAt(w.buf, w.bufStart); err != nil {
		return err
	}
	w.crcWritten(w.buf, w.bufStart)
	w.bufStart += int64(len(w.buf))
	w.buf = w.buf[:0]
	return nil
}

// Synced returns the durable end.
func (w *Writer) Synced() int64 { return w.synced }

// SyncTo makes [0, upTo) durable. upTo must not exceed what has been
// appended (and, for WritePwrite, pushed) before the call.
func (w *Writer) SyncTo(upTo int64) error {
	if upTo <= w.synced {
		return nil
	}
	var err error
	if w.mode == WritePwrite {
		err = w.file.Datasync()
	} else {
		err = w.region.Sync(w.synced, upTo-w.synced)
	}
	if err != nil {
		return fmt.Errorf("sync %s to %d: %w", w.path, upTo, err)
	}
	w.synced = upTo
	return nil
}

// CatchUpCRC extends the running segment CRC over the bytes synced so far.
// The syncer calls it after acknowledging a round, so that checksumming
// stays off the durable-ack path without leaving all of it to Seal. Under
// WritePwrite the CRC is extended by Push, under the writer's lock, so
// there is nothing to catch up (and the fields are not the syncer's).
func (w *Writer) CatchUpCRC() {
	if w.mode != WritePwrite {
		w.extendCRC(w.synced)
	}
}

// crcWritten extends the running segment CRC over b, just written at off,
// when it continues it: the bytes are still in the CPU's cache, where
// extendCRC would read them back through the mapping (page faults and
// memory traffic: it was a quarter of W1's CPU).
func (w *Writer) crcWritten(b []byte, off int64) {
	if off == w.crcEnd {
		w.crc = checksum.Update(w.crc, b)
		w.crcEnd = off + int64(len(b))
	}
}

func (w *Writer) extendCRC(upTo int64) {
	if upTo > w.crcEnd {
		w.crc = checksum.Update(w.crc, w.region.Bytes()[w.crcEnd:upTo])
		w.crcEnd = upTo
	}
}

// SealParams are the footer fields the caller supplies.
type SealParams struct {
	SealedAt             int64
	ExtID                uint64
	CoordinatorWatermark uint64
	FlushFailure         bool
}

// Seal makes every record durable, writes the footer and syncs it. The
// writer must not be appended to afterwards.
func (w *Writer) Seal(p SealParams) (Footer, error) {
	if err := w.Push(); err != nil {
		return Footer{}, fmt.Errorf("push %s: %w", w.path, err)
	}
	if err := w.SyncTo(w.end); err != nil {
		return Footer{}, err
	}
	w.extendCRC(w.end)
	f := Footer{
		Flags:                FlagSealed,
		SegmentID:            w.hdr.SegmentID,
		BaseRecord:           w.hdr.BaseRecord,
		RecordCount:          w.count,
		DurableBytes:         uint64(w.end),
		LastTimestamp:        w.lastTS,
		SealedAt:             p.SealedAt,
		SegmentCRC:           w.crc,
		ExtID:                p.ExtID,
		CoordinatorWatermark: p.CoordinatorWatermark,
	}
	if w.count > 0 {
		f.LastRecordID = types.MakeRecordID(w.hdr.SegmentID, uint32(w.lastOff))
	}
	if p.FlushFailure {
		f.Flags |= FlagFlushFailure
	}
	var b [FooterSize]byte
	f.Encode(b[:])
	w.buf = nil // nothing is appended after the seal
	if err := w.writeAt(b[:], DataEnd(w.capacity)); err != nil {
		return Footer{}, fmt.Errorf("write footer of %s: %w", w.path, err)
	}
	if err := w.file.Datasync(); err != nil {
		return Footer{}, fmt.Errorf("sync footer of %s: %w", w.path, err)
	}
	releaseUnused(w.file, w.end, DataEnd(w.capacity))
	// The file is complete: readers need only the mapping, so the
	// descriptor goes now rather than when the segment is closed.
	_ = w.file.Close()
	w.file = nil
	return f, nil
}

// holeAlign is the granularity of the room a seal gives back: file-system
// blocks (4 KiB on ext4 and xfs), so that no partial block is rewritten.
const holeAlign = 4096

// releaseUnused gives back the blocks between a sealed segment's last
// record (end) and its footer (footer): they were preallocated for
// records and hold zeros, which a hole reads as too, so the file keeps its
// size, layout and meaning (docs/formats.md, "Segment file") while it
// costs only its bytes on disk. It is best effort: where the file system
// cannot punch holes, or the call fails, the segment keeps its room and
// nothing else changes.
func releaseUnused(f vfs.File, end, footer int64) {
	if lo, hi := unusedRange(end, footer); hi > lo {
		_ = f.PunchHole(lo, hi-lo)
	}
}

// unusedRange is the block-aligned room between a sealed segment's last
// record (end) and its footer that a seal gives back (empty when hi <= lo).
func unusedRange(end, footer int64) (lo, hi int64) {
	return (end + holeAlign - 1) / holeAlign * holeAlign, footer / holeAlign * holeAlign
}

// SealedUnused is the block-aligned range [lo, hi) of a sealed segment of
// capacity bytes, records ending at durableBytes, that holds only zeros
// and need not occupy disk (empty when hi <= lo): a seal punches it out,
// a hydration does not allocate it.
func SealedUnused(capacity int64, durableBytes uint64) (lo, hi int64) {
	return unusedRange(int64(durableBytes), DataEnd(capacity))
}

// SealedFootprint is the room a sealed segment occupies without its
// SealedUnused range: what the tier-0 budget charges a sealed segment.
// Where the file system cannot punch holes the file keeps its full
// capacity (docs/adr-tier0.md).
func SealedFootprint(capacity int64, durableBytes uint64) int64 {
	lo, hi := SealedUnused(capacity, durableBytes)
	if hi <= lo {
		return capacity
	}
	return capacity - (hi - lo)
}

func (w *Writer) writeAt(b []byte, off int64) error {
	var err error
	if w.mode == WritePwrite {
		_, err = w.file.WriteAt(b, off)
	} else {
		_, err = w.region.WriteAt(b, off)
	}
	return err
}

// Close unmaps and closes the file (Seal already closed a sealed one's).
func (w *Writer) Close() error {
	err := w.region.Close()
	if w.file == nil {
		return err
	}
	if cerr := w.file.Close(); err == nil {
		err = cerr
	}
	return err
}
