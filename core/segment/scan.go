package segment

import (
	"bytes"
	"errors"
	"fmt"
	"io"

	"github.com/aof2/aof2/core/checksum"
	"github.com/aof2/aof2/core/types"
	"github.com/aof2/aof2/core/vfs"
)

// Info is what recovery learns about a segment from its header and footer
// alone.
type Info struct {
	Path     string
	Name     Name
	Capacity int64
	// Unwritten: the segment was activated but never made durable (its
	// size or its header never reached the disk), so it cannot hold an
	// acknowledged record.
	Unwritten bool
	Header    Header
	// Footer is nil when the segment is not sealed (or the footer is
	// unreadable: FooterErr says why).
	Footer    *Footer
	FooterErr error
	// Truncated: the file is shorter than any segment capacity, with an
	// intact header. A preallocated segment never shrinks, so this is
	// damage (Capacity is then the file's size).
	Truncated bool
}

// Inspect reads the header and footer of a segment file, checks them
// against its name and each other, and never reads payload bytes (apart
// from the last record's header, to cross-check the footer).
//
// Recovery acts on what Inspect reports (it resumes, reseals or sets aside
// a segment that is not cleanly sealed), so any other verdict is confirmed
// by a second read of the header and footer: bytes that read differently
// twice give an UnstableError, on which nothing may be changed. A footer
// that is whole but names another segment or base record than the header
// is damage (a CorruptError), never a seal to redo: the two are written
// apart and a crash cannot leave them disagreeing.
func Inspect(fsys vfs.FS, path string, name Name, stream types.StreamID) (Info, error) {
	f, err := fsys.Open(path)
	if err != nil {
		return Info{Path: path, Name: name}, err
	}
	defer f.Close()
	size, err := f.Size()
	if err != nil {
		return Info{Path: path, Name: name}, err
	}
	info, first, err := inspect(f, path, name, stream, size)
	if err == nil && info.Footer != nil {
		return info, nil
	}
	if ce := (*types.CorruptError)(nil); err != nil && !errors.As(err, &ce) {
		return info, err
	}
	_, again, err2 := inspect(f, path, name, stream, size)
	if ce := (*types.CorruptError)(nil); err2 != nil && !errors.As(err2, &ce) {
		return info, err2
	}
	if first != again {
		return info, &UnstableError{Path: path}
	}
	return info, err
}

// edges is the raw header and footer of a segment as one read saw them.
type edges struct {
	header [HeaderSize]byte
	footer [FooterSize]byte
	last   [RecordHeaderSize]byte
}

// inspect is one read of Inspect's.
func inspect(f vfs.File, path string, name Name, stream types.StreamID, size int64) (info Info, raw edges, err error) {
	info = Info{Path: path, Name: name}
	if !ValidCapacity(size) {
		zero, err := allZero(f, size)
		if err != nil {
			return info, raw, err
		}
		if zero {
			info.Unwritten = true
			return info, raw, nil
		}
		h, err := readHeader(f, path, name, stream, &raw.header)
		if err != nil || h == nil {
			return info, raw, &types.CorruptError{Path: path, Reason: fmt.Sprintf("file size %d is not a valid segment capacity, and the header is unreadable", size)}
		}
		info.Header, info.Capacity, info.Truncated = *h, size, true
		return info, raw, nil
	}
	info.Capacity = size
	h, err := readHeader(f, path, name, stream, &raw.header)
	if err != nil {
		return info, raw, err
	}
	if h == nil {
		info.Unwritten = true
		return info, raw, nil
	}
	info.Header = *h
	if _, err := f.ReadAt(raw.footer[:], DataEnd(size)); err != nil {
		return info, raw, err
	}
	if IsZero(raw.footer[:]) {
		return info, raw, nil
	}
	foot, err := DecodeFooter(raw.footer[:], size)
	if err == nil && (foot.SegmentID != h.SegmentID || foot.BaseRecord != h.BaseRecord) {
		return info, raw, &types.CorruptError{Path: path, Reason: fmt.Sprintf(
			"footer (segment %d, base_record %d) disagrees with the header (segment %d, base_record %d)",
			foot.SegmentID, foot.BaseRecord, h.SegmentID, h.BaseRecord)}
	}
	if err == nil {
		err = checkLastRecord(f, &foot, &raw.last)
	}
	if err != nil {
		if ioe := (ioError{}); errors.As(err, &ioe) {
			return info, raw, ioe.err
		}
		info.FooterErr = &types.CorruptError{Path: path, Offset: DataEnd(size), Reason: err.Error()}
		return info, raw, nil
	}
	info.Footer = &foot
	return info, raw, nil
}

// UnstableError reports bytes that read differently twice in a row. It is
// a fault of the read, not a verdict on the data: whoever gets it changes
// nothing (no repair, no set-aside) and may try again later.
type UnstableError struct {
	Path   string
	Offset int64
}

func (e *UnstableError) Error() string {
	return fmt.Sprintf("aof2: two reads of %s at offset %d differ; refusing to repair or set aside on unstable reads", e.Path, e.Offset)
}

// Is makes errors.Is(err, types.ErrCorrupt) true: the bytes cannot be trusted.
func (e *UnstableError) Is(target error) bool { return target == types.ErrCorrupt }

// readHeader reads and checks the header of the segment file f against
// its name into raw; nil when the header was never written (zeros).
func readHeader(f vfs.File, path string, name Name, stream types.StreamID, raw *[HeaderSize]byte) (*Header, error) {
	if _, err := f.ReadAt(raw[:], 0); err != nil {
		return nil, err
	}
	if IsZero(raw[:]) {
		return nil, nil
	}
	h, err := DecodeHeader(raw[:])
	if err != nil {
		return nil, &types.CorruptError{Path: path, Reason: err.Error()}
	}
	if h.StreamID != stream || h.SegmentID != name.SegmentID || h.BaseOffset != name.BaseOffset || h.CreatedAt != name.CreatedAt {
		return nil, &types.CorruptError{Path: path, Reason: fmt.Sprintf("header (stream %d, segment %d, base_offset %d, created_at %d) disagrees with the file name or stream",
			h.StreamID, h.SegmentID, h.BaseOffset, h.CreatedAt)}
	}
	return &h, nil
}

// allZero reports whether the first size bytes of f are all zero.
func allZero(f vfs.File, size int64) (bool, error) {
	buf := make([]byte, min(size, 1<<20))
	for off := int64(0); off < size; off += int64(len(buf)) {
		n, err := f.ReadAt(buf[:min(int64(len(buf)), size-off)], off)
		if err != nil && !errors.Is(err, io.EOF) {
			return false, err
		}
		if !IsZero(buf[:n]) {
			return false, nil
		}
	}
	return true, nil
}

// ioError marks a read that failed, as opposed to a footer found wrong.
type ioError struct{ err error }

func (e ioError) Error() string { return e.err.Error() }

// checkLastRecord cross-checks a footer with the last record's header,
// read into raw.
func checkLastRecord(f vfs.File, foot *Footer, raw *[RecordHeaderSize]byte) error {
	if foot.RecordCount == 0 {
		return nil
	}
	off := int64(foot.LastRecordID.Offset())
	if _, err := f.ReadAt(raw[:], off); err != nil {
		return ioError{fmt.Errorf("read last record header: %w", err)}
	}
	rh := DecodeRecordHeader(raw[:])
	if n, filler := frameLen(rh.PayloadLen); n == 0 || filler || uint64(off+RecordSpan(int(n))) != foot.DurableBytes {
		return fmt.Errorf("last record at %d (payload_len %d) does not end at durable_bytes %d", off, rh.PayloadLen, foot.DurableBytes)
	}
	return nil
}

// TailScan is the result of scanning a segment's records from the start.
type TailScan struct {
	End     int64 // end of the last intact record
	Count   uint64
	LastOff int64
	LastTS  int64
	LastExt uint64
	CRC     uint64 // CRC-64/NVME over [0, End)
	Index   *Index
	// DirtyEnd is the end of the last non-zero byte past End (End when the
	// rest of the data area is clean): [End, DirtyEnd) holds torn or
	// unacknowledged bytes that must be zeroed before appending again.
	DirtyEnd int64
	Stop     string // why the scan stopped
}

// Dropped returns how many bytes past the intact records were found dirty.
func (t *TailScan) Dropped() int64 { return t.DirtyEnd - t.End }

// ScanTail verifies records from the start of b (a whole segment of
// capacity len(b)) and stops at the first zero or damaged record; then it
// looks for non-zero bytes past them (DirtyEnd), which reads the whole
// rest of the segment.
func ScanTail(b []byte) TailScan {
	ts := scanRecords(b)
	ts.DirtyEnd = dirtyEnd(b, ts.End)
	return ts
}

// scanRecords is ScanTail without the search past the records (DirtyEnd
// is left at End).
func scanRecords(b []byte) TailScan {
	capacity := int64(len(b))
	limit := DataEnd(capacity)
	ts := TailScan{End: HeaderSize, Index: NewIndex()}
	if capacity < HeaderSize+FooterSize {
		ts.End, ts.DirtyEnd, ts.Stop = 0, 0, "too small for a segment"
		return ts
	}
	for {
		off := ts.End
		if off+RecordHeaderSize > limit {
			ts.Stop = "segment full"
			break
		}
		h := DecodeRecordHeader(b[off:])
		if h.PayloadLen == 0 {
			ts.Stop = "end marker"
			break
		}
		n, filler := frameLen(h.PayloadLen)
		if n == 0 {
			// A frame with no payload is none (ReadRecord, Hop, frameAt).
			ts.Stop = fmt.Sprintf("empty filler frame at %d", off)
			break
		}
		end := off + RecordHeaderSize + n
		if end > limit {
			ts.Stop = fmt.Sprintf("payload_len %d at %d overruns the segment", h.PayloadLen, off)
			break
		}
		if FrameChecksum(b[off:end]) != h.Checksum {
			ts.Stop = fmt.Sprintf("checksum mismatch at %d", off)
			break
		}
		if !filler {
			ts.Index.Add(off, ts.Count)
			ts.Count++
			ts.LastOff, ts.LastTS, ts.LastExt = off, h.Timestamp, h.ExtID
		}
		ts.End = off + RecordSpan(int(n))
	}
	ts.CRC = checksum.Sum64(b[:ts.End])
	ts.DirtyEnd = ts.End
	return ts
}

// zeroBlock is compared against, a block at a time, by dirtyEnd.
var zeroBlock [4096]byte

// dirtyEnd returns the end of the last non-zero byte of b's data area at
// or past end (end when there is none).
func dirtyEnd(b []byte, end int64) int64 {
	limit := DataEnd(int64(len(b)))
	hi := limit
	for hi > end {
		lo := max(end, hi-int64(len(zeroBlock)))
		if bytes.Equal(b[lo:hi], zeroBlock[:hi-lo]) {
			hi = lo
			continue
		}
		for i := hi - 1; i >= lo; i-- {
			if b[i] != 0 {
				return i + 1
			}
		}
	}
	return end
}

// VerifySealed checks every record and the segment checksum of a sealed
// segment's bytes against its footer.
func VerifySealed(b []byte, path string, foot *Footer) error {
	ts := ScanTail(b)
	switch {
	case uint64(ts.End) != foot.DurableBytes || ts.Count != foot.RecordCount:
		return &types.CorruptError{Path: path, Offset: ts.End, Reason: fmt.Sprintf("records end at %d after %d records (%s); footer says %d bytes, %d records",
			ts.End, ts.Count, ts.Stop, foot.DurableBytes, foot.RecordCount)}
	case ts.CRC != foot.SegmentCRC:
		return &types.CorruptError{Path: path, Reason: fmt.Sprintf("segment_crc64 %#x, footer says %#x", ts.CRC, foot.SegmentCRC)}
	}
	return nil
}

// MapReadOnly maps a whole segment file for reading.
func MapReadOnly(fsys vfs.FS, path string) (vfs.Region, error) {
	f, err := fsys.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	size, err := f.Size()
	if err != nil {
		return nil, err
	}
	return f.Map(0, int(size), false)
}

// Resume reopens the unsealed tail segment described by info for appends,
// after zeroing whatever lies past its intact records and making the
// segment durable. It returns the scan it resumed from.
func Resume(fsys vfs.FS, info Info, mode WriteMode) (*Writer, TailScan, error) {
	f, err := fsys.OpenReadWrite(info.Path)
	if err != nil {
		return nil, TailScan{}, err
	}
	w, ts, err := resume(f, info, mode)
	if err != nil {
		_ = f.Close()
		return nil, TailScan{}, fmt.Errorf("resume %s: %w", info.Path, err)
	}
	return w, ts, nil
}

func resume(f vfs.File, info Info, mode WriteMode) (*Writer, TailScan, error) {
	w, ts, _, err := openTail(f, info, mode, TailProof{Durable: -1})
	return w, ts, err
}

// TailProof is what the durable mark proves about a tail segment.
type TailProof struct {
	// Durable: bytes [0, Durable) were durable (-1: nothing is proven
	// and nothing is classified).
	Durable int64
	// Clean: the stream was closed cleanly with its records ending at
	// Durable. Nothing was written past them since (a reopen writes an
	// unclean mark before its first append), so when the records still
	// end there the rest of the segment is not searched: the open costs
	// the bytes written, not the segment's size.
	Clean bool
}

// OpenTail is Resume for the last segment of a stream: what lies past its
// intact records is classified first (ClassifyTail, with what the durable
// mark proves) and only a torn write is dropped. On damage the file is
// left exactly as it is and the writer is nil.
func OpenTail(fsys vfs.FS, info Info, mode WriteMode, proof TailProof) (*Writer, TailScan, TailVerdict, error) {
	f, err := fsys.OpenReadWrite(info.Path)
	if err != nil {
		return nil, TailScan{}, TailVerdict{}, err
	}
	w, ts, v, err := openTail(f, info, mode, proof)
	if err != nil || w == nil {
		_ = f.Close()
	}
	if err != nil {
		return nil, ts, v, fmt.Errorf("open tail %s: %w", info.Path, err)
	}
	return w, ts, v, nil
}

// openTail scans f and reopens it for appends; with proof.Durable >= 0 it
// first classifies the tail and stops, changing nothing, on damage.
func openTail(f vfs.File, info Info, mode WriteMode, proof TailProof) (_ *Writer, _ TailScan, v TailVerdict, err error) {
	r, err := f.Map(0, int(info.Capacity), mode == WriteMmap)
	if err != nil {
		return nil, TailScan{}, v, err
	}
	defer func() {
		if err != nil {
			_ = r.Close()
		}
	}()
	b := r.Bytes()
	ts, err := scanTailVerified(f, b, info.Path, proof)
	if err != nil {
		return nil, ts, v, err
	}
	if proof.Durable >= 0 {
		if v = ClassifyTail(b, ts, proof.Durable); v.Kind == TailDamaged {
			return nil, ts, v, r.Close()
		}
	}
	if ts.DirtyEnd > ts.End {
		if err := zeroRange(f, r, mode, ts.End, ts.DirtyEnd); err != nil {
			return nil, ts, v, err
		}
	}
	if foot := DataEnd(info.Capacity); !IsZero(b[foot:]) {
		// A footer torn by a crash during seal: the segment is not sealed.
		if err := zeroRange(f, r, mode, foot, info.Capacity); err != nil {
			return nil, ts, v, err
		}
	}
	if err := f.Datasync(); err != nil {
		return nil, ts, v, err
	}
	w := &Writer{
		file: f, region: r, path: info.Path, capacity: info.Capacity, hdr: info.Header, mode: mode,
		index: ts.Index, end: ts.End, count: ts.Count, lastOff: ts.LastOff, lastTS: ts.LastTS, lastExt: ts.LastExt,
		synced: ts.End, crc: ts.CRC, crcEnd: ts.End,
	}
	if mode == WritePwrite {
		w.bufStart = ts.End
	} else {
		_ = r.Populate()
	}
	return w, ts, v, nil
}

func zeroRange(f vfs.File, r vfs.Region, mode WriteMode, lo, hi int64) error {
	zeros := make([]byte, min(hi-lo, 1<<20))
	for off := lo; off < hi; off += int64(len(zeros)) {
		n := min(int64(len(zeros)), hi-off)
		var err error
		if mode == WriteMmap {
			_, err = r.WriteAt(zeros[:n], off)
		} else {
			_, err = f.WriteAt(zeros[:n], off)
		}
		if err != nil {
			return fmt.Errorf("zero [%d,%d): %w", lo, hi, err)
		}
	}
	return nil
}

// ReadPointer reads and verifies a pointer file; a missing file is
// reported as (nil, nil).
func ReadPointer(fsys vfs.FS, path string) (*Pointer, error) {
	b, err := vfs.ReadFile(fsys, path)
	if vfs.IsNotExist(err) {
		return nil, nil
	}
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, err
	}
	p, err := DecodePointer(b)
	if err != nil {
		return nil, &types.CorruptError{Path: path, Reason: err.Error()}
	}
	return &p, nil
}

// WritePointer replaces the pointer file atomically and durably.
func WritePointer(fsys vfs.FS, path string, p Pointer) error {
	return vfs.WriteFileAtomic(fsys, path, p.Encode())
}

// HasNoRecords reports whether the segment at path holds no intact record.
// Recovery deletes such a segment, so the answer is read twice and must
// agree: a read that returns different bytes the second time is an error,
// never grounds for deleting anything.
func HasNoRecords(fsys vfs.FS, path string) (bool, error) {
	first, err := firstRecord(fsys, path)
	if err != nil {
		return false, err
	}
	again, err := firstRecord(fsys, path)
	if err != nil {
		return false, err
	}
	if !bytes.Equal(first, again) {
		return false, unstable(path, HeaderSize)
	}
	if first == nil {
		return true, nil
	}
	return RecordChecksum(first, first[RecordHeaderSize:]) != DecodeRecordHeader(first).Checksum, nil
}

// firstRecord returns the bytes of the first record (header and payload),
// or nil when its header says there is none that fits.
func firstRecord(fsys vfs.FS, path string) ([]byte, error) {
	f, err := fsys.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	size, err := f.Size()
	if err != nil {
		return nil, err
	}
	var hb [RecordHeaderSize]byte
	if _, err := f.ReadAt(hb[:], HeaderSize); err != nil {
		return nil, err
	}
	h := DecodeRecordHeader(hb[:])
	if h.PayloadLen == 0 || HeaderSize+RecordHeaderSize+int64(h.PayloadLen) > DataEnd(size) {
		return nil, nil
	}
	rec := make([]byte, RecordHeaderSize+int(h.PayloadLen))
	if _, err := f.ReadAt(rec, HeaderSize); err != nil {
		return nil, err
	}
	return rec, nil
}

// unstable reports bytes that read differently twice in a row.
func unstable(path string, off int64) error {
	return &UnstableError{Path: path, Offset: off}
}

// ScanTailVerified scans a segment like ScanTail and, when the result would
// lead recovery to discard bytes (anything non-zero past the intact
// records), confirms it with a second, independent read of the file.
func ScanTailVerified(f vfs.File, b []byte, path string) (TailScan, error) {
	return scanTailVerified(f, b, path, TailProof{Durable: -1})
}

func scanTailVerified(f vfs.File, b []byte, path string, proof TailProof) (TailScan, error) {
	ts := scanRecords(b)
	if !proof.Clean || ts.End != proof.Durable {
		ts.DirtyEnd = dirtyEnd(b, ts.End)
	}
	if ts.DirtyEnd == ts.End && IsZero(b[max(DataEnd(int64(len(b))), 0):]) {
		return ts, nil
	}
	again := make([]byte, len(b))
	if _, err := f.ReadAt(again, 0); err != nil && !errors.Is(err, io.EOF) {
		return ts, err
	}
	if !bytes.Equal(again, b) {
		return ts, unstable(path, ts.End)
	}
	return ts, nil
}
