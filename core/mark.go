package segment

import (
	"errors"
	"fmt"
	"io"
	"path/filepath"

	"github.com/aof2/aof2/core/checksum"
	"github.com/aof2/aof2/core/types"
	"github.com/aof2/aof2/core/vfs"
)

// The durable mark (segments/durable.mark) is recovery's proof of how far
// a stream's active segment was durable. Without it a record that fails
// its checksum could be the torn last write of a power loss (its bytes may
// be dropped: nothing after it was acknowledged) or damage to acknowledged
// data (nothing may be dropped); with it, a bad record before the mark is
// damage, always.
//
// The file holds two slots of MarkSlotSize bytes; writes alternate between
// them and each is followed by an fdatasync, so a torn write of one slot
// leaves the other, older one readable. The slot with the valid checksum
// and the highest sequence number is the mark:
//
//	off size field
//	  0    8 magic "AOF2MARK"
//	  8    4 version = 1
//	 12    4 flags: bit 0 clean (written by Close after the final sync:
//	         nothing past durable_bytes was ever handed out)
//	 16    8 seq
//	 24    8 segment_id
//	 32    8 durable_bytes (records before this offset are durable)
//	 40    8 records (how many records lie before durable_bytes)
//	 48    8 reserved: the highest segment id that may have been activated
//	         (written before a prepared segment can take records, so that
//	         recovery never hands out an id of a segment whose file a crash
//	         lost, even one that held only non-durable records)
//	 56    8 CRC-64/NVME of bytes [0, 56)

// MarkFile is the name of the durable-mark file in a segments directory.
const MarkFile = "durable.mark"

// MarkSlotSize is the size of one slot (a sector, so that one slot's write
// never tears the other).
const MarkSlotSize = 512

const (
	markMagic   = "AOF2MARK"
	markVersion = 1
	markLen     = 64
	// MarkClean is set in the mark Close writes.
	MarkClean = 1 << 0
)

// Mark is one durable mark.
type Mark struct {
	Seq          uint64
	Flags        uint32
	SegmentID    types.SegmentID
	DurableBytes uint64
	Records      uint64
	Reserved     types.SegmentID
}

// Clean reports whether the mark was written by a clean close.
func (m *Mark) Clean() bool { return m.Flags&MarkClean != 0 }

// Encode returns the slot bytes of m.
func (m *Mark) Encode() []byte {
	b := make([]byte, MarkSlotSize)
	copy(b[0:8], markMagic)
	le.PutUint32(b[8:], markVersion)
	le.PutUint32(b[12:], m.Flags)
	le.PutUint64(b[16:], m.Seq)
	le.PutUint64(b[24:], uint64(m.SegmentID))
	le.PutUint64(b[32:], m.DurableBytes)
	le.PutUint64(b[40:], m.Records)
	le.PutUint64(b[48:], uint64(m.Reserved))
	le.PutUint64(b[56:], checksum.Sum64(b[:56]))
	return b
}

// DecodeMark parses and verifies one slot.
func DecodeMark(b []byte) (Mark, error) {
	if len(b) < markLen {
		return Mark{}, fmt.Errorf("mark: %d bytes, need %d", len(b), markLen)
	}
	if string(b[0:8]) != markMagic {
		return Mark{}, fmt.Errorf("mark: bad magic %q", b[0:8])
	}
	if got, want := checksum.Sum64(b[:56]), le.Uint64(b[56:]); got != want {
		return Mark{}, fmt.Errorf("mark: checksum %#x, stored %#x", got, want)
	}
	if v := le.Uint32(b[8:]); v != markVersion {
		return Mark{}, fmt.Errorf("mark: unsupported version %d", v)
	}
	m := Mark{Flags: le.Uint32(b[12:]), Seq: le.Uint64(b[16:]), SegmentID: types.SegmentID(le.Uint64(b[24:])),
		DurableBytes: le.Uint64(b[32:]), Records: le.Uint64(b[40:]), Reserved: types.SegmentID(le.Uint64(b[48:]))}
	if m.Flags&^MarkClean != 0 {
		return Mark{}, fmt.Errorf("mark: unknown flags %#x", m.Flags)
	}
	if m.SegmentID > types.MaxSegmentID || m.Reserved > types.MaxSegmentID {
		return Mark{}, fmt.Errorf("mark: segment %d / reserved %d out of range", m.SegmentID, m.Reserved)
	}
	if m.SegmentID == 0 { // nothing durable yet, only a reservation
		if m.DurableBytes != 0 || m.Records != 0 {
			return Mark{}, fmt.Errorf("mark: no segment but durable_bytes %d, records %d", m.DurableBytes, m.Records)
		}
		return m, nil
	}
	if m.DurableBytes < HeaderSize || m.DurableBytes%align != 0 {
		return Mark{}, fmt.Errorf("mark: segment %d durable_bytes %d out of range", m.SegmentID, m.DurableBytes)
	}
	if max := (m.DurableBytes - HeaderSize) / uint64(RecordSpan(1)); m.Records > max {
		return Mark{}, fmt.Errorf("mark: %d records cannot fit in %d bytes", m.Records, m.DurableBytes)
	}
	return m, nil
}

// ReadMark returns the newest valid mark of the file at path, nil when
// there is none (no file, or no slot that verifies: a mark is a proof, its
// absence only means less is proven).
func ReadMark(fsys vfs.FS, path string) (*Mark, error) {
	b, err := vfs.ReadFile(fsys, path)
	if vfs.IsNotExist(err) {
		return nil, nil
	}
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, err
	}
	var best *Mark
	for off := 0; off+markLen <= len(b) && off < 2*MarkSlotSize; off += MarkSlotSize {
		m, err := DecodeMark(b[off:])
		if err == nil && (best == nil || m.Seq > best.Seq) {
			best = &m
		}
	}
	return best, nil
}

// MarkWriter writes a stream's durable marks. Not safe for concurrent use.
// The file is created by the first write, so a stream that never syncs a
// record costs no mark file.
type MarkWriter struct {
	fsys vfs.FS
	path string
	f    vfs.File // open only during Write
	seq  uint64
	// dirPending: the file was created but its directory entry is not
	// known to be durable yet (the directory sync failed): the next Write
	// syncs the directory again.
	dirPending bool
}

// OpenMarkWriter returns a writer of the mark file at path whose sequence
// continues after last (nil: none).
func OpenMarkWriter(fsys vfs.FS, path string, last *Mark) (*MarkWriter, error) {
	w := &MarkWriter{fsys: fsys, path: path}
	if last != nil {
		w.seq = last.Seq
	}
	return w, nil
}

// open opens the file, or creates it (created says so).
func (w *MarkWriter) open() (created bool, err error) {
	f, err := w.fsys.OpenReadWrite(w.path)
	if vfs.IsNotExist(err) {
		f, err = w.fsys.Create(w.path)
		created = true
	}
	if err != nil {
		return false, fmt.Errorf("open %s: %w", w.path, err)
	}
	w.f = f
	return created, nil
}

// Write makes m (its Seq filled in) durable in the slot the previous write
// did not use. The file is open only during the write: marks are written
// at most about once a second per stream, and an idle stream should hold
// no descriptor for its mark.
//
// A new file gets both slots in one write (the other one zero) and one
// full sync, then its directory entry is made durable: a stream's first
// mark costs one file sync, not one for the file and one for the mark.
func (w *MarkWriter) Write(m Mark) (err error) {
	created, err := w.open()
	if err != nil {
		return err
	}
	if created {
		w.dirPending = true
	}
	defer func() {
		if cerr := w.Close(); err == nil {
			err = cerr
		}
	}()
	w.seq++
	m.Seq = w.seq
	b, off := m.Encode(), int64(w.seq%2)*MarkSlotSize
	if created {
		both := make([]byte, 2*MarkSlotSize)
		copy(both[off:], b)
		b, off = both, 0
	}
	if _, err := w.f.WriteAt(b, off); err != nil {
		return fmt.Errorf("write %s: %w", w.path, err)
	}
	if created || w.dirPending {
		if err := w.f.Sync(); err != nil {
			return fmt.Errorf("sync %s: %w", w.path, err)
		}
		if err := w.fsys.SyncDir(filepath.Dir(w.path)); err != nil {
			return fmt.Errorf("sync the directory of %s: %w", w.path, err)
		}
		w.dirPending = false
		return nil
	}
	if err := w.f.Datasync(); err != nil {
		return fmt.Errorf("sync %s: %w", w.path, err)
	}
	return nil
}

// Close closes the file.
func (w *MarkWriter) Close() error {
	if w.f == nil {
		return nil
	}
	err := w.f.Close()
	w.f = nil
	return err
}
