package manifest

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"

	"github.com/aof2/aof2/core/checksum"
	"github.com/aof2/aof2/core/types"
)

// Snapshot file snapshot_<snapshot_id:020>.bin, little-endian:
//
//	 0               8       12      16              24              32
//	 +---------------+-------+-------+---------------+---------------+
//	 | magic         |version|hdr_len| stream_id     | snapshot_id   |
//	 | "AOF2SNAP"    |  = 1  |  = 80 |               |               |
//	 +---------------+-------+-------+---------------+---------------+
//	32              40              48              56              64
//	 +---------------+---------------+---------------+---------------+
//	 | chunk_index   | chunk_offset  | next_record   | unknown_recs  |
//	 +---------------+---------------+---------------+---------------+
//	64              72      76      80
//	 +---------------+-------+-------+--------------------+----------+
//	 | last_snap_id  |seg_cnt|body_ln| segment entries    | crc64    |
//	 +---------------+-------+-------+--------------------+----------+
//	                                  ^80       80+body_len^   8 bytes
//
//	chunk_index/chunk_offset  log position the snapshot covers up to:
//	                          replay resumes with the record there
//	next_record               ordinal of that record (Index.Records)
//	crc64                     CRC-64/NVME over every preceding byte
//
// Segment entry (entries sorted by segment_id, no duplicates):
//
//	u32 entry_len (bytes after this field)
//	u64 segment_id      u8 residency   u8 flags   u8 tier1_state  u8 0
//	u32 epoch           u64 base_offset
//	u64 durable_bytes   u64 segment_crc64   u64 ext_id   u64 coordinator_watermark
//	u32 tier1_job_id    u32 tier1_dictionary_id   u64 tier1_compressed_bytes
//	u32 tier1_failures  u32 tier1_last_failure
//	u32 tier2_failures  u32 tier2_last_failure
//	u32 hyd_failures    u32 hyd_last_failure   u64 hyd_source_tier   u64 hyd_resident_bytes
//	u64 reclaimed_bytes u64 custom_events
//	u64 last_logical_offset   u64 last_timestamp_ms
//	str16 tier2_key   str16 tier2_etag   str16 pending_upload
//	u16 pending_delete_count, then str16 per key
//
//	flags: bit 0 sealed, 1 flush_failure, 2 tier0, 3 flagged, 4 hydrating
//	str16: u16 length, then that many bytes
//
// Decoding is strict (residency must match the derived one, flags and
// states in range, exact lengths), so a snapshot that decodes re-encodes
// to the same bytes.

const (
	snapMagic       = "AOF2SNAP"
	snapVersion     = 1
	snapHeaderLen   = 80
	snapTrailerLen  = 8
	snapEntryFixed  = 8 + 4 + 4 + 8 + 4*8 + 4 + 4 + 8 + 4*6 + 8*2 + 8*4
	snapEntryMinLen = 4 + snapEntryFixed + 2*3 + 2
)

const (
	segFlagSealed = 1 << iota
	segFlagFlushFailure
	segFlagTier0
	segFlagFlagged
	segFlagHydrating
	segFlagsKnown = 1<<iota - 1
)

// Snapshot is a decoded snapshot file.
type Snapshot struct {
	ID          uint64 `json:"snapshot_id"`
	ChunkIndex  uint64 `json:"chunk_index"`
	ChunkOffset uint64 `json:"chunk_offset"`
	Index       *Index `json:"-"`
}

// snapshotName returns the file name of snapshot id.
func snapshotName(id uint64) string { return fmt.Sprintf("snapshot_%020d.bin", id) }

// parseSnapshotName parses a snapshot file name.
func parseSnapshotName(name string) (uint64, bool) {
	s, ok := strings.CutPrefix(name, "snapshot_")
	if !ok {
		return 0, false
	}
	s, ok = strings.CutSuffix(s, ".bin")
	if !ok || len(s) != 20 {
		return 0, false
	}
	v, err := strconv.ParseUint(s, 10, 64)
	return v, err == nil
}

// encodeSnapshot encodes s.
func encodeSnapshot(s Snapshot) []byte {
	x := s.Index
	segs := x.Segments()
	b := make([]byte, 0, snapHeaderLen+len(segs)*(snapEntryMinLen+32)+snapTrailerLen)
	b = append(b, snapMagic...)
	b = le.AppendUint32(b, snapVersion)
	b = le.AppendUint32(b, snapHeaderLen)
	b = le.AppendUint64(b, uint64(x.StreamID))
	b = le.AppendUint64(b, s.ID)
	b = le.AppendUint64(b, s.ChunkIndex)
	b = le.AppendUint64(b, s.ChunkOffset)
	b = le.AppendUint64(b, x.Records)
	b = le.AppendUint64(b, x.UnknownRecords)
	b = le.AppendUint64(b, x.LastSnapshotID)
	b = le.AppendUint32(b, uint32(len(segs)))
	b = le.AppendUint32(b, 0) // body_len, filled below
	for i := range segs {
		b = appendSegmentEntry(b, &segs[i])
	}
	le.PutUint32(b[76:], uint32(len(b)-snapHeaderLen))
	return le.AppendUint64(b, checksum.Sum64(b))
}

func appendSegmentEntry(b []byte, s *SegmentState) []byte {
	start := len(b)
	b = le.AppendUint32(b, 0) // entry_len, filled below
	b = le.AppendUint64(b, uint64(s.SegmentID))
	var flags uint8
	for bit, on := range [...]bool{s.Sealed, s.FlushFailure, s.Tier0, s.Flagged, s.Hydration.InProgress} {
		if on {
			flags |= 1 << bit
		}
	}
	b = append(b, uint8(s.Residency), flags, uint8(s.Tier1.State), 0)
	b = le.AppendUint32(b, s.Epoch)
	b = le.AppendUint64(b, s.BaseOffset)
	for _, v := range [...]uint64{s.DurableBytes, uint64(s.SegmentCRC64), s.ExtID, s.CoordinatorWatermark} {
		b = le.AppendUint64(b, v)
	}
	b = le.AppendUint32(b, s.Tier1.JobID)
	b = le.AppendUint32(b, s.Tier1.DictionaryID)
	b = le.AppendUint64(b, s.Tier1.CompressedBytes)
	for _, v := range [...]uint32{s.Tier1.Failures, uint32(s.Tier1.LastFailure), s.Tier2.Failures,
		uint32(s.Tier2.LastFailure), s.Hydration.Failures, uint32(s.Hydration.LastFailure)} {
		b = le.AppendUint32(b, v)
	}
	for _, v := range [...]uint64{s.Hydration.SourceTier, s.Hydration.ResidentBytes, s.ReclaimedBytes,
		s.CustomEvents, s.LastLogicalOffset, s.LastTimestampMS} {
		b = le.AppendUint64(b, v)
	}
	b = appendStr16(b, s.Tier2.Key)
	b = appendStr16(b, s.Tier2.ETag)
	b = appendStr16(b, s.Tier2.PendingUpload)
	b = le.AppendUint16(b, uint16(len(s.Tier2.PendingDeletes)))
	for _, k := range s.Tier2.PendingDeletes {
		b = appendStr16(b, k)
	}
	le.PutUint32(b[start:], uint32(len(b)-start-4))
	return b
}

// decodeSnapshot decodes and verifies a snapshot file of stream streamID.
func decodeSnapshot(b []byte, streamID types.StreamID) (Snapshot, error) {
	if err := checkPreamble(b, "snapshot", snapMagic, snapVersion, snapHeaderLen, snapHeaderLen+snapTrailerLen); err != nil {
		return Snapshot{}, err
	}
	body := int64(le.Uint32(b[76:]))
	if body != int64(len(b))-snapHeaderLen-snapTrailerLen {
		return Snapshot{}, corruptf("snapshot: body_len %d, file holds %d", body, len(b)-snapHeaderLen-snapTrailerLen)
	}
	end := len(b) - snapTrailerLen
	if want, got := le.Uint64(b[end:]), checksum.Sum64(b[:end]); want != got {
		return Snapshot{}, corruptf("snapshot: crc64 %016x, computed %016x", want, got)
	}
	if id := types.StreamID(le.Uint64(b[16:])); id != streamID {
		return Snapshot{}, corruptf("snapshot: stream_id %d, want %d", id, streamID)
	}
	s := Snapshot{ID: le.Uint64(b[24:]), ChunkIndex: le.Uint64(b[32:]), ChunkOffset: le.Uint64(b[40:])}
	if s.ChunkOffset < chunkHeaderLen || s.ChunkOffset > MaxChunkCapacity || s.ChunkOffset%8 != 0 || s.ChunkIndex == math.MaxUint64 {
		return Snapshot{}, corruptf("snapshot: position %d/%d is not a record boundary", s.ChunkIndex, s.ChunkOffset)
	}
	x := NewIndex(streamID)
	x.Records, x.UnknownRecords, x.LastSnapshotID = le.Uint64(b[48:]), le.Uint64(b[56:]), le.Uint64(b[64:])
	if x.UnknownRecords > x.Records {
		return Snapshot{}, corruptf("snapshot: %d unknown records of %d", x.UnknownRecords, x.Records)
	}
	count := int64(le.Uint32(b[72:]))
	if count*snapEntryMinLen > body {
		return Snapshot{}, corruptf("snapshot: %d segments cannot fit in %d bytes", count, body)
	}
	d := &decoder{b: b[snapHeaderLen:end], what: "snapshot entry"}
	var prev types.SegmentID
	for i := int64(0); i < count && d.err == nil; i++ {
		n := int(d.u32())
		if !d.need(n) {
			break
		}
		ed := &decoder{b: d.b[d.off : d.off+n], what: d.what}
		d.off += n
		seg := decodeSegmentEntry(ed)
		if err := ed.finish(); err != nil {
			return Snapshot{}, fmt.Errorf("segment entry %d: %w", i, err)
		}
		if i > 0 && seg.SegmentID <= prev {
			return Snapshot{}, corruptf("snapshot: segment %d out of order after %d", seg.SegmentID, prev)
		}
		prev = seg.SegmentID
		x.put(seg)
	}
	if err := d.finish(); err != nil {
		return Snapshot{}, err
	}
	s.Index = x
	return s, nil
}

func decodeSegmentEntry(d *decoder) *SegmentState {
	s := &SegmentState{SegmentID: types.SegmentID(d.u64())}
	res, flags, t1, zero := d.u8(), d.u8(), d.u8(), d.u8()
	if flags&^segFlagsKnown != 0 || zero != 0 || t1 > uint8(Tier1Failed) {
		d.fail("segment %d: flags 0x%02x, tier1 %d, reserved %d out of range", s.SegmentID, flags, t1, zero)
	}
	s.Sealed, s.FlushFailure = flags&segFlagSealed != 0, flags&segFlagFlushFailure != 0
	s.Tier0, s.Flagged = flags&segFlagTier0 != 0, flags&segFlagFlagged != 0
	s.Hydration.InProgress = flags&segFlagHydrating != 0
	s.Tier1.State = Tier1State(t1)
	s.Epoch = d.u32()
	s.BaseOffset = d.u64()
	s.DurableBytes, s.SegmentCRC64, s.ExtID, s.CoordinatorWatermark = d.u64(), Hex64(d.u64()), d.u64(), d.u64()
	s.Tier1.JobID, s.Tier1.DictionaryID, s.Tier1.CompressedBytes = d.u32(), d.u32(), d.u64()
	s.Tier1.Failures, s.Tier1.LastFailure = d.u32(), ReasonCode(d.u32())
	s.Tier2.Failures, s.Tier2.LastFailure = d.u32(), ReasonCode(d.u32())
	s.Hydration.Failures, s.Hydration.LastFailure = d.u32(), ReasonCode(d.u32())
	s.Hydration.SourceTier, s.Hydration.ResidentBytes = d.u64(), d.u64()
	s.ReclaimedBytes, s.CustomEvents = d.u64(), d.u64()
	s.LastLogicalOffset, s.LastTimestampMS = d.u64(), d.u64()
	s.Tier2.Key, s.Tier2.ETag, s.Tier2.PendingUpload = d.str16(), d.str16(), d.str16()
	n := int(d.u16())
	if d.need(n * 2) {
		for range n {
			k := d.str16()
			if d.err == nil && (k == "" || slices.Contains(s.Tier2.PendingDeletes, k)) {
				d.fail("segment %d: empty or duplicate pending delete %q", s.SegmentID, k)
			}
			s.Tier2.PendingDeletes = append(s.Tier2.PendingDeletes, k)
		}
	}
	if d.err == nil && Residency(res) != s.residency() {
		d.fail("segment %d: residency %d, state implies %s", s.SegmentID, res, s.residency())
	}
	s.Residency = Residency(res)
	return s
}
