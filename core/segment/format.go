package segment

import (
	"encoding/binary"
	"fmt"
	"math/bits"
	"strconv"
	"strings"

	"github.com/aof2/aof2/core/checksum"
	"github.com/aof2/aof2/core/types"
)

// Layout constants.
const (
	HeaderSize       = 64
	FooterSize       = 96
	RecordHeaderSize = 24
	Version          = 1
	// MinFileCapacity and MaxCapacity bound a segment file's size (its
	// capacity), a power of two: what a reader accepts. A stream starts
	// with small segments and doubles them up to the configured segment
	// size, so files of different capacities follow each other.
	MinFileCapacity = 64 << 10
	MaxCapacity     = 1 << 30
	// MinCapacity is the smallest configurable segment size (the capacity
	// a stream's segments grow to; ValidSegmentSize).
	MinCapacity = 1 << 20
	// DefaultCapacity is the default segment size.
	DefaultCapacity = 64 << 20
	align           = 8
)

const (
	headerMagic  = "AOF2SEGM"
	footerMagic  = "AOF2FOOT"
	pointerMagic = "AOF2PTR1"
)

// Footer flags.
const (
	FlagSealed       uint32 = 1 << 0
	FlagFlushFailure uint32 = 1 << 1
	// FlagLossAccepted: an operator accepted the loss of damaged records
	// in this segment; filler frames cover them (damage.go).
	FlagLossAccepted uint32 = 1 << 2
)

var le = binary.LittleEndian

// ValidCapacity reports whether c is a valid segment file size: a power
// of two in [MinFileCapacity, MaxCapacity].
func ValidCapacity(c int64) bool {
	return c >= MinFileCapacity && c <= MaxCapacity && bits.OnesCount64(uint64(c)) == 1
}

// ValidSegmentSize reports whether c is a valid configured segment size:
// a power of two in [MinCapacity, MaxCapacity].
func ValidSegmentSize(c int64) bool { return c >= MinCapacity && ValidCapacity(c) }

// CapacityFor returns the smallest valid capacity whose segment holds a
// record with an n-byte payload.
func CapacityFor(n int) int64 {
	need := HeaderSize + RecordSpan(n) + FooterSize
	c := int64(MinFileCapacity)
	for c < need && c < MaxCapacity {
		c <<= 1
	}
	return c
}

// MaxRecordSize returns the largest payload a segment of capacity c holds.
func MaxRecordSize(c int64) int64 { return c - HeaderSize - FooterSize - RecordHeaderSize }

// RecordSpan returns the bytes a record with an n-byte payload occupies,
// padding included.
func RecordSpan(n int) int64 { return alignUp(RecordHeaderSize + int64(n)) }

// DataEnd is the offset where the footer of a segment of capacity c begins;
// records end at or before it.
func DataEnd(c int64) int64 { return c - FooterSize }

func alignUp(n int64) int64 { return (n + align - 1) &^ (align - 1) }

// Header is the segment header.
type Header struct {
	StreamID   types.StreamID
	SegmentID  types.SegmentID
	BaseOffset uint64 // stream bytes (record spans) before this segment
	BaseRecord uint64 // records before this segment
	CreatedAt  int64  // unix ns
	ExtID      uint64
}

// Encode writes h into b[:HeaderSize].
func (h *Header) Encode(b []byte) {
	_ = b[HeaderSize-1]
	copy(b[0:8], headerMagic)
	le.PutUint32(b[8:], Version)
	le.PutUint32(b[12:], HeaderSize)
	le.PutUint64(b[16:], uint64(h.StreamID))
	le.PutUint64(b[24:], uint64(h.SegmentID))
	le.PutUint64(b[32:], h.BaseOffset)
	le.PutUint64(b[40:], h.BaseRecord)
	le.PutUint64(b[48:], uint64(h.CreatedAt))
	le.PutUint64(b[56:], h.ExtID)
}

// IsZero reports whether b (a header's bytes) was never written.
func IsZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

// DecodeHeader parses and validates a header.
func DecodeHeader(b []byte) (Header, error) {
	if len(b) < HeaderSize {
		return Header{}, fmt.Errorf("header: %d bytes, need %d", len(b), HeaderSize)
	}
	if string(b[0:8]) != headerMagic {
		return Header{}, fmt.Errorf("header: bad magic %q", b[0:8])
	}
	if v := le.Uint32(b[8:]); v != Version {
		return Header{}, fmt.Errorf("header: unsupported version %d", v)
	}
	if n := le.Uint32(b[12:]); n != HeaderSize {
		return Header{}, fmt.Errorf("header: header_len %d, want %d", n, HeaderSize)
	}
	h := Header{
		StreamID:   types.StreamID(le.Uint64(b[16:])),
		SegmentID:  types.SegmentID(le.Uint64(b[24:])),
		BaseOffset: le.Uint64(b[32:]),
		BaseRecord: le.Uint64(b[40:]),
		CreatedAt:  int64(le.Uint64(b[48:])),
		ExtID:      le.Uint64(b[56:]),
	}
	if h.SegmentID == 0 || h.SegmentID > types.MaxSegmentID {
		return Header{}, fmt.Errorf("header: segment_id %d out of range", h.SegmentID)
	}
	return h, nil
}

// Footer is the seal record at the fixed tail of a segment.
type Footer struct {
	Flags                uint32
	SegmentID            types.SegmentID
	BaseRecord           uint64
	RecordCount          uint64
	DurableBytes         uint64 // end of the last record, from file start
	LastRecordID         types.RecordID
	LastTimestamp        int64
	SealedAt             int64
	SegmentCRC           uint64 // CRC-64/NVME over [0, DurableBytes)
	ExtID                uint64
	CoordinatorWatermark uint64
}

// Encode writes f into b[:FooterSize].
func (f *Footer) Encode(b []byte) {
	_ = b[FooterSize-1]
	copy(b[0:8], footerMagic)
	le.PutUint32(b[8:], Version)
	le.PutUint32(b[12:], f.Flags)
	le.PutUint64(b[16:], uint64(f.SegmentID))
	le.PutUint64(b[24:], f.BaseRecord)
	le.PutUint64(b[32:], f.RecordCount)
	le.PutUint64(b[40:], f.DurableBytes)
	le.PutUint64(b[48:], uint64(f.LastRecordID))
	le.PutUint64(b[56:], uint64(f.LastTimestamp))
	le.PutUint64(b[64:], uint64(f.SealedAt))
	le.PutUint64(b[72:], f.SegmentCRC)
	le.PutUint64(b[80:], f.ExtID)
	le.PutUint64(b[88:], f.CoordinatorWatermark)
}

// DecodeFooter parses a footer and validates it structurally against a
// segment of the given capacity. It does not look at records; see
// Segment.CheckFooter for the cross-check against the last record.
func DecodeFooter(b []byte, capacity int64) (Footer, error) {
	if len(b) < FooterSize {
		return Footer{}, fmt.Errorf("footer: %d bytes, need %d", len(b), FooterSize)
	}
	if string(b[0:8]) != footerMagic {
		return Footer{}, fmt.Errorf("footer: bad magic %q", b[0:8])
	}
	if v := le.Uint32(b[8:]); v != Version {
		return Footer{}, fmt.Errorf("footer: unsupported version %d", v)
	}
	f := Footer{
		Flags:                le.Uint32(b[12:]),
		SegmentID:            types.SegmentID(le.Uint64(b[16:])),
		BaseRecord:           le.Uint64(b[24:]),
		RecordCount:          le.Uint64(b[32:]),
		DurableBytes:         le.Uint64(b[40:]),
		LastRecordID:         types.RecordID(le.Uint64(b[48:])),
		LastTimestamp:        int64(le.Uint64(b[56:])),
		SealedAt:             int64(le.Uint64(b[64:])),
		SegmentCRC:           le.Uint64(b[72:]),
		ExtID:                le.Uint64(b[80:]),
		CoordinatorWatermark: le.Uint64(b[88:]),
	}
	if f.Flags&FlagSealed == 0 {
		return Footer{}, fmt.Errorf("footer: sealed flag not set")
	}
	if f.Flags&^(FlagSealed|FlagFlushFailure|FlagLossAccepted) != 0 {
		return Footer{}, fmt.Errorf("footer: unknown flags %#x", f.Flags)
	}
	if f.DurableBytes < HeaderSize || f.DurableBytes > uint64(DataEnd(capacity)) || f.DurableBytes%align != 0 {
		return Footer{}, fmt.Errorf("footer: durable_bytes %d outside [%d, %d] or unaligned", f.DurableBytes, HeaderSize, DataEnd(capacity))
	}
	maxRecords := (f.DurableBytes - HeaderSize) / uint64(RecordSpan(1))
	switch {
	case f.RecordCount == 0 && f.DurableBytes != HeaderSize && f.Flags&FlagLossAccepted == 0:
		// An accepted loss may keep bytes with no record left in them.
		return Footer{}, fmt.Errorf("footer: no records but durable_bytes %d", f.DurableBytes)
	case f.RecordCount == 0 && f.LastRecordID != 0:
		return Footer{}, fmt.Errorf("footer: no records but last_record_id %s", f.LastRecordID)
	case f.RecordCount > maxRecords:
		return Footer{}, fmt.Errorf("footer: record_count %d cannot fit in %d bytes", f.RecordCount, f.DurableBytes)
	case f.RecordCount > 0 && (f.LastRecordID.Segment() != f.SegmentID ||
		int64(f.LastRecordID.Offset()) < HeaderSize || uint64(f.LastRecordID.Offset())+uint64(RecordSpan(1)) > f.DurableBytes):
		return Footer{}, fmt.Errorf("footer: last_record_id %s inconsistent with segment %d and durable_bytes %d", f.LastRecordID, f.SegmentID, f.DurableBytes)
	}
	return f, nil
}

// RecordHeader is the 24-byte header in front of each payload.
type RecordHeader struct {
	PayloadLen uint32
	Checksum   uint32
	Timestamp  int64
	ExtID      uint64
}

// EncodeRecordHeader writes the header of a record with the given payload
// into b[:RecordHeaderSize], checksum included.
func EncodeRecordHeader(b []byte, payload []byte, ts int64, ext uint64) {
	encodeRecordFields(b, len(payload), ts, ext)
	le.PutUint32(b[4:], RecordChecksum(b, payload))
}

// encodeRecordFields writes every header field but the checksum.
func encodeRecordFields(b []byte, n int, ts int64, ext uint64) {
	_ = b[RecordHeaderSize-1]
	le.PutUint32(b[0:], uint32(n))
	le.PutUint32(b[4:], 0)
	le.PutUint64(b[8:], uint64(ts))
	le.PutUint64(b[16:], ext)
}

// RecordChecksum computes the record checksum from an encoded header (its
// checksum field is ignored) and the payload.
func RecordChecksum(hdr []byte, payload []byte) uint32 {
	var buf [20]byte
	copy(buf[0:4], hdr[0:4])
	copy(buf[4:20], hdr[8:24])
	return checksum.Fold32(checksum.Update(checksum.Sum64(buf[:]), payload))
}

// FrameChecksum computes the checksum of a record lying contiguously in
// rec (header then payload, rec = the whole unpadded frame). It equals
// RecordChecksum but feeds the checksum the one contiguous run
// [8, 24+payload_len) in a single call: fewer bytes go through the
// library's byte-wise path, which dominates for small records.
func FrameChecksum(rec []byte) uint32 {
	return checksum.Fold32(checksum.Update(checksum.Sum64(rec[0:4]), rec[8:]))
}

// DecodeRecordHeader parses a record header without verifying the payload.
func DecodeRecordHeader(b []byte) RecordHeader {
	return RecordHeader{
		PayloadLen: le.Uint32(b[0:]),
		Checksum:   le.Uint32(b[4:]),
		Timestamp:  int64(le.Uint64(b[8:])),
		ExtID:      le.Uint64(b[16:]),
	}
}

// Pointer is the content of segments/current.sealed: the last sealed segment.
type Pointer struct {
	SegmentID            types.SegmentID
	DurableBytes         uint64
	CoordinatorWatermark uint64
}

// PointerSize is the encoded size of a Pointer.
const PointerSize = 8 + 8 + 8 + 8 + 8

// Encode returns the encoded pointer, checksum included.
func (p *Pointer) Encode() []byte {
	b := make([]byte, PointerSize)
	copy(b[0:8], pointerMagic)
	le.PutUint64(b[8:], uint64(p.SegmentID))
	le.PutUint64(b[16:], p.DurableBytes)
	le.PutUint64(b[24:], p.CoordinatorWatermark)
	le.PutUint64(b[32:], checksum.Sum64(b[:32]))
	return b
}

// DecodePointer parses and verifies a pointer file.
func DecodePointer(b []byte) (Pointer, error) {
	if len(b) != PointerSize {
		return Pointer{}, fmt.Errorf("pointer: %d bytes, want %d", len(b), PointerSize)
	}
	if string(b[0:8]) != pointerMagic {
		return Pointer{}, fmt.Errorf("pointer: bad magic %q", b[0:8])
	}
	if got, want := checksum.Sum64(b[:32]), le.Uint64(b[32:]); got != want {
		return Pointer{}, fmt.Errorf("pointer: checksum %#x, stored %#x", got, want)
	}
	return Pointer{
		SegmentID:            types.SegmentID(le.Uint64(b[8:])),
		DurableBytes:         le.Uint64(b[16:]),
		CoordinatorWatermark: le.Uint64(b[24:]),
	}, nil
}

// FileName returns the name of a segment file.
func FileName(seg types.SegmentID, baseOffset uint64, createdAt int64) string {
	return fmt.Sprintf("%020d_%020d_%020d.seg", seg, baseOffset, createdAt)
}

// Name is a parsed segment file name.
type Name struct {
	SegmentID  types.SegmentID
	BaseOffset uint64
	CreatedAt  int64
}

// ParseFileName parses a name produced by FileName.
func ParseFileName(name string) (Name, bool) {
	base, ok := strings.CutSuffix(name, ".seg")
	if !ok {
		return Name{}, false
	}
	parts := strings.Split(base, "_")
	if len(parts) != 3 {
		return Name{}, false
	}
	var v [3]uint64
	for i, p := range parts {
		if len(p) != 20 {
			return Name{}, false
		}
		n, err := strconv.ParseUint(p, 10, 64)
		if err != nil {
			return Name{}, false
		}
		v[i] = n
	}
	if v[0] == 0 || v[0] > uint64(types.MaxSegmentID) || v[2] > 1<<63-1 {
		return Name{}, false
	}
	return Name{SegmentID: types.SegmentID(v[0]), BaseOffset: v[1], CreatedAt: int64(v[2])}, true
}

// PointerFile is the name of the pointer file in a segments directory.
const PointerFile = "current.sealed"
