package server

import (
	"context"
	"fmt"
	"math"

	"google.golang.org/grpc"

	aof2v1 "github.com/aof2/aof2/api/proto/aof2/v1"
	"github.com/aof2/aof2/core"
	"github.com/aof2/aof2/core/coordinator"
)

// adminService implements aof2.v1.Admin over the Node.
type adminService struct {
	aof2v1.UnimplementedAdminServer
	s *Server
}

func (a *adminService) Dump(ctx context.Context, _ *aof2v1.DumpRequest) (*aof2v1.DumpResponse, error) {
	if a.s.node.Store() == nil {
		return nil, errNotReady
	}
	b, err := a.s.node.Dump(ctx)
	if err != nil {
		return nil, err
	}
	return &aof2v1.DumpResponse{Json: b}, nil
}

func (a *adminService) ListSegments(ctx context.Context, req *aof2v1.ListSegmentsRequest) (*aof2v1.ListSegmentsResponse, error) {
	if a.s.node.Store() == nil {
		return nil, errNotReady
	}
	var stream *core.StreamID
	if req.StreamId != nil {
		stream = new(core.StreamID(req.GetStreamId()))
	}
	rows, err := a.s.node.Segments(ctx, stream, req.GetTier())
	if err != nil {
		return nil, err
	}
	resp := &aof2v1.ListSegmentsResponse{Segments: make([]*aof2v1.SegmentRow, len(rows))}
	for i, r := range rows {
		resp.Segments[i] = segmentRowToProto(r)
	}
	return resp, nil
}

func (a *adminService) Hydrate(req *aof2v1.HydrateRequest, ss grpc.ServerStreamingServer[aof2v1.HydrateProgress]) error {
	id := core.StreamID(req.GetStreamId())
	from, to := core.SegmentID(req.GetFromSegment()), core.SegmentID(req.GetToSegment())
	if err := checkHydrateRange(from, to); err != nil {
		return err
	}
	if _, err := a.s.lookup(id); err != nil {
		return err
	}
	ctx, cancel := context.WithCancelCause(ss.Context())
	defer cancel(nil)
	var sendErr error
	progress := func(done, total int, seg core.SegmentID) {
		if sendErr != nil {
			return
		}
		if sendErr = ss.Send(&aof2v1.HydrateProgress{Done: uint32(done), Total: uint32(total), SegmentId: uint64(seg)}); sendErr != nil {
			cancel(sendErr)
		}
	}
	err := a.s.node.Hydrate(ctx, id, from, to, progress)
	if sendErr != nil {
		return sendErr
	}
	return err
}

func (a *adminService) AcceptLoss(ctx context.Context, req *aof2v1.AcceptLossRequest) (*aof2v1.AcceptLossResponse, error) {
	if a.s.clustered() != nil {
		return nil, errAcceptLossInCluster
	}
	s, err := a.s.lookup(core.StreamID(req.GetStreamId()))
	if err != nil {
		return nil, err
	}
	rep, err := s.AcceptLoss(ctx)
	if err != nil {
		return nil, err
	}
	resp := &aof2v1.AcceptLossResponse{SegmentId: uint64(rep.Segment), Quarantine: rep.Quarantine, Records: rep.Records,
		DroppedBytes: uint64(max(rep.DroppedBytes, 0)), Placeholder: rep.Placeholder, Lost: rep.Lost,
		FromNodeWal: rep.FromNodeWAL, NodeWalKept: uint32(min(rep.NodeWALKept, math.MaxUint32))}
	for _, r := range rep.Filled {
		resp.Filled = append(resp.Filled, &aof2v1.LostRange{From: uint64(r[0]), To: uint64(r[1])})
	}
	return resp, nil
}

func (a *adminService) SnapshotManifest(ctx context.Context, req *aof2v1.SnapshotManifestRequest) (*aof2v1.SnapshotManifestResponse, error) {
	s, err := a.s.lookup(core.StreamID(req.GetStreamId()))
	if err != nil {
		return nil, err
	}
	tl := s.TierLog()
	if tl == nil {
		return nil, fmt.Errorf("%w: stream %d has no manifest", ErrBadRequest, req.GetStreamId())
	}
	info, err := tl.Snapshot(ctx)
	if err != nil {
		return nil, err
	}
	return &aof2v1.SnapshotManifestResponse{SnapshotId: info.ID, ChunkIndex: info.ChunkIndex, ChunkOffset: info.ChunkOffset,
		Records: info.Records, Segments: uint32(info.Segments), Bytes: uint64(info.Bytes)}, nil
}

func (a *adminService) SetUploadsPaused(_ context.Context, req *aof2v1.SetUploadsPausedRequest) (*aof2v1.SetUploadsPausedResponse, error) {
	if err := a.s.node.SetUploadsPaused(req.GetPaused()); err != nil {
		return nil, err
	}
	return &aof2v1.SetUploadsPausedResponse{Paused: req.GetPaused()}, nil
}

func (a *adminService) RetireSegments(_ context.Context, req *aof2v1.RetireSegmentsRequest) (*aof2v1.RetireSegmentsResponse, error) {
	id := core.StreamID(req.GetStreamId())
	if _, err := a.s.lookup(id); err != nil {
		return nil, err
	}
	n, err := a.s.node.RetireBelow(id, core.SegmentID(req.GetBelowSegment()))
	if err != nil {
		return nil, err
	}
	return &aof2v1.RetireSegmentsResponse{Segments: uint32(n)}, nil
}

func (a *adminService) Scrub(req *aof2v1.ScrubRequest, ss grpc.ServerStreamingServer[aof2v1.ScrubProgress]) error {
	var stream *core.StreamID
	if req.StreamId != nil {
		id := core.StreamID(req.GetStreamId())
		if _, err := a.s.lookup(id); err != nil {
			return err
		}
		stream = &id
	} else if a.s.node.Store() == nil {
		return errNotReady
	}
	ctx, cancel := context.WithCancelCause(ss.Context())
	defer cancel(nil)
	var sendErr error
	progress := func(p coordinator.ScrubProgress) {
		if sendErr != nil {
			return
		}
		msg := &aof2v1.ScrubProgress{Done: uint32(p.Done), Total: uint32(p.Total), StreamId: uint64(p.Stream), SegmentId: uint64(p.Segment),
			Findings: scrubFindingsToProto(p.Findings)}
		if sendErr = ss.Send(msg); sendErr != nil {
			cancel(sendErr)
		}
	}
	sum, err := a.s.node.Scrub(ctx, stream, progress)
	if sendErr != nil {
		return sendErr
	}
	if err != nil {
		return err
	}
	ps := &aof2v1.ScrubSummary{Segments: uint32(sum.Segments), BytesVerified: map[string]uint64{}, Tier2Checked: uint32(sum.Tier2Checked),
		Tier2FullGets: uint32(sum.Tier2FullGets), Findings: scrubFindingsToProto(sum.Findings), Unrepaired: uint32(sum.Unrepaired())}
	for tier, n := range sum.BytesVerified {
		ps.BytesVerified[tier] = uint64(max(n, 0))
	}
	return ss.Send(&aof2v1.ScrubProgress{Done: uint32(sum.Segments), Total: uint32(sum.Segments), Summary: ps})
}

func scrubFindingsToProto(fs []coordinator.ScrubFinding) []*aof2v1.ScrubFinding {
	out := make([]*aof2v1.ScrubFinding, len(fs))
	for i, f := range fs {
		out[i] = &aof2v1.ScrubFinding{StreamId: uint64(f.Stream), SegmentId: uint64(f.Segment), Tier: f.Tier, Problem: f.Problem,
			Repaired: f.Repaired, Detail: f.Detail}
	}
	return out
}

// checkHydrateRange refuses a range that ends before it starts (zero is
// the stream's first or last segment): it would hydrate nothing and say
// it succeeded.
func checkHydrateRange(from, to core.SegmentID) error {
	if from != 0 && to != 0 && from > to {
		return fmt.Errorf("hydrate: from_segment %d is after to_segment %d: %w", from, to, ErrBadRequest)
	}
	return nil
}
