package manifest

import (
	"maps"
	"slices"

	"github.com/aof2/aof2/core/types"
)

// Residency says where a segment's bytes can be read from (docs/tiering.md#residency).
type Residency uint8

// Residency states. The numbers are stored in snapshots: do not change them.
const (
	// ResidentInTier0: a tier-0 segment file is present.
	ResidentInTier0 Residency = 0
	// StagedForTier0: no tier-0 file, but a warm (tier-1) artifact is, so
	// the segment can be staged back into tier 0 locally.
	StagedForTier0 Residency = 1
	// UploadedToTier2: only the tier-2 object holds the segment.
	UploadedToTier2 Residency = 2
	// NeedsRecovery: a copy that should exist failed to materialise (a
	// permanent hydration failure, a missing tier-2 object, or no known
	// copy at all); repair must find or rebuild it.
	NeedsRecovery Residency = 3
)

var residencyNames = []string{"resident_in_tier0", "staged_for_tier0", "uploaded_to_tier2", "needs_recovery"}

func (r Residency) String() string { return enumString(residencyNames, r, "residency") }

// MarshalText implements encoding.TextMarshaler.
func (r Residency) MarshalText() ([]byte, error) { return []byte(r.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler.
func (r *Residency) UnmarshalText(b []byte) (err error) {
	*r, err = parseEnum[Residency](residencyNames, b, "residency")
	return err
}

// Tier1State is the state of a segment's warm artifact.
type Tier1State uint8

// Tier-1 artifact states. Stored in snapshots: do not change the numbers.
const (
	Tier1None        Tier1State = 0
	Tier1Compressing Tier1State = 1
	Tier1Compressed  Tier1State = 2
	Tier1Failed      Tier1State = 3
)

var tier1Names = []string{"none", "compressing", "compressed", "failed"}

func (s Tier1State) String() string { return enumString(tier1Names, s, "tier1") }

// MarshalText implements encoding.TextMarshaler.
func (s Tier1State) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler.
func (s *Tier1State) UnmarshalText(b []byte) (err error) {
	*s, err = parseEnum[Tier1State](tier1Names, b, "tier1")
	return err
}

// Tier1Artifact is what the manifest knows about a segment's warm copy.
type Tier1Artifact struct {
	State           Tier1State `json:"state"`
	JobID           uint32     `json:"job_id,omitempty"`
	CompressedBytes uint64     `json:"compressed_bytes,omitempty"`
	DictionaryID    uint32     `json:"dictionary_id,omitempty"`
	Failures        uint32     `json:"failures,omitempty"`
	LastFailure     ReasonCode `json:"last_failure,omitempty"`
}

// Tier2Object is a segment's verified object in tier 2.
type Tier2Object struct {
	Key            string     `json:"key,omitempty"`
	ETag           string     `json:"etag,omitempty"`
	PendingUpload  string     `json:"pending_upload,omitempty"`
	PendingDeletes []string   `json:"pending_deletes,omitempty"`
	Failures       uint32     `json:"failures,omitempty"`
	LastFailure    ReasonCode `json:"last_failure,omitempty"`
}

// Hydration is the state of the latest hydration of a segment.
type Hydration struct {
	InProgress    bool       `json:"in_progress,omitempty"`
	SourceTier    uint64     `json:"source_tier,omitempty"`
	ResidentBytes uint64     `json:"resident_bytes,omitempty"`
	Failures      uint32     `json:"failures,omitempty"`
	LastFailure   ReasonCode `json:"last_failure,omitempty"`
}

// SegmentState is the folded manifest state of one segment.
type SegmentState struct {
	SegmentID types.SegmentID `json:"segment_id"`
	Residency Residency       `json:"residency"`
	// Tier0 is set while a tier-0 file is present.
	Tier0 bool `json:"tier0"`
	// Flagged is set by a failure that says a copy is gone (hydration or
	// upload failing with object_missing, hydration failing permanently)
	// and cleared once a copy is established again.
	Flagged bool `json:"flagged,omitempty"`

	BaseOffset uint64 `json:"base_offset"`
	Epoch      uint32 `json:"epoch"`

	Sealed               bool   `json:"sealed"`
	DurableBytes         uint64 `json:"durable_bytes"`
	SegmentCRC64         Hex64  `json:"segment_crc64"`
	ExtID                uint64 `json:"ext_id"`
	CoordinatorWatermark uint64 `json:"coordinator_watermark"`
	FlushFailure         bool   `json:"flush_failure,omitempty"`

	Tier1     Tier1Artifact `json:"tier1"`
	Tier2     Tier2Object   `json:"tier2"`
	Hydration Hydration     `json:"hydration"`

	ReclaimedBytes    uint64 `json:"reclaimed_bytes,omitempty"`
	CustomEvents      uint64 `json:"custom_events,omitempty"`
	LastLogicalOffset uint64 `json:"last_logical_offset"`
	LastTimestampMS   uint64 `json:"last_timestamp_ms"`
}

// residency derives the residency from the copies the state knows of.
func (s *SegmentState) residency() Residency {
	switch {
	case s.Flagged:
		return NeedsRecovery
	case s.Tier0:
		return ResidentInTier0
	case s.Tier1.State == Tier1Compressed:
		return StagedForTier0
	case s.Tier2.Key != "":
		return UploadedToTier2
	default:
		return NeedsRecovery
	}
}

// noCopies reports whether no copy of the segment is known and nothing is
// pending.
func (s *SegmentState) noCopies() bool {
	return !s.Tier0 && s.Tier1.State != Tier1Compressed && s.Tier2.Key == "" &&
		s.Tier2.PendingUpload == "" && len(s.Tier2.PendingDeletes) == 0 && !s.Hydration.InProgress && !s.Flagged
}

func (s *SegmentState) clone() *SegmentState {
	c := *s
	c.Tier2.PendingDeletes = slices.Clone(s.Tier2.PendingDeletes)
	return &c
}

// Index is the ManifestIndex: every record of a stream's manifest folded
// into per-segment state. Replay builds it from a snapshot plus the chunks
// after the snapshot's marker; a Log keeps it current as commits land.
//
// An Index is not safe for concurrent mutation; Log hands out clones.
type Index struct {
	StreamID types.StreamID `json:"stream_id"`
	// Records is the number of records folded in, which is also the
	// ordinal of the next record.
	Records uint64 `json:"records"`
	// UnknownRecords counts records of unknown types that were skipped.
	UnknownRecords uint64 `json:"unknown_records"`
	// LastSnapshotID is the snapshot id of the latest SnapshotMarker.
	LastSnapshotID uint64 `json:"last_snapshot_id"`

	segments map[types.SegmentID]*SegmentState
}

// NewIndex returns an empty index for streamID.
func NewIndex(streamID types.StreamID) *Index {
	return &Index{StreamID: streamID, segments: map[types.SegmentID]*SegmentState{}}
}

// Len returns the number of segments.
func (x *Index) Len() int { return len(x.segments) }

// Segment returns a copy of the state of segment id.
func (x *Index) Segment(id types.SegmentID) (SegmentState, bool) {
	s, ok := x.segments[id]
	if !ok {
		return SegmentState{}, false
	}
	return *s.clone(), true
}

// Segments returns copies of every segment state, by segment id.
func (x *Index) Segments() []SegmentState {
	ids := slices.Sorted(maps.Keys(x.segments))
	out := make([]SegmentState, 0, len(ids))
	for _, id := range ids {
		out = append(out, *x.segments[id].clone())
	}
	return out
}

// Clone returns a deep copy of x.
func (x *Index) Clone() *Index {
	c := *x
	c.segments = make(map[types.SegmentID]*SegmentState, len(x.segments))
	for id, s := range x.segments {
		c.segments[id] = s.clone()
	}
	return &c
}

// ensure returns the state of segment id, creating it if needed. A segment
// that appears without a SegmentOpened (it predates the log, or the record
// was lost to corruption) starts out as present in tier 0, where every
// segment begins.
func (x *Index) ensure(id types.SegmentID) *SegmentState {
	s, ok := x.segments[id]
	if !ok {
		s = &SegmentState{SegmentID: id, Tier0: true}
		x.segments[id] = s
	}
	return s
}

// put stores s (used by snapshot decoding and rebuild).
func (x *Index) put(s *SegmentState) { x.segments[s.SegmentID] = s }

// Apply folds one record into the index. Records must be applied in log
// order; every record, known or not, advances Records. A nil record is
// ignored; pointer records are applied like their values.
func (x *Index) Apply(rec Record) {
	rec, ok := byValue(rec)
	if !ok {
		return
	}
	x.Records++
	h := rec.GetHeader()
	switch r := rec.(type) {
	case SnapshotMarker:
		x.LastSnapshotID = r.SnapshotID
		return
	case Unknown:
		x.UnknownRecords++
		return
	case CustomEvent:
		if h.SegmentID == 0 {
			return // about the stream (a fence), not a segment: ids start at 1
		}
	}
	s := x.ensure(h.SegmentID)
	// A sealed segment whose last copy is removed by an eviction or a
	// tier-2 delete was retired by retention (the coordinator writes those
	// records only once the removal is safe) and leaves the index. Any
	// other way of losing every copy leaves it in NeedsRecovery.
	retire := false
	s.LastLogicalOffset = h.LogicalOffset
	s.LastTimestampMS = h.TimestampMS
	switch r := rec.(type) {
	case SegmentOpened:
		s.BaseOffset, s.Epoch = r.BaseOffset, r.Epoch
		s.Tier0, s.Flagged = true, false
	case SealSegment:
		s.Sealed = true
		s.DurableBytes, s.SegmentCRC64, s.ExtID = r.DurableBytes, r.SegmentCRC64, r.ExtID
		s.CoordinatorWatermark, s.FlushFailure = r.CoordinatorWatermark, r.FlushFailure
	case CompressionStarted:
		s.Tier1.State, s.Tier1.JobID = Tier1Compressing, r.JobID
	case CompressionDone:
		s.Tier1.State, s.Tier1.CompressedBytes, s.Tier1.DictionaryID = Tier1Compressed, r.CompressedBytes, r.DictionaryID
		s.Flagged = false
	case CompressionFailed:
		s.Tier1.State = Tier1Failed
		s.Tier1.Failures++
		s.Tier1.LastFailure = r.Reason
	case UploadStarted:
		s.Tier2.PendingUpload = r.Key
	case UploadDone:
		s.Tier2.Key, s.Tier2.ETag, s.Tier2.PendingUpload = r.Key, r.ETag, ""
		s.Flagged = false
	case UploadFailed:
		s.Tier2.PendingUpload = ""
		s.Tier2.Failures++
		s.Tier2.LastFailure = r.Reason
		if r.Reason == ReasonObjectMissing {
			s.Flagged = true
		}
	case Tier2DeleteQueued:
		if !slices.Contains(s.Tier2.PendingDeletes, r.Key) {
			s.Tier2.PendingDeletes = append(s.Tier2.PendingDeletes, r.Key)
		}
	case Tier2Deleted:
		s.Tier2.PendingDeletes = slices.DeleteFunc(s.Tier2.PendingDeletes, func(k string) bool { return k == r.Key })
		if len(s.Tier2.PendingDeletes) == 0 {
			s.Tier2.PendingDeletes = nil
		}
		if s.Tier2.Key == r.Key {
			s.Tier2.Key, s.Tier2.ETag = "", ""
		}
		retire = s.Sealed
	case HydrationStarted:
		s.Hydration.InProgress, s.Hydration.SourceTier = true, r.SourceTier
	case HydrationDone:
		s.Hydration.InProgress, s.Hydration.ResidentBytes = false, r.ResidentBytes
		s.Tier0, s.Flagged = true, false
	case HydrationFailed:
		s.Hydration.InProgress = false
		s.Hydration.Failures++
		s.Hydration.LastFailure = r.Reason
		if r.Reason == ReasonObjectMissing || r.Reason == ReasonPermanent {
			s.Flagged = true
		}
	case LocalEvicted:
		s.ReclaimedBytes += r.ReclaimedBytes
		if s.Tier0 {
			s.Tier0 = false
		} else if s.Tier1.State == Tier1Compressed {
			s.Tier1.State = Tier1None
		}
		retire = s.Sealed
	case CustomEvent:
		s.CustomEvents++
	}
	if retire && s.noCopies() {
		delete(x.segments, s.SegmentID)
		return
	}
	s.Residency = s.residency()
}
