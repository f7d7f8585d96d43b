package segment

import (
	"fmt"

	"github.com/aof2/aof2/core/types"
)

// Record is one decoded record. Payload aliases the segment's memory and is
// valid while the segment stays mapped.
type Record struct {
	Offset    int64
	Timestamp int64
	ExtID     uint64
	Payload   []byte
}

// Next returns the offset of the record after r.
func (r *Record) Next() int64 { return r.Offset + RecordSpan(len(r.Payload)) }

// ReadRecord decodes and verifies the record at off in b, a segment's bytes
// of which [0, limit) are known to hold complete frames, stepping over
// filler frames (a reader walking the chain gets the next record). It
// returns ErrCorrupt (with the path for context) when the frame at off is
// not intact, and ErrNotFound when no record lies at or after off within
// limit.
func ReadRecord(b []byte, path string, off, limit int64) (Record, error) {
	for {
		if off >= limit {
			return Record{}, fmt.Errorf("%s offset %d: %w", path, off, types.ErrNotFound)
		}
		if off < HeaderSize || off%align != 0 || off+RecordHeaderSize > limit {
			return Record{}, &types.CorruptError{Path: path, Offset: off, Reason: "record header outside the written area"}
		}
		h := DecodeRecordHeader(b[off:])
		n, filler := frameLen(h.PayloadLen)
		end := off + RecordHeaderSize + n
		if n == 0 || end > limit {
			return Record{}, &types.CorruptError{Path: path, Offset: off, Reason: fmt.Sprintf("payload_len %d overruns the written area", h.PayloadLen)}
		}
		if FrameChecksum(b[off:end]) != h.Checksum {
			return Record{}, &types.CorruptError{Path: path, Offset: off, Reason: "record checksum mismatch"}
		}
		if filler {
			off += RecordSpan(int(n))
			continue
		}
		return Record{Offset: off, Timestamp: h.Timestamp, ExtID: h.ExtID, Payload: b[off+RecordHeaderSize : end]}, nil
	}
}

// Hop returns the offset of the frame after the one at off using only its
// length field, and whether the frame at off is a record (not a filler).
// It is for walking from a sparse index entry to a target; it does not
// verify checksums. ok is false when the header at off cannot be the start
// of a frame within limit.
func Hop(b []byte, off, limit int64) (next int64, record, ok bool) {
	if off < HeaderSize || off+RecordHeaderSize > limit {
		return 0, false, false
	}
	n, filler := frameLen(le.Uint32(b[off:]))
	next = off + RecordSpan(int(n))
	if n == 0 || next > alignUp(limit) {
		return 0, false, false
	}
	return next, !filler, true
}

// Locate walks from the index entry before off to off. It returns the
// record's ordinal within the segment, ErrInvalidRecordID when off does not
// start a record, or ErrNotFound when off is at or past limit.
func Locate(b []byte, ix *Index, path string, off, limit int64) (uint64, error) {
	if off >= limit {
		return 0, fmt.Errorf("%s offset %d past end %d: %w", path, off, limit, types.ErrNotFound)
	}
	if off < HeaderSize || off%align != 0 {
		return 0, fmt.Errorf("%s offset %d: %w", path, off, types.ErrInvalidRecordID)
	}
	e := ix.SeekOffset(off)
	cur, ord := int64(e.Offset), uint64(e.Ordinal)
	record := true
	for cur < off {
		next, rec, ok := Hop(b, cur, limit)
		if !ok {
			return 0, &types.CorruptError{Path: path, Offset: cur, Reason: "broken record chain"}
		}
		if rec {
			ord++
		}
		cur = next
	}
	if cur == off && cur < limit {
		_, record, _ = Hop(b, cur, limit)
	}
	if cur != off || !record {
		return 0, fmt.Errorf("%s offset %d is not the start of a record: %w", path, off, types.ErrInvalidRecordID)
	}
	return ord, nil
}

// LocateOrdinal returns the offset of the record with in-segment ordinal
// ord. The caller guarantees ord is below the segment's record count within
// limit.
func LocateOrdinal(b []byte, ix *Index, path string, ord uint64, limit int64) (int64, error) {
	e := ix.SeekOrdinal(ord)
	cur, n := int64(e.Offset), uint64(e.Ordinal)
	for {
		if cur >= limit && n == ord {
			return cur, nil // the position after the last record
		}
		next, rec, ok := Hop(b, cur, limit)
		if !ok {
			return 0, &types.CorruptError{Path: path, Offset: cur, Reason: "broken record chain"}
		}
		if rec {
			if n == ord {
				return cur, nil
			}
			n++
		}
		cur = next
	}
}

// BuildIndex walks the record chain of [HeaderSize, limit) and returns its
// sparse index.
func BuildIndex(b []byte, path string, limit int64) (*Index, error) {
	ix := NewIndex()
	var ord uint64
	for cur := int64(HeaderSize); cur < limit; {
		next, rec, ok := Hop(b, cur, limit)
		if !ok {
			return nil, &types.CorruptError{Path: path, Offset: cur, Reason: "broken record chain"}
		}
		if rec {
			ix.Add(cur, ord)
			ord++
		}
		cur = next
	}
	return ix, nil
}
