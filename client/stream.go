package client

import (
	"context"

	aof2v1 "github.com/aof2/aof2/api/proto/aof2/v1"
)

// StreamInfo is a point-in-time summary of a stream.
type StreamInfo struct {
	ID StreamID
	// Records were appended, DurableRecords of them are durable.
	Records, DurableRecords uint64
	// FirstOrdinal is the ordinal of the oldest record still kept.
	FirstOrdinal uint64
	// Bytes and DurableBytes are stream positions (record framing
	// included) after the last appended and the last durable record.
	Bytes, DurableBytes uint64
	// DurableMark: every record with a smaller id is durable.
	DurableMark RecordID
	// Segments in the catalog; Resident in tier 0; Sealed with a footer.
	Segments, Resident, Sealed int
	// MaxRecordSize is the largest payload the stream accepts.
	MaxRecordSize int
	// CoordinatorWatermark is what the stream's next seal will carry;
	// LastExtID the ext_id of its newest record.
	CoordinatorWatermark, LastExtID uint64
	// Failed says why the stream stopped; empty while healthy. Refused
	// says why appends are refused (the stream needs a restore from tier
	// 2); empty while they are accepted.
	Failed, Refused string
}

func infoFromProto(in *aof2v1.StreamInfoResponse) StreamInfo {
	return StreamInfo{
		ID: StreamID(in.GetStreamId()), Records: in.GetRecords(), DurableRecords: in.GetDurableRecords(),
		FirstOrdinal: in.GetFirstOrdinal(), Bytes: in.GetBytes(), DurableBytes: in.GetDurableBytes(),
		DurableMark: RecordID(in.GetDurableMark()), Segments: int(in.GetSegments()), Resident: int(in.GetResident()),
		Sealed: int(in.GetSealed()), MaxRecordSize: int(in.GetMaxRecordSize()), Failed: in.GetFailed(),
		CoordinatorWatermark: in.GetCoordinatorWatermark(), LastExtID: in.GetLastExtId(), Refused: in.GetRefused(),
	}
}

// Flush waits until every record appended to stream before the call is
// durable, and returns the stream's summary after it.
func (c *Client) Flush(ctx context.Context, stream StreamID) (StreamInfo, error) {
	resp, err := c.log.Flush(ctx, &aof2v1.FlushRequest{StreamId: uint64(stream)})
	if err != nil {
		return StreamInfo{}, fromStatus(err)
	}
	return infoFromProto(resp.GetInfo()), nil
}

// Seal seals stream's active segment and waits until the seal is durable.
func (c *Client) Seal(ctx context.Context, stream StreamID) (StreamInfo, error) {
	resp, err := c.log.Seal(ctx, &aof2v1.SealRequest{StreamId: uint64(stream)})
	if err != nil {
		return StreamInfo{}, fromStatus(err)
	}
	return infoFromProto(resp.GetInfo()), nil
}

// Info summarises stream.
func (c *Client) Info(ctx context.Context, stream StreamID) (StreamInfo, error) {
	resp, err := c.log.StreamInfo(ctx, &aof2v1.StreamInfoRequest{StreamId: uint64(stream)})
	if err != nil {
		return StreamInfo{}, fromStatus(err)
	}
	return infoFromProto(resp), nil
}

// StreamList lists a host's streams.
type StreamList struct {
	// IDs are the open streams, ascending.
	IDs []StreamID
	// Broken are streams that failed recovery, with the reason.
	Broken map[StreamID]string
}

// Streams lists the host's streams.
func (c *Client) Streams(ctx context.Context) (StreamList, error) {
	resp, err := c.log.ListStreams(ctx, &aof2v1.ListStreamsRequest{})
	if err != nil {
		return StreamList{}, fromStatus(err)
	}
	out := StreamList{IDs: make([]StreamID, len(resp.GetStreamIds()))}
	for i, id := range resp.GetStreamIds() {
		out.IDs[i] = StreamID(id)
	}
	if len(resp.GetBroken()) > 0 {
		out.Broken = make(map[StreamID]string, len(resp.GetBroken()))
		for _, b := range resp.GetBroken() {
			out.Broken[StreamID(b.GetStreamId())] = b.GetError()
		}
	}
	return out, nil
}
