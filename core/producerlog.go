package core

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/aof2/aof2/core/checksum"
	"github.com/aof2/aof2/core/segment"
)

// The producer log (producers.log in the stream's directory) is what makes
// idempotent appends survive a restart: one entry per idempotent request,
// written and synced before the request's records are stored, naming the
// ids they take. Layout (docs/formats.md#producer-log):
//
//	header: magic "AOF2PROD" | version u32 (1) | reserved u32 (0)
//	entry:  body_len u32 | checksum u32 | body
//	body:   producer u64 | seq u64 | records u32 | fingerprint u32 | count u32 | ids u64 × count
//
// The checksum is fold32(CRC-64/NVME) of the body, as a segment record's.
const (
	producerLogName    = "producers.log"
	producerLogMagic   = "AOF2PROD"
	producerLogVersion = 1
	producerHeaderSize = 16
	producerFrameSize  = 8
	producerBodyFixed  = 28
	// maxProducerIDs bounds one entry: no request takes more records than
	// its bytes allow (maxProducerBatchBytes / the smallest record span).
	maxProducerIDs = maxProducerBatchBytes / 32
)

// errProducerLogCorrupt marks a producer log whose damage is not a torn
// tail: an entry in the middle fails its checksum or does not parse.
var errProducerLogCorrupt = fmt.Errorf("producer log: %w", ErrCorrupt)

// producerEntry is one request of one producer: the records it holds and
// the ids taken so far (fewer than records when a crash cut it short).
type producerEntry struct {
	producer    uint64
	seq         uint64
	records     uint32
	fingerprint uint32
	ids         []RecordID
}

func producerLogHeader() []byte {
	b := make([]byte, producerHeaderSize)
	copy(b, producerLogMagic)
	binary.LittleEndian.PutUint32(b[8:], producerLogVersion)
	return b
}

// appendProducerEntry appends e's frame to b.
func appendProducerEntry(b []byte, e producerEntry) []byte {
	n := producerBodyFixed + 8*len(e.ids)
	start := len(b)
	b = binary.LittleEndian.AppendUint32(b, uint32(n))
	b = binary.LittleEndian.AppendUint32(b, 0)
	b = binary.LittleEndian.AppendUint64(b, e.producer)
	b = binary.LittleEndian.AppendUint64(b, e.seq)
	b = binary.LittleEndian.AppendUint32(b, e.records)
	b = binary.LittleEndian.AppendUint32(b, e.fingerprint)
	b = binary.LittleEndian.AppendUint32(b, uint32(len(e.ids)))
	for _, id := range e.ids {
		b = binary.LittleEndian.AppendUint64(b, uint64(id))
	}
	body := b[start+producerFrameSize:]
	binary.LittleEndian.PutUint32(b[start+4:], checksum.Fold32(checksum.Sum64(body)))
	return b
}

// decodeProducerLog returns the entries of a producer log and the length
// of its valid prefix. A torn tail (the last entry cut short, or zeros
// where it would be) ends the log there: its request's records were
// never stored, since they are stored only after the entry is synced.
// Damage before the end is errProducerLogCorrupt.
func decodeProducerLog(b []byte) ([]producerEntry, int, error) {
	if len(b) < producerHeaderSize {
		if segment.IsZero(b) {
			return nil, 0, nil // created, header never synced
		}
		return nil, 0, fmt.Errorf("%w: %d-byte header", errProducerLogCorrupt, len(b))
	}
	if string(b[:8]) != producerLogMagic || binary.LittleEndian.Uint32(b[8:]) != producerLogVersion ||
		binary.LittleEndian.Uint32(b[12:]) != 0 {
		if segment.IsZero(b) {
			return nil, 0, nil
		}
		return nil, 0, fmt.Errorf("%w: bad header", errProducerLogCorrupt)
	}
	var out []producerEntry
	off := producerHeaderSize
	for off < len(b) {
		e, n, err := decodeProducerEntry(b[off:])
		if err != nil {
			if segment.IsZero(b[off:]) || off+n >= len(b) {
				return out, off, nil // torn tail
			}
			return nil, 0, fmt.Errorf("%w: entry at offset %d: %w", errProducerLogCorrupt, off, err)
		}
		out = append(out, e)
		off += n
	}
	return out, off, nil
}

// decodeProducerEntry decodes the frame at the start of b and returns its
// length. On an error the length is how far the frame claims to reach
// (len(b) or more when it is cut short).
func decodeProducerEntry(b []byte) (producerEntry, int, error) {
	if len(b) < producerFrameSize {
		return producerEntry{}, len(b), errors.New("short frame")
	}
	n := int(binary.LittleEndian.Uint32(b))
	if n < producerBodyFixed || n > producerBodyFixed+8*maxProducerIDs || (n-producerBodyFixed)%8 != 0 {
		return producerEntry{}, len(b), fmt.Errorf("body length %d", n)
	}
	end := producerFrameSize + n
	if end > len(b) {
		return producerEntry{}, end, fmt.Errorf("frame of %d bytes past the end", end)
	}
	body := b[producerFrameSize:end]
	if got, want := checksum.Fold32(checksum.Sum64(body)), binary.LittleEndian.Uint32(b[4:]); got != want {
		return producerEntry{}, end, fmt.Errorf("checksum %08x, want %08x", got, want)
	}
	e := producerEntry{
		producer:    binary.LittleEndian.Uint64(body),
		seq:         binary.LittleEndian.Uint64(body[8:]),
		records:     binary.LittleEndian.Uint32(body[16:]),
		fingerprint: binary.LittleEndian.Uint32(body[20:]),
	}
	count := int(binary.LittleEndian.Uint32(body[24:]))
	if count != (n-producerBodyFixed)/8 || count > int(e.records) || e.records == 0 {
		return producerEntry{}, end, fmt.Errorf("%d ids for %d records in a %d-byte body", count, e.records, n)
	}
	e.ids = make([]RecordID, count)
	for i := range e.ids {
		e.ids[i] = RecordID(binary.LittleEndian.Uint64(body[producerBodyFixed+8*i:]))
		if i > 0 && e.ids[i] <= e.ids[i-1] {
			return producerEntry{}, end, fmt.Errorf("ids out of order at %d", i)
		}
	}
	return e, end, nil
}
