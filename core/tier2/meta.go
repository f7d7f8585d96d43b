package tier2

import (
	"fmt"
	"strconv"

	"github.com/aof2/aof2/pluginapi"
)

// Metadata keys every object carries (values are decimal, the checksum
// 16 lower-case hex digits). They let a listing or a Head identify an
// object and check it without the manifest.
const (
	MetaKind        = "kind"
	MetaStream      = "stream"
	MetaSegment     = "segment"
	MetaChunk       = "chunk_index"
	MetaSnapshot    = "snapshot_id"
	MetaRecordCount = "record_count"
	MetaBaseRecord  = "base_record"
	MetaCRC64       = "crc64"
	MetaSize        = "size"
	// MetaSnapshotChunk and MetaSnapshotOffset are a snapshot's log
	// position: the chunk and offset whose state it holds.
	MetaSnapshotChunk  = "snapshot_chunk_index"
	MetaSnapshotOffset = "snapshot_chunk_offset"
	// MetaReserveWindow is a reservation's: the tier2.reserve_segments of
	// the writer that stored it, how far past it that writer's next
	// reservation may reach (Store.Reserve).
	MetaReserveWindow = "reserve_window"
)

// SegmentInfo is what a segment upload records about the segment.
type SegmentInfo struct {
	RecordCount uint64
	BaseRecord  uint64
	// Shared: the key may hold another node's upload of the same segment
	// (the nodes of a cluster). Other bytes there are returned quietly,
	// as a *DataLossError the caller judges (ReportDataLoss when it is
	// one), as for a contended upload.
	Shared bool `json:"-"`
}

// ObjectMeta is the parsed metadata of a stored object.
type ObjectMeta struct {
	Ref         Ref
	RecordCount uint64
	BaseRecord  uint64
	// CRC64 and Size are what the uploader declared.
	CRC64, Size uint64
	HasCRC64    bool
	// SnapshotChunk and SnapshotOffset are a snapshot's log position, when
	// HasPosition.
	SnapshotChunk, SnapshotOffset uint64
	HasPosition                   bool
	// ReserveWindow is a reservation's (MetaReserveWindow); 0 when it
	// predates the field.
	ReserveWindow uint64
}

func idMetaKey(k Kind) string {
	switch k {
	case KindSegment:
		return MetaSegment
	case KindManifestChunk:
		return MetaChunk
	case KindSnapshot:
		return MetaSnapshot
	case KindReservation, KindLost:
		return MetaSegment
	}
	return ""
}

// objectMetadata builds the metadata of an upload of ref.
func objectMetadata(ref Ref, seg SegmentInfo, crc, size uint64) map[string]string {
	md := map[string]string{
		MetaKind:   ref.Kind.String(),
		MetaStream: strconv.FormatUint(uint64(ref.Stream), 10),
		MetaCRC64:  fmt.Sprintf("%016x", crc),
		MetaSize:   strconv.FormatUint(size, 10),
	}
	if k := idMetaKey(ref.Kind); k != "" {
		md[k] = strconv.FormatUint(ref.ID, 10)
	}
	if ref.Kind == KindSegment {
		md[MetaRecordCount] = strconv.FormatUint(seg.RecordCount, 10)
		md[MetaBaseRecord] = strconv.FormatUint(seg.BaseRecord, 10)
	}
	return md
}

// ParseMetadata reads the metadata an upload by this package wrote.
// Missing fields stay zero; a malformed one is an error.
func ParseMetadata(md map[string]string) (ObjectMeta, error) {
	var m ObjectMeta
	switch md[MetaKind] {
	case KindSegment.String():
		m.Ref.Kind = KindSegment
	case KindManifestChunk.String():
		m.Ref.Kind = KindManifestChunk
	case KindSnapshot.String():
		m.Ref.Kind = KindSnapshot
	case KindReservation.String():
		m.Ref.Kind = KindReservation
	case KindLost.String():
		m.Ref.Kind = KindLost
	}
	fields := []struct {
		key string
		dst *uint64
	}{{MetaStream, (*uint64)(&m.Ref.Stream)}, {idMetaKey(m.Ref.Kind), &m.Ref.ID}, {MetaRecordCount, &m.RecordCount},
		{MetaBaseRecord, &m.BaseRecord}, {MetaSize, &m.Size}, {MetaSnapshotChunk, &m.SnapshotChunk}, {MetaSnapshotOffset, &m.SnapshotOffset},
		{MetaReserveWindow, &m.ReserveWindow}}
	for _, f := range fields {
		v, ok := md[f.key]
		if !ok || f.key == "" {
			continue
		}
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			return m, fmt.Errorf("tier2: metadata %s=%q: %w", f.key, v, err)
		}
		*f.dst = n
	}
	_, m.HasPosition = md[MetaSnapshotChunk]
	if v, ok := md[MetaCRC64]; ok {
		crc, err := parseCRC(v)
		if err != nil {
			return m, err
		}
		m.CRC64, m.HasCRC64 = crc, true
	}
	return m, nil
}

func parseCRC(v string) (uint64, error) {
	if len(v) != 16 {
		return 0, fmt.Errorf("tier2: metadata %s=%q: want 16 hex digits", MetaCRC64, v)
	}
	crc, err := strconv.ParseUint(v, 16, 64)
	if err != nil {
		return 0, fmt.Errorf("tier2: metadata %s=%q: %w", MetaCRC64, v, err)
	}
	return crc, nil
}

// storedCRC is the checksum an object is stored with: the backend's own
// CRC-64/NVME, else the one in our metadata. Both present and different
// is a corrupt description (ok false, problem set).
func storedCRC(info pluginapi.ObjectInfo) (crc uint64, ok bool, problem string) {
	var mdCRC uint64
	var hasMD bool
	if v, present := info.Metadata[MetaCRC64]; present {
		c, err := parseCRC(v)
		if err != nil {
			return 0, false, err.Error()
		}
		mdCRC, hasMD = c, true
	}
	switch {
	case info.HasCRC64 && hasMD && info.CRC64 != mdCRC:
		return 0, false, fmt.Sprintf("backend checksum %016x differs from the uploaded %016x", info.CRC64, mdCRC)
	case info.HasCRC64:
		return info.CRC64, true, ""
	case hasMD:
		return mdCRC, true, ""
	}
	return 0, false, ""
}

// Expect is what a download must match beyond the object's own stored
// checksum; the manifest knows some of it.
type Expect struct {
	// ETag, when set, pins the object version (if_match where the backend
	// supports it, else compared after the fact): ErrPrecondition if the
	// object was rewritten.
	ETag string
	// CRC64 and Size, when set, must match the object.
	CRC64    uint64
	HasCRC64 bool
	Size     uint64
	HasSize  bool
}

// verifyObject checks that bytes with crc and n describe info and expect.
func verifyObject(key, what string, info pluginapi.ObjectInfo, expect Expect, crc, n uint64) error {
	stored, ok, problem := storedCRC(info)
	if problem != "" {
		return &ChecksumError{Key: key, What: what, Detail: problem}
	}
	if expect.HasCRC64 {
		if ok && stored != expect.CRC64 {
			return &ChecksumError{Key: key, What: what, Detail: fmt.Sprintf("stored checksum %016x, expected %016x", stored, expect.CRC64)}
		}
		stored, ok = expect.CRC64, true
	}
	if !ok {
		return &ChecksumError{Key: key, What: what, Detail: "the object carries no checksum and none was expected"}
	}
	if n != info.Size {
		return &ChecksumError{Key: key, What: what, Detail: fmt.Sprintf("received %d bytes of a %d-byte object", n, info.Size)}
	}
	if expect.HasSize && n != expect.Size {
		return &ChecksumError{Key: key, What: what, Detail: fmt.Sprintf("received %d bytes, expected %d", n, expect.Size)}
	}
	if crc != stored {
		return &ChecksumError{Key: key, What: what, Want: stored, Got: crc}
	}
	return nil
}
