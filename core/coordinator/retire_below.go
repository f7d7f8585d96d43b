package coordinator

import (
	"errors"
	"fmt"

	"github.com/aof2/aof2/core"
	"github.com/aof2/aof2/core/types"
)

// ErrRetireRange refuses a RetireBelow that retention cannot carry out:
// no tier 2 or not this node's to delete (a replica, a cluster member),
// or a range that reaches the stream's newest segment.
var ErrRetireRange = errors.New("coordinator: cannot retire that range")

// RetireBelow asks retention to delete stream's segments with ids below
// segment, oldest first, exactly as retention.max_age or max_bytes would:
// each delete is committed to the manifest (and tier 2's history) first,
// a segment waits for its upload, and the stream keeps at least one
// segment. The scan works through them; the request ends once the
// stream's first segment is segment or later, and does not survive a
// restart (what was deleted stays deleted; ask again for the rest). It
// returns how many segments the request covers now.
func (c *Coordinator) RetireBelow(s *core.Stream, segment types.SegmentID) (int, error) {
	if c.remote == nil || c.cfg.Replica || c.cfg.Cluster != nil {
		return 0, fmt.Errorf("%w: retention runs on a single-node writer with a tier 2 (cluster members retire through Raft)", ErrRetireRange)
	}
	segs := s.SegmentList()
	if len(segs) == 0 {
		return 0, nil
	}
	if newest := segs[len(segs)-1].ID; segment > newest {
		return 0, fmt.Errorf("%w: stream %d: segment %d is past its newest, %d; the stream keeps at least its newest segment", ErrRetireRange, s.ID(), segment, newest)
	}
	n := 0
	for _, info := range segs {
		if info.ID < segment {
			n++
		}
	}
	c.mu.Lock()
	if c.mu.retireBelow == nil {
		c.mu.retireBelow = map[types.StreamID]types.SegmentID{}
	}
	if n == 0 {
		delete(c.mu.retireBelow, s.ID())
	} else {
		c.mu.retireBelow[s.ID()] = max(c.mu.retireBelow[s.ID()], segment)
	}
	c.mu.Unlock()
	if n > 0 {
		c.log.Warn("segments to retire on an operator's request", "stream_id", uint64(s.ID()), "below_segment", uint64(segment), "segments", n)
	}
	return n, nil
}

// retireFloor is the id below which an operator asked the stream's
// segments retired (0: none); a floor reached is forgotten.
func (c *Coordinator) retireFloor(id types.StreamID) types.SegmentID {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.mu.retireBelow[id]
}

// reachedRetireFloor forgets a floor the stream's first segment reached
// (unless a later request raised it meanwhile).
func (c *Coordinator) reachedRetireFloor(id types.StreamID, floor types.SegmentID) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.mu.retireBelow[id] == floor {
		delete(c.mu.retireBelow, id)
		c.log.Info("operator's retirement done", "stream_id", uint64(id), "below_segment", uint64(floor))
	}
}
