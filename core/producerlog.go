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
// ids they take. Layout (docs/formats.md#producer-log), version 2:
//
//	header: magic "AOF2PROD" | version u32 (2) | reserved u32 (0)
//	round:  round_len u32 | checksum u32 | entry × n (round_len bytes)
//	entry:  body_len u32 | checksum u32 | body
//	body:   producer u64 | seq u64 | records u32 | fingerprint u32 | count u32 | ids u64 × count
//
// A round is what one write and one fdatasync put in the log (a group
// commit's entries; one entry per round in a rewritten log), so a power cut
// tears at most the last round, whichever of its bytes it keeps. Version 1
// (read, never written) has entries without rounds. The checksums are
// fold32(CRC-64/NVME), as a segment record's: an entry's of its body, a
// round's of round_len and its entries.
const (
	producerLogName     = "producers.log"
	producerLogMagic    = "AOF2PROD"
	producerLogVersion  = 2
	producerLogVersion1 = 1
	producerHeaderSize  = 16
	producerFrameSize   = 8
	producerBodyFixed   = 28
	// maxProducerIDs bounds one entry: no request takes more records than
	// its bytes allow (maxProducerBatchBytes / the smallest record span).
	maxProducerIDs = maxProducerBatchBytes / 32
	// maxProducerRoundBytes bounds a round's entries: a group commit puts
	// the requests past it in the next round. One entry always fits.
	maxProducerRoundBytes = 16 << 20
)

// errProducerLogCorrupt marks a producer log whose damage is not a torn
// tail: a round (an entry, in version 1) before the last one fails its
// checksum, or a round whose checksum holds does not parse.
var errProducerLogCorrupt = fmt.Errorf("producer log: %w", ErrCorrupt)

// errProducerRoundBody: a round's checksum holds but its entries do not
// parse (a bug that wrote it, not a power cut).
var errProducerRoundBody = errors.New("round verifies but does not parse")

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

// appendProducerRound appends a round of es (one write and one
// fdatasync) to b.
func appendProducerRound(b []byte, es []producerEntry) []byte {
	start := len(b)
	b = append(b, make([]byte, producerFrameSize)...)
	for _, e := range es {
		b = appendProducerEntry(b, e)
	}
	body := b[start+producerFrameSize:]
	binary.LittleEndian.PutUint32(b[start:], uint32(len(body)))
	binary.LittleEndian.PutUint32(b[start+4:], producerRoundChecksum(b[start:]))
	return b
}

// producerRoundChecksum is the checksum of the round framed at the start of
// b: over round_len and the entries, so that an entry's frame (checksummed
// over its body alone) never passes for a round.
func producerRoundChecksum(b []byte) uint32 {
	n := binary.LittleEndian.Uint32(b)
	return checksum.Fold32(checksum.Update(checksum.Sum64(b[:4]), b[producerFrameSize:producerFrameSize+int(n)]))
}

// producerEntrySize is the size of e's frame.
func producerEntrySize(e producerEntry) int {
	return producerFrameSize + producerBodyFixed + 8*len(e.ids)
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
// of its valid prefix. A torn tail ends the log there: the last round cut
// short, failing its checksum, or zeros where it would be — whatever the
// power cut kept of its bytes, its requests' records were never stored,
// since they are stored only after the round is synced. Damage before the
// last round, or a round that verifies but does not parse, is
// errProducerLogCorrupt. A version 1 log has no rounds: only its last
// entry can be torn.
func decodeProducerLog(b []byte) ([]producerEntry, int, error) {
	if len(b) < producerHeaderSize {
		if segment.IsZero(b) {
			return nil, 0, nil // created, header never synced
		}
		return nil, 0, fmt.Errorf("%w: %d-byte header", errProducerLogCorrupt, len(b))
	}
	version := binary.LittleEndian.Uint32(b[8:])
	if string(b[:8]) != producerLogMagic || (version != producerLogVersion && version != producerLogVersion1) ||
		binary.LittleEndian.Uint32(b[12:]) != 0 {
		if segment.IsZero(b) {
			return nil, 0, nil
		}
		return nil, 0, fmt.Errorf("%w: bad header", errProducerLogCorrupt)
	}
	what, decode := "round", decodeProducerRound
	if version == producerLogVersion1 {
		what, decode = "entry", func(b []byte) ([]producerEntry, int, error) {
			e, n, err := decodeProducerEntry(b)
			return []producerEntry{e}, n, err
		}
	}
	var out []producerEntry
	off := producerHeaderSize
	for off < len(b) {
		es, n, err := decode(b[off:])
		if err != nil {
			torn := off+n >= len(b) // version 1: the last entry
			if version != producerLogVersion1 {
				// The round is the last one unless a round that verifies
				// starts after it: a power cut tears only the last write,
				// which holds one round, whatever it keeps of its bytes
				// (its length too).
				torn = !errors.Is(err, errProducerRoundBody) && !producerRoundAfter(b, off)
			}
			if segment.IsZero(b[off:]) || torn {
				return out, off, nil // torn tail
			}
			return nil, 0, fmt.Errorf("%w: %s at offset %d: %w", errProducerLogCorrupt, what, off, err)
		}
		out = append(out, es...)
		off += n
	}
	return out, off, nil
}

// producerRoundAfter says whether a round frame that verifies starts in b
// after off: then the bytes at off were synced before it was written.
func producerRoundAfter(b []byte, off int) bool {
	for q := off + 1; q+producerFrameSize+producerFrameSize+producerBodyFixed <= len(b); q++ {
		if _, err := producerRoundFrame(b[q:]); err == nil {
			return true
		}
	}
	return false
}

// decodeProducerRound decodes the round at the start of b and returns its
// length. A frame that does not verify is an error, its length how far
// the frame claims to reach (len(b) or more when it is cut short); a
// round that verifies but does not parse is errProducerRoundBody, never
// a torn tail.
func decodeProducerRound(b []byte) ([]producerEntry, int, error) {
	end, err := producerRoundFrame(b)
	if err != nil {
		return nil, end, err
	}
	body := b[producerFrameSize:end]
	var es []producerEntry
	for off := 0; off < len(body); {
		e, k, err := decodeProducerEntry(body[off:])
		if err != nil {
			return nil, end, fmt.Errorf("%w: entry %d: %w", errProducerRoundBody, len(es), err)
		}
		es = append(es, e)
		off += k
	}
	return es, end, nil
}

// producerRoundFrame checks the round frame at the start of b and returns
// its length (on an error, how far it claims to reach).
func producerRoundFrame(b []byte) (int, error) {
	if len(b) < producerFrameSize {
		return len(b), errors.New("short frame")
	}
	n := int(binary.LittleEndian.Uint32(b))
	if n < producerFrameSize+producerBodyFixed || n > maxProducerRoundBytes {
		return len(b), fmt.Errorf("round length %d", n)
	}
	end := producerFrameSize + n
	if end > len(b) {
		return end, fmt.Errorf("round of %d bytes past the end", end)
	}
	if got, want := producerRoundChecksum(b), binary.LittleEndian.Uint32(b[4:]); got != want {
		return end, fmt.Errorf("round checksum %08x, want %08x", got, want)
	}
	return end, nil
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
