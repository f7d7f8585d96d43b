package tier1

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/aof2/aof2/core/segment"
	"github.com/aof2/aof2/core/types"
)

// Record is one record read from an artifact. Payload is owned by the
// caller.
type Record struct {
	Offset    int64
	Timestamp int64
	ExtID     uint64
	Payload   []byte
}

// Next returns the offset of the record after r.
func (r *Record) Next() int64 { return r.Offset + segment.RecordSpan(len(r.Payload)) }

// ReadRecord reads and verifies the record at off (a RecordID's offset) of
// the segment held in a, fetching only the frames the record spans: a
// point read of a cold segment. limit is the segment's durable_bytes (from
// the manifest or Footer); off at or past it gives types.ErrNotFound.
func (a *Artifact) ReadRecord(off, limit int64) (Record, error) {
	if off >= limit {
		return Record{}, fmt.Errorf("tier1: %s offset %d: %w", a.name, off, types.ErrNotFound)
	}
	if limit > segment.DataEnd(a.rawSize) || off < segment.HeaderSize || off%8 != 0 || off+segment.RecordHeaderSize > limit {
		return Record{}, fmt.Errorf("tier1: %s offset %d (limit %d): %w", a.name, off, limit, types.ErrInvalidRecordID)
	}
	var hb [segment.RecordHeaderSize]byte
	if _, err := a.ReadAt(hb[:], off); err != nil {
		return Record{}, eofCorrupt(a, err)
	}
	raw := binary.LittleEndian.Uint32(hb[0:])
	if raw&segment.FillerBit != 0 {
		return Record{}, fmt.Errorf("tier1: %s offset %d is a filler over an accepted loss, not a record: %w", a.name, off, types.ErrInvalidRecordID)
	}
	n := int64(raw)
	if n == 0 || off+segment.RecordHeaderSize+n > limit {
		return Record{}, &types.CorruptError{Path: a.name, Offset: off, Reason: fmt.Sprintf("payload_len %d overruns the written area", n)}
	}
	payload := make([]byte, n)
	if _, err := a.ReadAt(payload, off+segment.RecordHeaderSize); err != nil {
		return Record{}, eofCorrupt(a, err)
	}
	h := segment.DecodeRecordHeader(hb[:])
	if segment.RecordChecksum(hb[:], payload) != h.Checksum {
		return Record{}, &types.CorruptError{Path: a.name, Offset: off, Reason: "record checksum mismatch"}
	}
	return Record{Offset: off, Timestamp: h.Timestamp, ExtID: h.ExtID, Payload: payload}, nil
}

func eofCorrupt(a *Artifact, err error) error {
	if errors.Is(err, io.EOF) {
		return corrupt(a.name, -1, "read past the end of the segment")
	}
	return err
}
