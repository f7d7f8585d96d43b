package manifest

import (
	"bytes"
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/aof2/aof2/core/checksum"
	"github.com/aof2/aof2/core/types"
)

// Chunk file layout. All integers little-endian.
//
//	 0               8       12      16              24              32
//	 +---------------+-------+-------+---------------+---------------+
//	 | magic         |version|hdr_len| chunk_index   | base_record   |
//	 | "AOF2MLOG"    |  = 1  |  = 64 |               |               |
//	 +---------------+-------+-------+---------------+---------------+
//	32              40              48              56              64
//	 +---------------+---------------+---------------+---------------+
//	 | tail_offset   | committed_len | chunk_crc64   | flags         |
//	 +---------------+---------------+---------------+---------------+
//	64
//	 +--------------------------------------------------------------+
//	 | record | record | ... | record |  uncommitted / zero fill ...  |
//	 +--------------------------------------------------------------+
//	 ^64                              ^committed_len      ^capacity
//
//	magic          the ASCII bytes AOF2MLOG, in file order
//	base_record    ordinal (0-based, per stream) of the chunk's first record
//	tail_offset    offset of the last committed record's header (64 when
//	               the chunk holds no committed record)
//	committed_len  end of the committed records; always 8-aligned
//	chunk_crc64    CRC-64/NVME over [64, committed_len)
//	flags          bit 0 sealed (read-only), bit 1 uploaded to tier 2;
//	               other bits must be zero
//
// The header is rewritten in place by every commit, after the records it
// covers have been made durable; it lies in the first 512-byte sector, so a
// crash leaves either the old or the new header. The header carries no CRC of
// its own: every field is cross-checked instead (committed_len against the
// file size and chunk_crc64, tail_offset against the record walk, chunk_index
// against the file name, base_record against the previous chunk).
//
// Record frame, 8-aligned within the chunk:
//
//	 0       2       4               8               16              24
//	 +-------+-------+---------------+---------------+---------------+
//	 | type  | flags | payload_len   | segment_id    | logical_offset|
//	 | u16   | u16=0 | u32 > 0       | u64           | u64           |
//	 +-------+-------+---------------+---------------+---------------+
//	24              32              40
//	 +---------------+---------------+------------------------+-----+
//	 | timestamp_ms  | payload_crc64 | payload (payload_len)  | pad |
//	 +---------------+---------------+------------------------+-----+
//	                                                 pad to 8, zero
//
// payload_crc64 is CRC-64/NVME over frame bytes [0, 32) followed by the
// payload: it covers the header fields as well, so each record verifies on
// its own and a damaged chunk can be replayed exactly up to its first bad
// record.

const (
	chunkMagic      = "AOF2MLOG"
	chunkVersion    = 1
	chunkHeaderLen  = ChunkHeaderLen
	recordHeaderLen = 40
)

// ChunkHeaderLen is the offset of a chunk's first record: a snapshot
// positioned there holds the state at the end of the chunk before.
const ChunkHeaderLen = 64

// ChunkFlags are the flag bits of a chunk header.
type ChunkFlags uint64

// Chunk flags.
const (
	FlagSealed   ChunkFlags = 1 << 0
	FlagUploaded ChunkFlags = 1 << 1

	knownChunkFlags = FlagSealed | FlagUploaded
)

// Sealed reports bit 0.
func (f ChunkFlags) Sealed() bool { return f&FlagSealed != 0 }

// Uploaded reports bit 1.
func (f ChunkFlags) Uploaded() bool { return f&FlagUploaded != 0 }

func (f ChunkFlags) String() string {
	var parts []string
	if f.Sealed() {
		parts = append(parts, "sealed")
	}
	if f.Uploaded() {
		parts = append(parts, "uploaded")
	}
	if rest := f &^ knownChunkFlags; rest != 0 {
		parts = append(parts, "0x"+strconv.FormatUint(uint64(rest), 16))
	}
	if len(parts) == 0 {
		return "active"
	}
	return strings.Join(parts, "|")
}

// MarshalText implements encoding.TextMarshaler.
func (f ChunkFlags) MarshalText() ([]byte, error) { return []byte(f.String()), nil }

// ChunkHeader is the decoded 64-byte header of a chunk file.
type ChunkHeader struct {
	Index        uint64     `json:"index"`
	BaseRecord   uint64     `json:"base_record"`
	TailOffset   uint64     `json:"tail_offset"`
	CommittedLen uint64     `json:"committed_len"`
	CRC64        Hex64      `json:"crc"`
	Flags        ChunkFlags `json:"flags"`
}

// marshal encodes h.
func (h ChunkHeader) marshal() []byte {
	b := make([]byte, 0, chunkHeaderLen)
	b = append(b, chunkMagic...)
	b = le.AppendUint32(b, chunkVersion)
	b = le.AppendUint32(b, chunkHeaderLen)
	b = le.AppendUint64(b, h.Index)
	b = le.AppendUint64(b, h.BaseRecord)
	b = le.AppendUint64(b, h.TailOffset)
	b = le.AppendUint64(b, h.CommittedLen)
	b = le.AppendUint64(b, uint64(h.CRC64))
	return le.AppendUint64(b, uint64(h.Flags))
}

// decodeChunkHeader decodes and checks the fields of a chunk header that can
// be checked without the rest of the file.
func decodeChunkHeader(b []byte) (ChunkHeader, error) {
	if err := checkPreamble(b, "chunk header", chunkMagic, chunkVersion, chunkHeaderLen, chunkHeaderLen); err != nil {
		return ChunkHeader{}, err
	}
	h := ChunkHeader{
		Index:        le.Uint64(b[16:]),
		BaseRecord:   le.Uint64(b[24:]),
		TailOffset:   le.Uint64(b[32:]),
		CommittedLen: le.Uint64(b[40:]),
		CRC64:        Hex64(le.Uint64(b[48:])),
		Flags:        ChunkFlags(le.Uint64(b[56:])),
	}
	switch {
	case h.Flags&^knownChunkFlags != 0:
		return h, corruptf("chunk header: unknown flags %s", h.Flags)
	case h.Flags.Uploaded() && !h.Flags.Sealed():
		return h, corruptf("chunk header: uploaded flag on an unsealed chunk")
	case h.CommittedLen < chunkHeaderLen || h.CommittedLen > MaxChunkCapacity || h.CommittedLen%8 != 0:
		return h, corruptf("chunk header: committed_len %d outside [%d, %d] or unaligned", h.CommittedLen, chunkHeaderLen, MaxChunkCapacity)
	case h.CommittedLen == chunkHeaderLen && h.TailOffset != chunkHeaderLen:
		return h, corruptf("chunk header: empty chunk with tail_offset %d", h.TailOffset)
	case h.CommittedLen > chunkHeaderLen && (h.TailOffset < chunkHeaderLen || h.TailOffset > h.CommittedLen-recordHeaderLen-8 || h.TailOffset%8 != 0):
		return h, corruptf("chunk header: tail_offset %d inconsistent with committed_len %d", h.TailOffset, h.CommittedLen)
	case h.CommittedLen == chunkHeaderLen && h.CRC64 != 0:
		return h, corruptf("chunk header: empty chunk with crc %s", h.CRC64)
	case h.BaseRecord > math.MaxUint64-MaxChunkCapacity:
		return h, corruptf("chunk header: base_record %d out of range", h.BaseRecord)
	}
	return h, nil
}

// frameSize is the size of a record frame with an n-byte payload.
func frameSize(n int) int64 { return recordHeaderLen + align8(int64(n)) }

// appendRecord appends the frame of rec to dst.
func appendRecord(dst []byte, rec Record) ([]byte, error) {
	if err := rec.validate(); err != nil {
		return dst, err
	}
	n := rec.payloadLen()
	if n == 0 {
		return dst, ErrEmptyRecord
	}
	start := len(dst)
	dst = le.AppendUint16(dst, uint16(rec.Type()))
	dst = le.AppendUint16(dst, 0)
	dst = le.AppendUint32(dst, uint32(n))
	h := rec.GetHeader()
	dst = le.AppendUint64(dst, uint64(h.SegmentID))
	dst = le.AppendUint64(dst, h.LogicalOffset)
	dst = le.AppendUint64(dst, h.TimestampMS)
	dst = le.AppendUint64(dst, 0) // crc, filled below
	dst = rec.appendPayload(dst)
	if got := len(dst) - start - recordHeaderLen; got != n {
		panic(fmt.Sprintf("manifest: %s encoded %d payload bytes, declared %d", rec.Type(), got, n))
	}
	crc := checksum.Update(checksum.Sum64(dst[start:start+32]), dst[start+recordHeaderLen:])
	le.PutUint64(dst[start+32:], crc)
	for pad := align8(int64(n)) - int64(n); pad > 0; pad-- {
		dst = append(dst, 0)
	}
	return dst, nil
}

// frame is a decoded record frame; payload aliases the input.
type frame struct {
	typ     RecordType
	hdr     Header
	crc     uint64
	payload []byte
	size    int64 // header + payload + padding
}

// decodeFrame decodes the frame at the start of b, where b ends at the end
// of the committed region, and verifies its CRC and padding.
func decodeFrame(b []byte) (frame, error) {
	if len(b) < recordHeaderLen {
		return frame{}, corruptf("record header: %d bytes left, want %d", len(b), recordHeaderLen)
	}
	f := frame{
		typ: RecordType(le.Uint16(b[0:])),
		hdr: Header{SegmentID: types.SegmentID(le.Uint64(b[8:])), LogicalOffset: le.Uint64(b[16:]), TimestampMS: le.Uint64(b[24:])},
		crc: le.Uint64(b[32:]),
	}
	if flags := le.Uint16(b[2:]); flags != 0 {
		return f, corruptf("record header: flags 0x%04x, want 0", flags)
	}
	n := int64(le.Uint32(b[4:]))
	if n == 0 {
		return f, fmt.Errorf("%w: record header: %w", ErrCorrupt, ErrEmptyRecord)
	}
	f.size = frameSize(int(n))
	if f.size > int64(len(b)) {
		return f, corruptf("record header: payload_len %d overruns the %d committed bytes left", n, len(b)-recordHeaderLen)
	}
	f.payload = b[recordHeaderLen : recordHeaderLen+n]
	if got := checksum.Update(checksum.Sum64(b[:32]), f.payload); got != f.crc {
		return f, corruptf("record %s: payload_crc64 %016x, computed %016x", f.typ, f.crc, got)
	}
	for _, c := range b[recordHeaderLen+n : f.size] {
		if c != 0 {
			return f, corruptf("record %s: non-zero padding", f.typ)
		}
	}
	return f, nil
}

// decodeRecord decodes the frame at the start of b into a typed record.
func decodeRecord(b []byte) (Record, int64, error) {
	f, err := decodeFrame(b)
	if err != nil {
		return nil, 0, err
	}
	rec, err := decodePayload(f.typ, f.hdr, f.payload)
	if err != nil {
		return nil, 0, err
	}
	return rec, f.size, nil
}

// tailExtent measures the uncommitted bytes that follow a committed region:
// b is the file from the end of the committed region on. It walks whatever
// record frames still parse (their CRCs may not match: they were never
// committed), then extends over any non-zero bytes left (a torn frame),
// rounded up to 8. Files are zero-filled, so the result is the extent of
// what a crashed commit wrote.
func tailExtent(b []byte) int64 {
	var off int64
	for int64(len(b))-off >= recordHeaderLen {
		n := int64(le.Uint32(b[off+4:]))
		if n == 0 || le.Uint16(b[off+2:]) != 0 {
			break
		}
		size := frameSize(int(n))
		if size > int64(len(b))-off {
			break
		}
		off += size
	}
	if last := lastNonZero(b[off:]); last >= 0 {
		off = min(align8(off+int64(last)+1), int64(len(b)))
	}
	return off
}

var zeroPage [4096]byte

// lastNonZero returns the index of the last non-zero byte of b, or -1. It
// skips zero pages with a vectorised compare: chunks are mostly zero fill.
func lastNonZero(b []byte) int {
	end := len(b)
	for end >= len(zeroPage) && bytes.Equal(b[end-len(zeroPage):end], zeroPage[:]) {
		end -= len(zeroPage)
	}
	for i := end - 1; i >= 0; i-- {
		if b[i] != 0 {
			return i
		}
	}
	return -1
}
