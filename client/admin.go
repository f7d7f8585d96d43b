package client

import (
	"context"
	"fmt"
	"io"

	aof2v1 "github.com/aof2/aof2/api/proto/aof2/v1"
)

// Dump returns the host's dump document (JSON; the host's schema).
func (c *Client) Dump(ctx context.Context) ([]byte, error) {
	resp, err := c.admin.Dump(ctx, &aof2v1.DumpRequest{})
	if err != nil {
		return nil, fromStatus(err)
	}
	return resp.GetJson(), nil
}

// SegmentFilter narrows Segments.
type SegmentFilter struct {
	// Stream, when set, lists only that stream's segments.
	Stream *StreamID
	// Tier, when set ("tier0", "tier1", "tier2"), lists only segments
	// present there.
	Tier string
}

// SegmentRow describes one segment and where it lives.
type SegmentRow struct {
	Stream     StreamID
	Segment    SegmentID
	BaseRecord uint64
	Records    uint64
	Bytes      uint64
	Sealed     bool
	// Tier0..Tier2 say which tiers hold a copy.
	Tier0, Tier1, Tier2 bool
	// Residency is the host's one-word summary.
	Residency string
}

// Segments lists segments.
func (c *Client) Segments(ctx context.Context, f SegmentFilter) ([]SegmentRow, error) {
	req := &aof2v1.ListSegmentsRequest{Tier: f.Tier}
	if f.Stream != nil {
		req.StreamId = new(uint64(*f.Stream))
	}
	resp, err := c.admin.ListSegments(ctx, req)
	if err != nil {
		return nil, fromStatus(err)
	}
	out := make([]SegmentRow, len(resp.GetSegments()))
	for i, r := range resp.GetSegments() {
		out[i] = SegmentRow{
			Stream: StreamID(r.GetStreamId()), Segment: SegmentID(r.GetSegmentId()), BaseRecord: r.GetBaseRecord(),
			Records: r.GetRecords(), Bytes: r.GetBytes(), Sealed: r.GetSealed(),
			Tier0: r.GetTier0(), Tier1: r.GetTier1(), Tier2: r.GetTier2(), Residency: r.GetResidency(),
		}
	}
	return out, nil
}

// HydrateProgress reports one hydrated (or already resident) segment.
type HydrateProgress struct {
	Done, Total int
	Segment     SegmentID
}

// Hydrate brings stream's segments from..to (inclusive; zero means the
// first and the last) back to tier 0, calling progress (if not nil) after
// each segment.
func (c *Client) Hydrate(ctx context.Context, stream StreamID, from, to SegmentID, progress func(HydrateProgress)) error {
	req := &aof2v1.HydrateRequest{StreamId: uint64(stream)}
	if from != 0 {
		req.FromSegment = new(uint64(from))
	}
	if to != 0 {
		req.ToSegment = new(uint64(to))
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	call, err := c.admin.Hydrate(ctx, req)
	if err != nil {
		return fromStatus(err)
	}
	for {
		p, err := call.Recv()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fromStatus(err)
		}
		if progress != nil {
			progress(HydrateProgress{Done: int(p.GetDone()), Total: int(p.GetTotal()), Segment: SegmentID(p.GetSegmentId())})
		}
	}
}

// LossReport says what AcceptLoss did (see the Admin.AcceptLoss RPC).
type LossReport struct {
	Segment SegmentID
	// Filled are the damaged [from, to) byte ranges replaced by filler
	// frames; Quarantine the files beside the segment holding their bytes.
	Filled     [][2]uint64
	Quarantine []string
	// Records is how many intact records the segment keeps; DroppedBytes
	// how many bytes past the last of them no longer count.
	Records      uint64
	DroppedBytes uint64
	// Placeholder: the segment's file was gone; an empty sealed segment
	// took its id.
	Placeholder bool
	// Lost: the whole sealed segment was unreadable with no copy in any
	// tier; a lost stub keeps its bounds, the file is set aside
	// (Quarantine).
	Lost bool
	// FromNodeWAL counts the records of Records written back from the
	// node WAL's copy; NodeWALKept the WAL's records for the stream that
	// could not be placed (the WAL keeps them until its own loss is
	// accepted).
	FromNodeWAL uint64
	NodeWALKept int
}

// AcceptLoss accepts the loss of a damaged stream's damaged records
// (errors.Is(err, types.ErrDamaged) on its appends): every intact record keeps
// its id and appends go on in the next segment. It is an operator's
// decision, recorded in the stream's manifest.
func (c *Client) AcceptLoss(ctx context.Context, stream StreamID) (LossReport, error) {
	resp, err := c.admin.AcceptLoss(ctx, &aof2v1.AcceptLossRequest{StreamId: uint64(stream)})
	if err != nil {
		return LossReport{}, fromStatus(err)
	}
	rep := LossReport{Segment: SegmentID(resp.GetSegmentId()), Quarantine: resp.GetQuarantine(), Records: resp.GetRecords(),
		DroppedBytes: resp.GetDroppedBytes(), Placeholder: resp.GetPlaceholder(), Lost: resp.GetLost(),
		FromNodeWAL: resp.GetFromNodeWal(), NodeWALKept: int(resp.GetNodeWalKept())}
	for _, r := range resp.GetFilled() {
		rep.Filled = append(rep.Filled, [2]uint64{r.GetFrom(), r.GetTo()})
	}
	return rep, nil
}

// ScrubFinding is a damaged or missing copy a scrub pass found.
type ScrubFinding struct {
	Stream  StreamID
	Segment SegmentID
	// Tier is "tier0", "tier1" or "tier2"; Problem "checksum",
	// "unreadable", "missing" or "mismatch".
	Tier, Problem string
	// Repaired says a verified copy replaced it.
	Repaired bool
	Detail   string
}

// ScrubProgress reports one segment a scrub pass checked.
type ScrubProgress struct {
	Done, Total int
	Stream      StreamID
	Segment     SegmentID
	Findings    []ScrubFinding
}

// ScrubSummary is the outcome of a scrub pass.
type ScrubSummary struct {
	Segments int
	// BytesVerified by tier ("tier0", "tier1", "tier2").
	BytesVerified               map[string]uint64
	Tier2Checked, Tier2FullGets int
	Findings                    []ScrubFinding
	// Unrepaired counts the findings no verified copy could repair.
	Unrepaired int
}

// Scrub runs one scrub pass on the host now, over one stream (stream
// non-nil) or every stream, calling progress (if not nil) after each
// segment, and returns the pass's summary. Findings left unrepaired are
// in the summary (Unrepaired), not an error.
func (c *Client) Scrub(ctx context.Context, stream *StreamID, progress func(ScrubProgress)) (ScrubSummary, error) {
	req := &aof2v1.ScrubRequest{}
	if stream != nil {
		req.StreamId = new(uint64(*stream))
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	call, err := c.admin.Scrub(ctx, req)
	if err != nil {
		return ScrubSummary{}, fromStatus(err)
	}
	for {
		p, err := call.Recv()
		if err == io.EOF {
			return ScrubSummary{}, fmt.Errorf("scrub: the host ended the call without a summary: %w", io.ErrUnexpectedEOF)
		}
		if err != nil {
			return ScrubSummary{}, fromStatus(err)
		}
		if s := p.GetSummary(); s != nil {
			sum := ScrubSummary{Segments: int(s.GetSegments()), BytesVerified: s.GetBytesVerified(), Tier2Checked: int(s.GetTier2Checked()),
				Tier2FullGets: int(s.GetTier2FullGets()), Findings: scrubFindings(s.GetFindings()), Unrepaired: int(s.GetUnrepaired())}
			return sum, nil
		}
		if progress != nil {
			progress(ScrubProgress{Done: int(p.GetDone()), Total: int(p.GetTotal()), Stream: StreamID(p.GetStreamId()),
				Segment: SegmentID(p.GetSegmentId()), Findings: scrubFindings(p.GetFindings())})
		}
	}
}

func scrubFindings(fs []*aof2v1.ScrubFinding) []ScrubFinding {
	out := make([]ScrubFinding, len(fs))
	for i, f := range fs {
		out[i] = ScrubFinding{Stream: StreamID(f.GetStreamId()), Segment: SegmentID(f.GetSegmentId()), Tier: f.GetTier(),
			Problem: f.GetProblem(), Repaired: f.GetRepaired(), Detail: f.GetDetail()}
	}
	return out
}

// ManifestSnapshot describes a manifest snapshot SnapshotManifest took.
type ManifestSnapshot struct {
	ID                      uint64
	ChunkIndex, ChunkOffset uint64
	Records                 uint64
	Segments                int
	Bytes                   uint64
}

// RetireSegments has the host's retention delete the stream's segments
// below segment (oldest first, each after its upload, the stream keeping
// its newest segment), in the background; it returns how many that is.
func (c *Client) RetireSegments(ctx context.Context, stream StreamID, below SegmentID) (int, error) {
	resp, err := c.admin.RetireSegments(ctx, &aof2v1.RetireSegmentsRequest{StreamId: uint64(stream), BelowSegment: uint64(below)})
	if err != nil {
		return 0, fromStatus(err)
	}
	return int(resp.GetSegments()), nil
}

// SetUploadsPaused holds the host's segment uploads to tier 2 back
// (paused) or lets them go on, until the host restarts (manifest chunks,
// snapshots and reservations still go up).
func (c *Client) SetUploadsPaused(ctx context.Context, paused bool) error {
	_, err := c.admin.SetUploadsPaused(ctx, &aof2v1.SetUploadsPausedRequest{Paused: paused})
	return fromStatus(err)
}

// SnapshotManifest snapshots a stream's manifest now; the host uploads it
// to tier 2 at its next scan.
func (c *Client) SnapshotManifest(ctx context.Context, stream StreamID) (ManifestSnapshot, error) {
	resp, err := c.admin.SnapshotManifest(ctx, &aof2v1.SnapshotManifestRequest{StreamId: uint64(stream)})
	if err != nil {
		return ManifestSnapshot{}, fromStatus(err)
	}
	return ManifestSnapshot{ID: resp.GetSnapshotId(), ChunkIndex: resp.GetChunkIndex(), ChunkOffset: resp.GetChunkOffset(),
		Records: resp.GetRecords(), Segments: int(resp.GetSegments()), Bytes: resp.GetBytes()}, nil
}
