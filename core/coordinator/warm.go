package coordinator

import (
	"context"
	"errors"

	"github.com/aof2/aof2/core"
	"github.com/aof2/aof2/core/manifest"
	"github.com/aof2/aof2/core/tier1"
	"github.com/aof2/aof2/core/types"
)

// Warm-cache eviction. The tier-1 budget is enforced only with a tier 2
// configured: without one the warm artifact of a segment no longer in tier
// 0 is its only copy. And only artifacts of segments absent from tier 0
// are evicted, uploaded ones (the cache's own rule): a segment still in
// tier 0 keeps its warm copy, so that a LocalEvicted record in the
// manifest always names the warmest copy that is gone — tier 0 while it is
// present, else tier 1 — and eviction never races a compression that
// would recreate the artifact.

// scanWarm queues evictions while the warm cache is over its budget.
func (c *Coordinator) scanWarm(st *core.Store) {
	if c.remote == nil || c.warm.OverBudget() == 0 {
		return
	}
	resident := c.residentSegments(st)
	for _, k := range c.warm.EvictionCandidates(func(k types.SegmentKey) bool { return resident[k] }) {
		c.enqueue(job{kind: jobWarmEvict, stream: k.Stream, seg: k.Segment})
	}
}

// residentSegments are the segments whose tier-0 file is present.
func (c *Coordinator) residentSegments(st *core.Store) map[types.SegmentKey]bool {
	resident := map[types.SegmentKey]bool{}
	for _, id := range st.Streams() {
		s, err := st.Lookup(id)
		if err != nil {
			continue
		}
		for _, info := range s.SegmentList() {
			if info.Resident {
				resident[types.SegmentKey{Stream: id, Segment: info.ID}] = true
			}
		}
	}
	return resident
}

// evictWarm deletes one warm artifact and records it, under the segment's
// lock so that no hydration brings the segment into tier 0 meanwhile —
// while the cache is over its budget, or whatever the budget when the disk
// is filling (reclaim, relieveDisk). The
// file goes first, then the record (like tier-0 eviction): a crash in
// between leaves the manifest naming an artifact that is gone, which Start
// records then (see adopt).
func (c *Coordinator) evictWarm(ctx context.Context, s *core.Stream, id types.SegmentID, reclaim bool) error {
	k := types.SegmentKey{Stream: s.ID(), Segment: id}
	// Never wait for the lock: a hydration holds it while it waits for
	// tier-0 room, which may need this worker (an upload, an eviction).
	// The segment is being read anyway; the next scan decides again.
	unlock, ok := c.tryLockKey(k)
	if !ok {
		return nil
	}
	defer unlock()
	info, ok := s.Segment(id)
	if !ok || info.Resident || (!reclaim && c.warm.OverBudget() == 0) {
		return nil
	}
	ms, _ := s.TierLog().Segment(id)
	if ms.Tier2.Key == "" || c.isMissing(k) || ms.Tier0 || ms.Tier1.State != manifest.Tier1Compressed {
		return nil // not verified in tier 2, or the manifest would misread the record
	}
	ev, err := c.warm.Remove(k)
	switch {
	case errors.Is(err, tier1.ErrPinned):
		return nil // a reader or a hydration has it open: the next scan decides again
	case errors.Is(err, tier1.ErrNotCached):
		ev.Bytes = 0
	case err != nil:
		return err
	}
	c.log.Info("tier1_eviction", "stream_id", uint64(s.ID()), "segment_id", uint64(id), "reclaimed_bytes", ev.Bytes)
	return s.TierLog().Record(ctx, manifest.LocalEvicted{Header: hdr(id), ReclaimedBytes: uint64(ev.Bytes)})
}
