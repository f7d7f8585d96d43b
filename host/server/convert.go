package server

import (
	aof2v1 "github.com/aof2/aof2/api/proto/aof2/v1"
	"github.com/aof2/aof2/core"
)

// Conversions between core values and the generated proto messages.

func entriesFromProto(recs []*aof2v1.Record) []entry {
	es := make([]entry, len(recs))
	for i, r := range recs {
		es[i] = entry{Payload: r.GetPayload(), Timestamp: r.GetTimestampUnixNano(), ExtID: r.GetExtId()}
	}
	return es
}

func positionFromProto(p *aof2v1.Position) position {
	switch v := p.GetStart().(type) {
	case *aof2v1.Position_RecordId:
		return atID(core.RecordID(v.RecordId))
	case *aof2v1.Position_Ordinal:
		return atOrdinal(v.Ordinal)
	}
	return position{}
}

func positionToProto(p position) *aof2v1.Position {
	switch p.kind {
	case posID:
		return &aof2v1.Position{Start: &aof2v1.Position_RecordId{RecordId: uint64(p.id)}}
	case posOrdinal:
		return &aof2v1.Position{Start: &aof2v1.Position_Ordinal{Ordinal: p.ordinal}}
	}
	return &aof2v1.Position{Start: &aof2v1.Position_FromStart{FromStart: true}}
}

// recordToProto copies nothing: callers hand it records whose payloads
// they own until the message is sent.
func recordToProto(r core.Record) *aof2v1.StoredRecord {
	return &aof2v1.StoredRecord{Id: uint64(r.ID), Ordinal: r.Ordinal, TimestampUnixNano: r.Timestamp, ExtId: r.ExtID, Payload: r.Payload}
}

func idsToProto(ids []core.RecordID) []uint64 {
	out := make([]uint64, len(ids))
	for i, id := range ids {
		out[i] = uint64(id)
	}
	return out
}

func infoToProto(str *core.Stream) *aof2v1.StreamInfoResponse {
	in := str.Info()
	out := &aof2v1.StreamInfoResponse{
		StreamId: uint64(in.ID), Records: in.Records, DurableRecords: in.DurableRecords, FirstOrdinal: in.FirstOrdinal,
		Bytes: in.Bytes, DurableBytes: in.DurableBytes, DurableMark: uint64(in.DurableMark),
		Segments: uint32(in.Segments), Resident: uint32(in.Resident), Sealed: uint32(in.Sealed),
		MaxRecordSize: uint64(str.MaxRecordSize()), CoordinatorWatermark: in.CoordinatorWatermark, LastExtId: in.LastExtID,
	}
	if in.Failed != nil {
		out.Failed = redactPaths(in.Failed.Error())
	}
	if in.Refused != nil {
		out.Refused = in.Refused.Error()
	}
	return out
}

func segmentRowToProto(r SegmentRow) *aof2v1.SegmentRow {
	return &aof2v1.SegmentRow{
		StreamId: uint64(r.Stream), SegmentId: uint64(r.Segment), BaseRecord: r.BaseRecord, Records: r.Records,
		Bytes: r.Bytes, Sealed: r.Sealed, Tier0: r.Tier0, Tier1: r.Tier1, Tier2: r.Tier2, Residency: r.Residency,
	}
}
