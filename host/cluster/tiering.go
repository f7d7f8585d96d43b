package cluster

import (
	"context"
	"errors"
	"fmt"

	"github.com/aof2/aof2/core"
	"github.com/aof2/aof2/core/coordinator"
	"github.com/aof2/aof2/core/types"
)

// Tiering records on this node what the leader stored in tier 2: the
// node's coordinator (coordinator.Coordinator.AdoptUpload). Applying a
// TierMove entry calls it on every node, the leader included, so a
// segment counts as in tier 2 — and becomes evictable — only once the
// log says so (docs/adr-replication.md, "Leader-only tiering").
type Tiering interface {
	AdoptUpload(ctx context.Context, k types.SegmentKey, key, etag string) error
	// AdoptDrop drops segment k, which the cluster's retention deletes
	// (a Drop entry; coordinator.Coordinator.AdoptDrop).
	AdoptDrop(ctx context.Context, k types.SegmentKey) error
}

// RecordUpload records that tier 2 holds segment k as object key (etag):
// a TierMove entry, proposed by the leader's coordinator once its upload
// is verified. It returns once the entry is applied here.
func (n *Node) RecordUpload(ctx context.Context, k types.SegmentKey, key, etag string) error {
	if err := n.usable(); err != nil {
		return err
	}
	c := command{kind: kindTier, stream: k.Stream, segment: k.Segment, object: object{Key: key, ETag: etag}}
	res, err := n.wait(ctx, n.raft.Apply(c.encode(), enqueueTimeout))
	if err != nil {
		return err
	}
	return appliedErr(res)
}

// RecordDrop records that retention drops segment k, whose tier-2
// object is key: a Drop entry, proposed by the leader's coordinator. It
// returns once the entry is applied here; only then may the leader delete
// the object (docs/adr-replication.md, "Deletes in a cluster").
func (n *Node) RecordDrop(ctx context.Context, k types.SegmentKey, key string) error {
	if err := n.usable(); err != nil {
		return err
	}
	c := command{kind: kindDrop, stream: k.Stream, segment: k.Segment, object: object{Key: key}}
	res, err := n.wait(ctx, n.raft.Apply(c.encode(), enqueueTimeout))
	if err != nil {
		return err
	}
	return appliedErr(res)
}

// errDropHoldsLastEntry refuses a Drop of a segment holding records of
// the stream's last entry (core.Stream.HoldsLastExt): a replay of that
// entry counts its records from the store, and would miss those. The
// leader does not propose one; the check here is what every node applies.
var errDropHoldsLastEntry = errors.New("the segment holds records of the stream's last entry")

// applyDrop applies a Drop on this node (index 0: a snapshot's oldest
// segment, below which every segment was dropped). A stream this node
// does not hold is passed over; any other failure stops applying (a
// restart replays the entry).
func (f *fsm) applyDrop(index uint64, c command) error {
	if f.tiering == nil {
		return nil // no tier 2 configured here: every copy stays local
	}
	if s, err := f.store.Lookup(c.stream); err == nil {
		if s.HoldsLastExt(c.segment) {
			// Every node refuses alike: the leader keeps the object.
			return fmt.Errorf("drop segment %d: %w", c.segment, errDropHoldsLastEntry)
		}
		// Whatever was applied before the drop is durable before it is:
		// after a crash no replay takes an older entry for the stream's
		// last, with part of it in the dropped segment.
		if err := s.FlushAll(f.ctx); err != nil {
			return fmt.Errorf("drop segment %d: sync the stream first: %w", c.segment, err)
		}
	}
	err := f.tiering.AdoptDrop(f.ctx, types.SegmentKey{Stream: c.stream, Segment: c.segment})
	if errors.Is(err, core.ErrUnknownStream) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("drop segment %d: %w", c.segment, err)
	}
	if index != 0 {
		f.drops.Add(1)
	}
	return nil
}

// Leading reports whether this node leads and applies: the coordinator
// uploads only then.
func (n *Node) Leading() bool { return n.IsLeader() && n.fsm.err() == nil }

// applyTierMove records a TierMove. A segment this node does not hold
// sealed is logged and passed over: not recording it only keeps the
// local copy longer. Any other failure stops applying (a restart replays
// the entry).
func (f *fsm) applyTierMove(index uint64, c command) error {
	if f.tiering == nil {
		return nil // no tier 2 configured here: every copy stays local
	}
	k := types.SegmentKey{Stream: c.stream, Segment: c.segment}
	err := f.tiering.AdoptUpload(f.ctx, k, c.object.Key, c.object.ETag)
	switch {
	case err == nil:
		if index != 0 { // 0: listed by a snapshot, counted when its entry applied
			f.tierMoves.Add(1)
		}
		return nil
	case errors.Is(err, coordinator.ErrNotSealedHere) || errors.Is(err, core.ErrUnknownStream):
		f.tierUnmatched.Add(1)
		f.log.Error("a tier move names a segment this node does not hold sealed; its copies here stay", "index", index,
			"stream_id", uint64(c.stream), "segment_id", uint64(c.segment), "key", c.object.Key, "error", err)
		return nil
	}
	return fmt.Errorf("record tier move of segment %d: %w", c.segment, err)
}
