// Package types holds the identifiers and sentinel errors that every engine
// package shares. It imports nothing from the engine, which lets segment,
// manifest and the tiers agree on them without import cycles; the core
// package re-exports all of it for embedders.
package types

import (
	"fmt"
)

// StreamID names a stream.
type StreamID uint64

// SegmentID numbers the segments of a stream, from 1, without gaps. It must
// fit in 32 bits because it forms the high half of a RecordID.
type SegmentID uint64

// MaxSegmentID is the largest usable segment id.
const MaxSegmentID SegmentID = 1<<32 - 1

// RecordID locates a record: the segment id in the high 32 bits and the
// offset of the record header within the segment file in the low 32 bits.
// A reader derives the file and the position from the id alone.
type RecordID uint64

// MakeRecordID builds a RecordID.
func MakeRecordID(seg SegmentID, offset uint32) RecordID {
	return RecordID(uint64(seg)<<32 | uint64(offset))
}

// Segment returns the segment part of the id.
func (r RecordID) Segment() SegmentID { return SegmentID(r >> 32) }

// Offset returns the offset of the record header within its segment.
func (r RecordID) Offset() uint32 { return uint32(r) }

func (r RecordID) String() string { return fmt.Sprintf("%d:%d", r.Segment(), r.Offset()) }

// SegmentKey names one segment of one stream: the identity of a segment
// in every tier (its tier-0 file, its warm artifact, its tier-2 object,
// its manifest records).
type SegmentKey struct {
	Stream  StreamID
	Segment SegmentID
}

func (k SegmentKey) String() string { return fmt.Sprintf("stream %d segment %d", k.Stream, k.Segment) }
