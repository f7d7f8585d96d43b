package server

import (
	"context"

	"github.com/aof2/aof2/core"
	"github.com/aof2/aof2/core/coordinator"
)

// Node is what the server needs from the host process. The host implements
// it over its store and coordinator; the server never reaches past it.
type Node interface {
	// Store returns the open store, or nil until recovery has finished
	// (requests then fail with UNAVAILABLE / 503 NOT_READY).
	Store() *core.Store
	// Ready reports whether the host serves traffic: /readyz and the gRPC
	// health service answer from it.
	Ready() bool
	// Dump returns the host's dump document as JSON.
	Dump(ctx context.Context) ([]byte, error)
	// Segments lists segments, of one stream when stream is non-nil, and
	// only those present in tier ("tier0", "tier1", "tier2") when tier is
	// not empty. An unknown tier name is an error matching ErrBadRequest.
	Segments(ctx context.Context, stream *core.StreamID, tier string) ([]SegmentRow, error)
	// Hydrate brings the stream's segments from..to (inclusive; zero means
	// the stream's first and last) back to tier 0. It calls progress after
	// each segment, never concurrently, and returns ctx's error once ctx is
	// done.
	Hydrate(ctx context.Context, stream core.StreamID, from, to core.SegmentID, progress func(done, total int, seg core.SegmentID)) error
	// Scrub runs one scrub pass over one stream (stream non-nil) or every
	// stream, calling progress after each segment, never concurrently
	// (coordinator.Coordinator.Scrub). Findings left unrepaired are in the
	// summary, not an error.
	Scrub(ctx context.Context, stream *core.StreamID, progress func(coordinator.ScrubProgress)) (coordinator.ScrubSummary, error)
	// SetUploadsPaused holds segment uploads back or lets them go on
	// (coordinator.Coordinator.SetUploadsPaused); an error matching
	// ErrBadRequest on a node that uploads nothing.
	SetUploadsPaused(paused bool) error
	// RetireBelow has retention delete a stream's segments below segment
	// (coordinator.Coordinator.RetireBelow) and says how many that is; an
	// error matching ErrBadRequest when it cannot.
	RetireBelow(stream core.StreamID, segment core.SegmentID) (int, error)
}

// SegmentRow describes one segment for ListSegments (the fields of
// aof2.v1.SegmentRow).
type SegmentRow struct {
	Stream     core.StreamID
	Segment    core.SegmentID
	BaseRecord uint64
	Records    uint64
	Bytes      uint64
	Sealed     bool
	// Tier0..Tier2 say which tiers hold a copy.
	Tier0, Tier1, Tier2 bool
	// Residency is the host's one-word summary ("active", "resident",
	// "warm", "cold", …).
	Residency string
}
