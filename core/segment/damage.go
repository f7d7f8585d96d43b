package segment

import (
	"bytes"
	"fmt"
	"slices"

	"github.com/aof2/aof2/core/types"
	"github.com/aof2/aof2/core/vfs"
)

// Torn writes and damage.
//
// A record that fails its checksum in a tail segment is one of two things.
// A torn write is the interrupted last write of a power loss: it lies past
// everything that was made durable, so nothing after it was acknowledged,
// and its bytes may be dropped. Damage is anything else (a flipped bit, a
// zeroed sector, a write that went elsewhere): bytes that were durable and
// may have been acknowledged, and the records after them are intact and
// acknowledged too. Dropping damage loses acknowledged records and lets
// their ids be handed out again, so recovery tells the two apart
// (ClassifyTail) and never drops damage.
//
// A filler frame replaces a damaged range once an operator accepted the
// loss (docs/tiering.md#damage): a frame with FillerBit set in its
// payload_len whose checksum is computed like a record's. It keeps the
// record chain walkable and the ids after it unchanged; it is not a record
// (no ordinal, never returned to readers). Readers of an older format see a
// payload_len past the segment and report corruption, never a record.

// FillerBit marks a filler frame in payload_len. Real records are far
// smaller than 2 GiB (MaxRecordSize < MaxCapacity), so the bit is free.
const FillerBit = 1 << 31

// frameLen splits a payload_len field into the payload length and whether
// the frame is a filler.
func frameLen(n uint32) (payload int64, filler bool) {
	return int64(n &^ FillerBit), n&FillerBit != 0
}

// EncodeFiller returns a filler frame of exactly span bytes (8-aligned, at
// least RecordSpan(1)) whose payload starts with note (truncated to fit).
func EncodeFiller(span int64, note []byte) ([]byte, error) {
	if span < RecordSpan(1) || span%align != 0 || span-RecordHeaderSize > MaxRecordSize(MaxCapacity) {
		return nil, fmt.Errorf("filler of %d bytes: want an 8-aligned length in [%d, %d]", span, RecordSpan(1), MaxCapacity)
	}
	b := make([]byte, span)
	payload := span - RecordHeaderSize
	encodeRecordFields(b, int(payload), -1, 0)
	le.PutUint32(b[0:], uint32(payload)|FillerBit)
	copy(b[RecordHeaderSize:], note)
	le.PutUint32(b[4:], FrameChecksum(b))
	return b, nil
}

// frameAt checks the frame at off within limit: its span and whether it is
// intact (checksum) and a filler. ok is false when no frame can start
// there (zero or overrunning payload_len).
func frameAt(b []byte, off, limit int64) (span int64, intact, filler, ok bool) {
	if off < HeaderSize || off%align != 0 || off+RecordHeaderSize > limit {
		return 0, false, false, false
	}
	h := DecodeRecordHeader(b[off:])
	n, filler := frameLen(h.PayloadLen)
	end := off + RecordHeaderSize + n
	if n == 0 || end > limit {
		return 0, false, filler, false
	}
	return RecordSpan(int(n)), FrameChecksum(b[off:end]) == h.Checksum, filler, true
}

// resyncBudget bounds the checksum work of one Resync (bytes hashed): a
// large range of garbage is not searched to its end.
const resyncBudget = 256 << 20

// Resync returns the first offset in [from, limit) where an intact frame
// starts, or ok false when there is none (or the search budget ran out:
// exhausted then says so).
func Resync(b []byte, from, limit int64) (off int64, ok, exhausted bool) {
	work := int64(0)
	for off = alignUp(max(from, HeaderSize)); off+RecordHeaderSize <= limit; off += align {
		span, intact, _, ok := frameAt(b, off, limit)
		if !ok {
			continue
		}
		if intact {
			return off, true, false
		}
		if work += span; work > resyncBudget {
			return 0, false, true
		}
	}
	return 0, false, false
}

// TailKind is what recovery may do with a tail segment's bytes past its
// intact records.
type TailKind uint8

const (
	// TailClean: nothing lies past the intact records.
	TailClean TailKind = iota
	// TailTorn: the bytes past the intact records are the interrupted last
	// write; they may be dropped.
	TailTorn
	// TailDamaged: durable bytes are damaged; nothing may be dropped.
	TailDamaged
)

func (k TailKind) String() string {
	switch k {
	case TailClean:
		return "clean"
	case TailTorn:
		return "torn"
	case TailDamaged:
		return "damaged"
	}
	return fmt.Sprintf("tail(%d)", uint8(k))
}

// TailVerdict is ClassifyTail's answer.
type TailVerdict struct {
	Kind TailKind
	// At is where the intact records end (the first bad or missing frame).
	At int64
	// Resume is the offset of the first intact frame after At (damage
	// only; 0 when none was found).
	Resume int64
	Reason string
}

// ClassifyTail decides whether the bytes past a tail scan's intact records
// are a torn write or damage. proven is the offset before which the durable
// mark proves every byte was durable (HeaderSize when nothing is proven).
//
//   - The intact records ending before proven is damage: durable records
//     are gone (a zeroed sector, a flipped header, a truncation).
//   - Past proven, a bad frame is torn when it overlaps a sector of zeros
//     (a write that never reached the disk leaves the zeros of the
//     preallocated file, which a bit flip does not) or when no intact frame
//     follows it; an intact frame after a bad one with no zero sector is
//     damage.
func ClassifyTail(b []byte, ts TailScan, proven int64) TailVerdict {
	limit := DataEnd(int64(len(b)))
	v := TailVerdict{At: ts.End}
	if ts.End < proven {
		v.Kind = TailDamaged
		v.Reason = fmt.Sprintf("intact records end at %d (%s) but the durable mark proves %d bytes", ts.End, ts.Stop, proven)
		v.Resume, _, _ = Resync(b, ts.End+align, limit)
		return v
	}
	if ts.DirtyEnd == ts.End {
		v.Kind = TailClean
		return v
	}
	if ts.End+RecordHeaderSize > limit || DecodeRecordHeader(b[ts.End:]).PayloadLen == 0 {
		// The next header is zeros: its write never reached the disk (a
		// flip does not zero a length and a checksum). Whatever follows
		// was written after it, and past proven nothing says it was
		// acknowledged.
		v.Kind, v.Reason = TailTorn, fmt.Sprintf("%s with %d bytes after it: an interrupted write", ts.Stop, ts.DirtyEnd-ts.End)
		return v
	}
	next, found, exhausted := Resync(b, ts.End+align, ts.DirtyEnd)
	frameEnd := ts.DirtyEnd
	if n, _ := frameLen(DecodeRecordHeader(b[ts.End:]).PayloadLen); ts.End+RecordSpan(int(n)) < ts.DirtyEnd {
		frameEnd = ts.End + RecordSpan(int(n))
	}
	switch {
	case hasZeroSector(b, ts.End, frameEnd):
		v.Kind, v.Reason = TailTorn, fmt.Sprintf("%s, over a sector of zeros: an interrupted write", ts.Stop)
	case !found && !exhausted:
		v.Kind, v.Reason = TailTorn, fmt.Sprintf("%s, with no intact record after it: an interrupted write", ts.Stop)
	default:
		v.Kind, v.Resume = TailDamaged, next
		v.Reason = fmt.Sprintf("%s, but an intact record follows at %d and no sector is zero: damage", ts.Stop, next)
		if exhausted {
			v.Reason = fmt.Sprintf("%s, and the %d bytes after it could not be searched for intact records: treated as damage", ts.Stop, ts.DirtyEnd-ts.End)
		}
	}
	return v
}

// sectorSize is the unit a disk writes atomically.
const sectorSize = 512

// hasZeroSector reports whether a whole, aligned sector of zeros overlaps
// [lo, hi).
func hasZeroSector(b []byte, lo, hi int64) bool {
	for s := lo / sectorSize * sectorSize; s < hi && s+sectorSize <= int64(len(b)); s += sectorSize {
		if IsZero(b[s : s+sectorSize]) {
			return true
		}
	}
	return false
}

// Intact lists the intact records of [from, limit): their offsets, and
// where the last one ends. It stops at the first bad frame. Fillers are
// stepped over.
func Intact(b []byte, from, limit int64) (offsets []uint32, end int64) {
	end = from
	for off := from; off+RecordHeaderSize <= limit; {
		span, intact, filler, ok := frameAt(b, off, limit)
		if !ok || !intact {
			break
		}
		if !filler {
			offsets = append(offsets, uint32(off))
		}
		off += span
		end = off
	}
	return offsets, end
}

// FillDamage makes the damaged tail segment at path walkable again for an
// accepted loss: every damaged range between intact records is replaced by
// a filler frame of the same length, after its original bytes are saved
// (durably) by quarantine. It returns the scan of the filled segment (its
// intact records and where they end) and the ranges it filled. Bytes past
// the last intact record are left as they are.
func FillDamage(fsys vfs.FS, path string, quarantine func(off int64, b []byte) error) (TailScan, [][2]int64, error) {
	f, b, err := openWhole(fsys, path)
	if err != nil {
		return TailScan{}, nil, err
	}
	defer f.Close()
	ts, filled, err := fillDamage(b, quarantine, fileWriter(f))
	if err != nil {
		return ts, filled, err
	}
	return ts, filled, f.Datasync()
}

// openWhole opens the segment at path for writing and reads all of it.
func openWhole(fsys vfs.FS, path string) (vfs.File, []byte, error) {
	f, err := fsys.OpenReadWrite(path)
	if err != nil {
		return nil, nil, err
	}
	size, err := f.Size()
	if err == nil {
		b := make([]byte, size)
		if _, err = f.ReadAt(b, 0); err == nil {
			return f, b, nil
		}
	}
	_ = f.Close()
	return nil, nil, err
}

// writeFunc writes p at off of the segment file (or nowhere: a dry run).
type writeFunc func(off int64, p []byte) error

func fileWriter(f vfs.File) writeFunc {
	return func(off int64, p []byte) error {
		_, err := f.WriteAt(p, off)
		return err
	}
}

func noWrite(int64, []byte) error { return nil }

// fillDamage is FillDamage on the segment's bytes b, which it changes as
// it writes them through write.
func fillDamage(b []byte, quarantine func(off int64, b []byte) error, write writeFunc) (TailScan, [][2]int64, error) {
	limit := DataEnd(int64(len(b)))
	var filled [][2]int64
	for {
		ts := ScanTail(b)
		next, ok, _ := Resync(b, ts.End+RecordSpan(1), ts.DirtyEnd)
		if !ok || ts.End+RecordHeaderSize > limit {
			return ts, filled, nil
		}
		if err := quarantine(ts.End, append([]byte(nil), b[ts.End:next]...)); err != nil {
			return ts, filled, err
		}
		fill, err := EncodeFiller(next-ts.End, []byte("AOF2 accepted loss"))
		if err != nil {
			return ts, filled, err
		}
		if err := write(ts.End, fill); err != nil {
			return ts, filled, err
		}
		copy(b[ts.End:], fill)
		filled = append(filled, [2]int64{ts.End, next})
	}
}

// SealScanned writes the footer of the segment at path for the intact
// records of ts (a scan of its bytes), with FlagLossAccepted when an
// operator accepted a loss in it (not when another copy healed it whole),
// and syncs it. Nothing else in the file changes.
func SealScanned(fsys vfs.FS, path string, h Header, ts TailScan, p SealParams, lossAccepted bool) (Footer, error) {
	f, err := fsys.OpenReadWrite(path)
	if err != nil {
		return Footer{}, err
	}
	defer f.Close()
	size, err := f.Size()
	if err != nil {
		return Footer{}, err
	}
	foot := Footer{Flags: FlagSealed, SegmentID: h.SegmentID, BaseRecord: h.BaseRecord, RecordCount: ts.Count,
		DurableBytes: uint64(ts.End), LastTimestamp: ts.LastTS, SealedAt: p.SealedAt, SegmentCRC: ts.CRC, ExtID: p.ExtID,
		CoordinatorWatermark: p.CoordinatorWatermark}
	if lossAccepted {
		foot.Flags |= FlagLossAccepted
	}
	if ts.Count > 0 {
		foot.LastRecordID = types.MakeRecordID(h.SegmentID, uint32(ts.LastOff))
	}
	var fb [FooterSize]byte
	foot.Encode(fb[:])
	if _, err := f.WriteAt(fb[:], DataEnd(size)); err != nil {
		return Footer{}, err
	}
	return foot, f.Datasync()
}

// PaddedCapacity is the smallest segment capacity that holds size bytes: a
// truncated segment is read and repaired as if it had that capacity, the
// missing bytes zero.
func PaddedCapacity(size int64) int64 {
	c := int64(MinFileCapacity)
	for c < size && c < MaxCapacity {
		c <<= 1
	}
	return c
}

// ScanTruncated scans the records of a truncated segment file (Info.Truncated)
// as if it were zero-padded to PaddedCapacity: the records wholly inside
// the file are intact, the scan stops at the first one the truncation cut.
func ScanTruncated(fsys vfs.FS, path string) (TailScan, error) {
	b, err := vfs.ReadFile(fsys, path)
	if err != nil {
		return TailScan{}, err
	}
	padded := make([]byte, PaddedCapacity(int64(len(b))))
	copy(padded, b)
	return ScanTail(padded), nil
}

// Untruncate extends a truncated segment file back to its padded capacity
// (zeros after its bytes), after quarantine saved the bytes past the
// intact records at end, and syncs it; the file is then a valid segment
// for FillDamage and SealScanned. dropped is how many bytes past end it
// quarantined and zeroed.
func Untruncate(fsys vfs.FS, path string, end int64, quarantine func(off int64, b []byte) error) (dropped int64, err error) {
	f, err := fsys.OpenReadWrite(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	size, err := f.Size()
	if err != nil {
		return 0, err
	}
	if ValidCapacity(size) {
		return 0, nil
	}
	if size > end {
		b := make([]byte, size-end)
		if _, err := f.ReadAt(b, end); err != nil {
			return 0, err
		}
		if err := quarantine(end, b); err != nil {
			return 0, err
		}
		// The cut record's bytes must not look like a frame once padded.
		if _, err := f.WriteAt(make([]byte, size-end), end); err != nil {
			return 0, err
		}
		dropped = size - end
	}
	if err := f.Truncate(PaddedCapacity(size)); err != nil {
		return 0, err
	}
	return dropped, f.Sync()
}

// Placed is a record another copy (the node WAL) holds for a segment, at
// the offset its id names.
type Placed struct {
	Offset  int64
	Payload []byte
	TS      int64
	Ext     uint64
}

// PlaceRecords puts records another copy holds back into the segment at
// path before it is sealed. ts is its scan after FillDamage and filled the
// ranges FillDamage replaced by fillers (their original bytes already
// quarantined). recs are in offset order, contiguous from the first:
//
//   - a record the segment holds intact at its offset must be the same one;
//   - records that cover the end of a filled range, from some offset in it
//     to its end, are written there instead of the filler (the rest of the
//     range stays a filler): the damage is healed from the copy;
//   - the records after the intact ones are written from where they end
//     (the bytes past them, torn or damaged, are saved by quarantine first).
//
// It stops at the first record that is none of these, and returns the new
// scan, the filled ranges left, and how many records it got through. The
// file is synced.
func PlaceRecords(fsys vfs.FS, path string, ts TailScan, filled [][2]int64, recs []Placed, quarantine func(off int64, b []byte) error) (TailScan, [][2]int64, int, error) {
	if len(recs) == 0 {
		return ts, filled, 0, nil
	}
	f, b, err := openWhole(fsys, path)
	if err != nil {
		return ts, filled, 0, err
	}
	defer f.Close()
	next, left, n, end, err := placeRecords(b, ts, filled, recs, quarantine, fileWriter(f))
	if err != nil || next == nil {
		return ts, filled, n, err
	}
	if err := f.Datasync(); err != nil {
		return ts, filled, n, err
	}
	if next.End != end {
		return ts, filled, n, fmt.Errorf("%s: records placed up to %d, but a scan ends at %d (%s)", path, end, next.End, next.Stop)
	}
	return *next, left, n, nil
}

// HealsWhole reports whether records another copy holds would heal the
// damaged tail segment b whole: after FillDamage and PlaceRecords no
// filled range would remain and its intact records would reach proven
// (what its durable mark proves). b is not changed.
func HealsWhole(b []byte, recs []Placed, proven int64) bool {
	c := bytes.Clone(b)
	ts, filled, err := fillDamage(c, func(int64, []byte) error { return nil }, noWrite)
	if err != nil {
		return false
	}
	next, left, _, end, err := placeRecords(c, ts, filled, recs, func(int64, []byte) error { return nil }, noWrite)
	if err != nil || len(left) > 0 {
		return false
	}
	if next == nil {
		return ts.End >= proven
	}
	return next.End == end && end >= proven
}

// placeRecords is PlaceRecords on the segment's bytes b, which it changes
// as it writes them through write; it returns the scan after (nil when it
// wrote nothing), the filled ranges left, how many records it got
// through, and where the intact records end.
func placeRecords(b []byte, ts TailScan, filled [][2]int64, recs []Placed, quarantine func(off int64, b []byte) error, write writeFunc) (*TailScan, [][2]int64, int, int64, error) {
	frame := func(r Placed) []byte {
		fr := make([]byte, RecordSpan(len(r.Payload)))
		EncodeRecordHeader(fr, r.Payload, r.TS, r.Ext)
		copy(fr[RecordHeaderSize:], r.Payload)
		return fr
	}
	put := func(off int64, fr []byte) error {
		if err := write(off, fr); err != nil {
			return err
		}
		copy(b[off:], fr)
		return nil
	}
	limit, end := DataEnd(int64(len(b))), ts.End
	left := slices.Clone(filled)
	wrote := false
	i := 0
recs:
	for i < len(recs) {
		r := recs[i]
		fr := frame(r)
		span := int64(len(fr))
		if r.Offset >= end {
			if r.Offset != end || end+span > limit {
				break
			}
			if end == ts.End && ts.DirtyEnd > end {
				// The bytes past the intact records, as they were.
				if err := quarantine(end, append([]byte(nil), b[end:ts.DirtyEnd]...)); err != nil {
					return nil, filled, i, ts.End, err
				}
			}
			if err := put(end, fr); err != nil {
				return nil, filled, i, ts.End, err
			}
			end += span
			wrote = true
			i++
			continue
		}
		for k, fl := range left {
			if r.Offset < fl[0] || r.Offset >= fl[1] {
				continue
			}
			// Inside a filled range: heal its end from r on, if the records
			// cover it exactly and what stays before them can be a filler.
			j, off := i, r.Offset
			for j < len(recs) && recs[j].Offset == off && off < fl[1] {
				off += RecordSpan(len(recs[j].Payload))
				j++
			}
			head := r.Offset - fl[0]
			if off != fl[1] || (head > 0 && head < RecordSpan(1)) {
				break recs
			}
			if head > 0 {
				fill, err := EncodeFiller(head, []byte("AOF2 accepted loss"))
				if err != nil {
					return nil, filled, i, ts.End, err
				}
				if err := put(fl[0], fill); err != nil {
					return nil, filled, i, ts.End, err
				}
				left[k][1] = r.Offset
			} else {
				left = slices.Delete(left, k, k+1)
			}
			for ; i < j; i++ {
				if err := put(recs[i].Offset, frame(recs[i])); err != nil {
					return nil, filled, i, ts.End, err
				}
			}
			wrote = true
			continue recs
		}
		if r.Offset+span > end || !bytes.Equal(b[r.Offset:r.Offset+span], fr) {
			break // not the record the segment holds there
		}
		i++
	}
	if !wrote {
		return nil, filled, i, ts.End, nil
	}
	next := ScanTail(b)
	return &next, left, i, end, nil
}
