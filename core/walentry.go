package core

import (
	"encoding/binary"
	"fmt"
	"math/bits"

	"github.com/aof2/aof2/core/checksum"
	"github.com/aof2/aof2/core/segment"
	"github.com/aof2/aof2/core/types"
)

// A node WAL record (docs/adr-node-wal.md) is one record of the WAL's own
// stream, so its frame checksum covers it. Layout, little-endian:
//
//	0  kind       u8 (walRecord)
//	1  capacity   u8, log2 of the capacity of the segment the record is in
//	2  reserved   [6]u8, zero
//	8  stream     u64
//	16 id         u64 (the RecordID the append returned)
//	24 timestamp  i64
//	32 ext_id     u64
//	40 payload
const (
	walEntryHeader = 40
	walRecord      = 1
)

// walEntry is one record appended through the node WAL.
type walEntry struct {
	stream StreamID
	id     RecordID
	// capacity of the segment the record went into: the size policy
	// depends on timing (what the preparer had ready), so replay opens
	// each segment at least this large.
	capacity int64
	ts       int64
	ext      uint64
	payload  []byte
}

// appendEncoded appends e's encoding to b.
func (e *walEntry) appendEncoded(b []byte) []byte {
	var h [walEntryHeader]byte
	h[0] = walRecord
	h[1] = byte(bits.Len64(uint64(e.capacity)) - 1)
	binary.LittleEndian.PutUint64(h[8:], uint64(e.stream))
	binary.LittleEndian.PutUint64(h[16:], uint64(e.id))
	binary.LittleEndian.PutUint64(h[24:], uint64(e.ts))
	binary.LittleEndian.PutUint64(h[32:], e.ext)
	return append(append(b, h[:]...), e.payload...)
}

// decodeWALEntry decodes a WAL record; the payload aliases b.
func decodeWALEntry(b []byte) (walEntry, error) {
	if len(b) < walEntryHeader+1 {
		return walEntry{}, fmt.Errorf("%w: node WAL entry of %d bytes is shorter than its header and a payload", ErrCorrupt, len(b))
	}
	if b[0] != walRecord {
		return walEntry{}, fmt.Errorf("%w: node WAL entry of unknown kind %d", ErrCorrupt, b[0])
	}
	capacity := int64(1) << (b[1] & 63)
	if !segment.ValidCapacity(capacity) || b[1] > 63 {
		return walEntry{}, fmt.Errorf("%w: node WAL entry names a segment capacity of 2^%d bytes", ErrCorrupt, b[1])
	}
	for _, x := range b[2:8] {
		if x != 0 {
			return walEntry{}, fmt.Errorf("%w: node WAL entry has non-zero reserved bytes", ErrCorrupt)
		}
	}
	e := walEntry{
		stream:   StreamID(binary.LittleEndian.Uint64(b[8:])),
		capacity: capacity,
		id:       RecordID(binary.LittleEndian.Uint64(b[16:])),
		ts:       int64(binary.LittleEndian.Uint64(b[24:])),
		ext:      binary.LittleEndian.Uint64(b[32:]),
		payload:  b[walEntryHeader:],
	}
	if e.id.Offset() == 0 {
		return walEntry{}, fmt.Errorf("%w: node WAL entry names record %s, inside no segment's records", ErrCorrupt, e.id)
	}
	return e, nil
}

// The checkpoint file says up to which WAL record every stream's segments
// hold what the WAL holds: replay starts after it. Layout: magic "AOFW",
// version u32, the WAL RecordID u64, a CRC-64/NVME of the first 16 bytes.
const (
	walCheckpointFile = "checkpoint"
	walCheckpointSize = 24
	walCheckpointVer  = 1
)

func encodeWALCheckpoint(id RecordID) []byte {
	b := make([]byte, walCheckpointSize)
	copy(b, "AOFW")
	binary.LittleEndian.PutUint32(b[4:], walCheckpointVer)
	binary.LittleEndian.PutUint64(b[8:], uint64(id))
	binary.LittleEndian.PutUint64(b[16:], checksum.Sum64(b[:16]))
	return b
}

func decodeWALCheckpoint(b []byte) (RecordID, error) {
	switch {
	case len(b) != walCheckpointSize || string(b[:4]) != "AOFW":
		return 0, fmt.Errorf("%w: node WAL checkpoint is not a checkpoint file (%d bytes)", ErrCorrupt, len(b))
	case binary.LittleEndian.Uint64(b[16:]) != checksum.Sum64(b[:16]):
		return 0, fmt.Errorf("%w: node WAL checkpoint fails its checksum", ErrCorrupt)
	case binary.LittleEndian.Uint32(b[4:]) != walCheckpointVer:
		return 0, fmt.Errorf("%w: node WAL checkpoint version %d", ErrCorrupt, binary.LittleEndian.Uint32(b[4:]))
	}
	return types.RecordID(binary.LittleEndian.Uint64(b[8:])), nil
}
