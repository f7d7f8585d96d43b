package manifest

import (
	"reflect"

	"github.com/aof2/aof2/core/types"
)

// RecordType is the on-disk record_type of a manifest record. The numbers
// are part of the format: do not change them.
type RecordType uint16

// Record types (docs/formats.md#record-types-and-payloads).
const (
	TypeSegmentOpened      RecordType = 0
	TypeSealSegment        RecordType = 1
	TypeCompressionStarted RecordType = 2
	TypeCompressionDone    RecordType = 3
	TypeCompressionFailed  RecordType = 4
	TypeUploadStarted      RecordType = 5
	TypeUploadDone         RecordType = 6
	TypeUploadFailed       RecordType = 7
	TypeTier2DeleteQueued  RecordType = 8
	TypeTier2Deleted       RecordType = 9
	TypeHydrationStarted   RecordType = 10
	TypeHydrationDone      RecordType = 11
	TypeHydrationFailed    RecordType = 12
	TypeLocalEvicted       RecordType = 13
	TypeSnapshotMarker     RecordType = 14
	TypeCustomEvent        RecordType = 15

	// numRecordTypes is one past the highest known type; higher types are
	// decoded as Unknown and skipped by replay.
	numRecordTypes = 16
)

var recordTypeNames = []string{
	"SegmentOpened", "SealSegment", "CompressionStarted", "CompressionDone",
	"CompressionFailed", "UploadStarted", "UploadDone", "UploadFailed",
	"Tier2DeleteQueued", "Tier2Deleted", "HydrationStarted", "HydrationDone",
	"HydrationFailed", "LocalEvicted", "SnapshotMarker", "CustomEvent",
}

// Known reports whether t is one of the 16 types this version understands.
func (t RecordType) Known() bool { return t < numRecordTypes }

func (t RecordType) String() string { return enumString(recordTypeNames, t, "Unknown") }

// MarshalText implements encoding.TextMarshaler (JSON output of inspectors).
func (t RecordType) MarshalText() ([]byte, error) { return []byte(t.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler.
func (t *RecordType) UnmarshalText(b []byte) (err error) {
	*t, err = parseEnum[RecordType](recordTypeNames, b, "Unknown")
	return err
}

// ReasonCode says why a compression, upload or hydration failed. Codes
// outside the known range are carried through unchanged.
type ReasonCode uint32

// Reason codes (docs/formats.md#reason-codes).
const (
	ReasonTransient     ReasonCode = 0 // retry
	ReasonPermanent     ReasonCode = 1 // permanent codec error
	ReasonAuth          ReasonCode = 2 // auth failure: operator action
	ReasonUnavailable   ReasonCode = 3 // bucket or network unavailable
	ReasonObjectMissing ReasonCode = 4 // tier-2 object missing: repair
)

var reasonNames = []string{"transient", "permanent", "auth", "unavailable", "object_missing"}

func (r ReasonCode) String() string { return enumString(reasonNames, r, "reason") }

// MarshalText implements encoding.TextMarshaler.
func (r ReasonCode) MarshalText() ([]byte, error) { return []byte(r.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler.
func (r *ReasonCode) UnmarshalText(b []byte) (err error) {
	*r, err = parseEnum[ReasonCode](reasonNames, b, "reason")
	return err
}

// MaxKeyLen bounds object keys, etags and custom blobs: their lengths are
// u16 on disk.
const MaxKeyLen = 1<<16 - 1

// Header holds the fields every record carries in its RecordHeader.
type Header struct {
	// SegmentID is the tier-0 segment the record is about (0 for
	// stream-level records such as SnapshotMarker).
	SegmentID types.SegmentID `json:"segment_id"`
	// LogicalOffset is the stream byte offset the event refers to, chosen
	// by the writer (the engine uses the segment's base offset plus its
	// durable bytes). The manifest keeps it but gives it no meaning.
	LogicalOffset uint64 `json:"logical_offset"`
	// TimestampMS is the event time in unix milliseconds. Append fills it
	// from the Log's clock when it is zero.
	TimestampMS uint64 `json:"timestamp_ms"`
}

// GetHeader returns the common header fields.
func (h Header) GetHeader() Header { return h }

// Record is one manifest record: one of the 16 typed structs of this file
// (or Unknown, which only the decoder produces). The interface is sealed.
type Record interface {
	Type() RecordType
	GetHeader() Header
	// payloadLen is the exact number of payload bytes appendPayload adds.
	payloadLen() int
	appendPayload(b []byte) []byte
	// validate checks what the fixed-width encoding cannot represent.
	validate() error
	withHeader(h Header) Record
}

// byValue returns r with a pointer record (*SealSegment, …) replaced by
// its value, so that records may be passed either way; false for nil.
func byValue(r Record) (Record, bool) {
	if r == nil {
		return nil, false
	}
	v := reflect.ValueOf(r)
	if v.Kind() != reflect.Pointer {
		return r, true
	}
	if v.IsNil() {
		return nil, false
	}
	return v.Elem().Interface().(Record), true
}

// SegmentOpened records that a tier-0 segment was created and activated.
type SegmentOpened struct {
	Header
	BaseOffset uint64 `json:"base_offset"`
	Epoch      uint32 `json:"epoch"`
}

// SealSegment records a durable seal: the engine acknowledges a seal only
// once this record is committed.
type SealSegment struct {
	Header
	DurableBytes         uint64 `json:"durable_bytes"`
	SegmentCRC64         Hex64  `json:"segment_crc64"`
	ExtID                uint64 `json:"ext_id"`
	CoordinatorWatermark uint64 `json:"coordinator_watermark"`
	FlushFailure         bool   `json:"flush_failure"`
}

// CompressionStarted records that a tier-1 compression job began.
type CompressionStarted struct {
	Header
	JobID uint32 `json:"job_id"`
}

// CompressionDone records a verified tier-1 artifact.
type CompressionDone struct {
	Header
	CompressedBytes uint64 `json:"compressed_bytes"`
	DictionaryID    uint32 `json:"dictionary_id"`
}

// CompressionFailed records a failed compression job.
type CompressionFailed struct {
	Header
	Reason ReasonCode `json:"reason"`
}

// UploadStarted records that an upload of Key to tier 2 began.
type UploadStarted struct {
	Header
	Key string `json:"key"`
}

// UploadDone records a verified tier-2 object.
type UploadDone struct {
	Header
	Key  string `json:"key"`
	ETag string `json:"etag"`
}

// UploadFailed records a failed upload.
type UploadFailed struct {
	Header
	Key    string     `json:"key"`
	Reason ReasonCode `json:"reason"`
}

// Tier2DeleteQueued records that retention queued Key for deletion.
type Tier2DeleteQueued struct {
	Header
	Key string `json:"key"`
}

// Tier2Deleted records that Key was deleted from tier 2.
type Tier2Deleted struct {
	Header
	Key string `json:"key"`
}

// HydrationStarted records that a tier-0 copy is being rebuilt from
// SourceTier (1: warm cache, 2: object store).
type HydrationStarted struct {
	Header
	SourceTier uint64 `json:"source_tier"`
}

// HydrationDone records a verified tier-0 copy of ResidentBytes bytes.
type HydrationDone struct {
	Header
	ResidentBytes uint64 `json:"resident_bytes"`
}

// HydrationFailed records a failed hydration.
type HydrationFailed struct {
	Header
	Reason ReasonCode `json:"reason"`
}

// LocalEvicted records that the most local copy of a segment was dropped:
// the tier-0 file when there is one, otherwise the tier-1 artifact.
type LocalEvicted struct {
	Header
	ReclaimedBytes uint64 `json:"reclaimed_bytes"`
}

// SnapshotMarker follows each durable snapshot; it names the log position
// the snapshot covers. Only Log.Snapshot writes it.
type SnapshotMarker struct {
	Header
	ChunkIndex  uint64 `json:"chunk_index"`
	ChunkOffset uint64 `json:"chunk_offset"`
	SnapshotID  uint64 `json:"snapshot_id"`
}

// CustomEvent carries an application-defined blob.
type CustomEvent struct {
	Header
	SchemaID uint32 `json:"schema_id"`
	Blob     []byte `json:"blob"`
}

// SchemaLossAccepted is the CustomEvent schema of an operator's accepted
// loss of damaged records (core's Stream.AcceptLoss): the blob is a JSON
// object saying which segment, which ranges and where their original
// bytes were kept. ("ACPT")
const SchemaLossAccepted uint32 = 0x41435054

// SchemaTailRewound is the CustomEvent schema of a damaged tail rewound
// to its intact records for a caller's log to replay the rest (core's
// Stream.RewindDamagedTail): the blob is a JSON object saying which
// segment, from which offset, and where the bytes from there were kept.
// ("RWND")
const SchemaTailRewound uint32 = 0x52574e44

// Unknown is a record of a type this version does not know. Replay skips it
// (counting it); it cannot be appended.
type Unknown struct {
	Header
	RecordType RecordType `json:"record_type"`
	Payload    []byte     `json:"payload"`
}

func (SegmentOpened) Type() RecordType      { return TypeSegmentOpened }
func (SealSegment) Type() RecordType        { return TypeSealSegment }
func (CompressionStarted) Type() RecordType { return TypeCompressionStarted }
func (CompressionDone) Type() RecordType    { return TypeCompressionDone }
func (CompressionFailed) Type() RecordType  { return TypeCompressionFailed }
func (UploadStarted) Type() RecordType      { return TypeUploadStarted }
func (UploadDone) Type() RecordType         { return TypeUploadDone }
func (UploadFailed) Type() RecordType       { return TypeUploadFailed }
func (Tier2DeleteQueued) Type() RecordType  { return TypeTier2DeleteQueued }
func (Tier2Deleted) Type() RecordType       { return TypeTier2Deleted }
func (HydrationStarted) Type() RecordType   { return TypeHydrationStarted }
func (HydrationDone) Type() RecordType      { return TypeHydrationDone }
func (HydrationFailed) Type() RecordType    { return TypeHydrationFailed }
func (LocalEvicted) Type() RecordType       { return TypeLocalEvicted }
func (SnapshotMarker) Type() RecordType     { return TypeSnapshotMarker }
func (CustomEvent) Type() RecordType        { return TypeCustomEvent }
func (u Unknown) Type() RecordType          { return u.RecordType }

func (r SegmentOpened) withHeader(h Header) Record      { r.Header = h; return r }
func (r SealSegment) withHeader(h Header) Record        { r.Header = h; return r }
func (r CompressionStarted) withHeader(h Header) Record { r.Header = h; return r }
func (r CompressionDone) withHeader(h Header) Record    { r.Header = h; return r }
func (r CompressionFailed) withHeader(h Header) Record  { r.Header = h; return r }
func (r UploadStarted) withHeader(h Header) Record      { r.Header = h; return r }
func (r UploadDone) withHeader(h Header) Record         { r.Header = h; return r }
func (r UploadFailed) withHeader(h Header) Record       { r.Header = h; return r }
func (r Tier2DeleteQueued) withHeader(h Header) Record  { r.Header = h; return r }
func (r Tier2Deleted) withHeader(h Header) Record       { r.Header = h; return r }
func (r HydrationStarted) withHeader(h Header) Record   { r.Header = h; return r }
func (r HydrationDone) withHeader(h Header) Record      { r.Header = h; return r }
func (r HydrationFailed) withHeader(h Header) Record    { r.Header = h; return r }
func (r LocalEvicted) withHeader(h Header) Record       { r.Header = h; return r }
func (r SnapshotMarker) withHeader(h Header) Record     { r.Header = h; return r }
func (r CustomEvent) withHeader(h Header) Record        { r.Header = h; return r }
func (r Unknown) withHeader(h Header) Record            { r.Header = h; return r }
