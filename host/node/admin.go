package node

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"

	"github.com/aof2/aof2/core"
	"github.com/aof2/aof2/core/coordinator"
	"github.com/aof2/aof2/host/dump"
	"github.com/aof2/aof2/host/server"
)

// Dump is the online dump as JSON (the document `aof2-host dump --json`
// prints), for the Admin API.
func (n *Node) Dump(context.Context) ([]byte, error) {
	d, err := n.View()
	if err != nil {
		return nil, err
	}
	return json.Marshal(d)
}

// Segments lists segment rows, optionally of one stream and one tier.
func (n *Node) Segments(_ context.Context, stream *core.StreamID, tier string) ([]server.SegmentRow, error) {
	if !dump.ValidTier(tier) {
		return nil, fmt.Errorf("tier %q: want tier0, tier1 or tier2: %w", tier, server.ErrBadRequest)
	}
	d, err := n.View()
	if err != nil {
		return nil, err
	}
	var sp *uint64
	if stream != nil {
		id := uint64(*stream)
		if !slices.ContainsFunc(d.Streams, func(s dump.Stream) bool { return s.ID == id }) {
			return nil, fmt.Errorf("stream %d: %w", id, core.ErrUnknownStream)
		}
		sp = &id
	}
	var rows []server.SegmentRow
	for _, g := range d.Segments(sp, tier) {
		rows = append(rows, server.SegmentRow{Stream: core.StreamID(g.Stream), Segment: core.SegmentID(g.ID), BaseRecord: g.BaseRecord,
			Records: g.Records, Bytes: g.Bytes, Sealed: g.Sealed, Tier0: g.Tier0, Tier1: g.Tier1, Tier2: g.Tier2, Residency: g.Residency})
	}
	return rows, nil
}

// Hydrate brings segments from..to (inclusive; zero: the stream's first and
// last) of a stream back into tier 0, one after the other. A range with
// from after to is refused (server.ErrBadRequest).
func (n *Node) Hydrate(ctx context.Context, stream core.StreamID, from, to core.SegmentID, progress func(done, total int, seg core.SegmentID)) error {
	if from != 0 && to != 0 && from > to {
		return fmt.Errorf("hydrate stream %d: segment %d is after segment %d: %w", stream, from, to, server.ErrBadRequest)
	}
	st := n.Store()
	if st == nil {
		return fmt.Errorf("node is not ready: %w", core.ErrWouldBlock)
	}
	s, err := st.Lookup(stream)
	if err != nil {
		return err
	}
	var todo []core.SegmentID
	for _, g := range s.SegmentList() {
		if (from == 0 || g.ID >= from) && (to == 0 || g.ID <= to) {
			todo = append(todo, g.ID)
		}
	}
	for i, id := range todo {
		if err := s.Hydrate(ctx, id); err != nil {
			return err
		}
		if progress != nil {
			progress(i+1, len(todo), id)
		}
	}
	return nil
}

// Scrub runs one scrub pass now (coordinator.Coordinator.Scrub) over one
// stream or every stream. Findings left unrepaired are in the summary,
// not an error.
func (n *Node) Scrub(ctx context.Context, stream *core.StreamID, progress func(coordinator.ScrubProgress)) (coordinator.ScrubSummary, error) {
	c := n.Coordinator()
	if c == nil || n.Store() == nil {
		return coordinator.ScrubSummary{}, fmt.Errorf("node is not ready: %w", core.ErrWouldBlock)
	}
	var opts coordinator.ScrubOptions
	if stream != nil {
		opts.Streams = []core.StreamID{*stream}
	}
	sum, err := c.Scrub(ctx, opts, progress)
	if errors.Is(err, coordinator.ErrScrubFindings) {
		err = nil
	}
	return sum, err
}

// SetUploadsPaused is server.Node's: the coordinator's switch.
func (n *Node) SetUploadsPaused(paused bool) error {
	c := n.Coordinator()
	if c == nil {
		return fmt.Errorf("node is not ready: %w", core.ErrWouldBlock)
	}
	if err := c.SetUploadsPaused(paused); err != nil {
		return fmt.Errorf("%w: %w", err, server.ErrBadRequest)
	}
	return nil
}

// RetireBelow is server.Node's: the coordinator's retention, on request.
func (n *Node) RetireBelow(stream core.StreamID, segment core.SegmentID) (int, error) {
	c, st := n.Coordinator(), n.Store()
	if c == nil || st == nil {
		return 0, fmt.Errorf("node is not ready: %w", core.ErrWouldBlock)
	}
	s, err := st.Lookup(stream)
	if err != nil {
		return 0, err
	}
	k, err := c.RetireBelow(s, segment)
	if err != nil {
		return 0, fmt.Errorf("%w: %w", err, server.ErrBadRequest)
	}
	return k, nil
}
