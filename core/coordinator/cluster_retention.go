package coordinator

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/aof2/aof2/core"
	"github.com/aof2/aof2/core/types"
	"github.com/aof2/aof2/pluginapi"
)

// Retention in a cluster (docs/adr-replication.md, "Deletes in a
// cluster"). The leader's scan picks a stream's oldest segment as a
// single writer's does, and proposes a Drop entry for it. Every node
// applies the entry (AdoptDrop): the delete is queued in its manifest,
// the segment leaves the stream, its warm copy and budget share go, and
// the deletion is recorded — no node but the leader touches tier 2. The
// leader deletes the object only once the entry is applied here: it is
// then in the Raft log, which every later leader holds, so a delete never
// removes what the history keeps. A delete a failover cut is rolled
// forward by the next leader's sweep, once per term: the objects of ids
// below a stream's oldest segment were dropped by committed entries.

// AdoptDrop drops segment k, its stream's oldest, whose tier-2 object the
// cluster's retention deletes: what applying a Drop entry does on every
// node. Applying it again is a no-op. It fails only if the decision
// cannot be recorded (the manifest's disk): once the delete is queued,
// applying never waits nor fails for the drop itself, since the apply
// loop must go on. A segment busy here (its key lock held by a hydration
// or a repair, a reader on it, its warm copy open) keeps its queued
// delete, and the scan drops it once it is free (jobDropLocal). A node
// without a tier 2 keeps the segment (retention needs one; it is logged).
func (c *Coordinator) AdoptDrop(ctx context.Context, k types.SegmentKey) error {
	s, err := c.stream(k.Stream)
	if err != nil {
		return err
	}
	if c.remote == nil {
		c.log.Error("retention: the cluster dropped a segment, and this node has no tier 2 to record it against; it keeps the segment",
			"stream_id", uint64(k.Stream), "segment_id", uint64(k.Segment))
		return nil
	}
	key, err := c.queueDelete(ctx, s, k.Segment)
	if err != nil {
		return err
	}
	unlock, ok := c.tryLockKey(k)
	if !ok {
		c.log.Info("retention: a dropped segment is being hydrated or repaired here; it goes once that is done",
			"stream_id", uint64(k.Stream), "segment_id", uint64(k.Segment))
		return nil
	}
	defer unlock()
	if err := c.dropQueued(ctx, s, k.Segment, key, nil); err != nil {
		c.log.Info("retention: a dropped segment is still in use here; it goes once it is free",
			"stream_id", uint64(k.Stream), "segment_id", uint64(k.Segment), "error", err)
	}
	return nil
}

// dropInCluster is the leader's retention of segment id: a Drop entry,
// then, once it is applied here, the object's delete.
func (c *Coordinator) dropInCluster(ctx context.Context, s *core.Stream, id types.SegmentID) error {
	k := types.SegmentKey{Stream: s.ID(), Segment: id}
	key := c.remote.Layout().SegmentObjectKey(k)
	info, ok := s.Segment(id)
	if !ok {
		return nil // dropped meanwhile (an entry another leader proposed)
	}
	if s.HoldsLastExt(id) {
		// Every node would refuse the Drop: a replay of the stream's last
		// entry counts its records here. The next append lifts it.
		return nil
	}
	if err := c.cfg.Cluster.RecordDrop(ctx, k, key); err != nil {
		return fmt.Errorf("retention: drop segment %d: %w", id, err)
	}
	if err := c.deleteDropped(ctx, k, key, info.Lost); err != nil {
		// Nothing here remembers the object any more (the segment is
		// dropped): the stream's sweep, run again at the next scan,
		// deletes it.
		c.mu.Lock()
		delete(c.mu.swept, s.ID())
		c.mu.Unlock()
		return err
	}
	return nil
}

// deleteDropped deletes the object of a segment every node drops (an
// applied Drop entry): only while this node leads, which bounds how long
// a deposed leader keeps deleting. An object already gone is no error.
func (c *Coordinator) deleteDropped(ctx context.Context, k types.SegmentKey, key string, lost bool) error {
	if !c.cfg.Cluster.Leading() {
		return fmt.Errorf("retention: delete %s: %w", key, errNotLeading)
	}
	keys := []string{key}
	if lost {
		keys = append(keys, c.remote.Layout().LostKey(k))
	}
	for _, key := range keys {
		if err := c.remote.Delete(ctx, key); err != nil && !errors.Is(err, pluginapi.ErrNotFound) {
			return fmt.Errorf("retention: delete %s: %w", key, err)
		}
	}
	return nil
}

// sweepDropped is a new leader's roll-forward of deletes a failover cut,
// once per term (term): the stream's tier-2 segment objects below its
// oldest segment here were dropped by entries this node applied (all
// those of earlier terms: it leads with its first barrier applied), and
// go.
func (c *Coordinator) sweepDropped(ctx context.Context, s *core.Stream, term uint64) error {
	head, ok := c.clusterHead(s)
	if !ok {
		return nil
	}
	objs, err := c.Tier2Segments(ctx, s.ID())
	if err != nil {
		return fmt.Errorf("retention: list the stream's objects: %w", err)
	}
	for _, o := range objs {
		if o.SegmentID >= head {
			continue
		}
		c.log.Info("retention: deleting the object of a dropped segment (a delete a failover cut)",
			"stream_id", uint64(s.ID()), "segment_id", uint64(o.SegmentID), "key", o.Key)
		if err := c.deleteDropped(ctx, types.SegmentKey{Stream: s.ID(), Segment: o.SegmentID}, o.Key, false); err != nil {
			return err
		}
	}
	c.mu.Lock()
	c.mu.swept[s.ID()] = term
	c.mu.Unlock()
	return nil
}

// dropLocal finishes the drop of segment id, whose delete a Drop entry
// queued while it was busy here. Busy still, it waits for the next scan:
// a worker does not wait on a key lock a hydration may hold for long.
func (c *Coordinator) dropLocal(ctx context.Context, s *core.Stream, id types.SegmentID) error {
	k := types.SegmentKey{Stream: s.ID(), Segment: id}
	unlock, ok := c.tryLockKey(k)
	if !ok {
		return nil
	}
	defer unlock()
	key := c.remote.Layout().SegmentObjectKey(k)
	if err := c.dropQueued(ctx, s, id, key, nil); err != nil && !errors.Is(err, core.ErrSegmentBusy) {
		return err
	}
	return nil
}

// clusterHead is stream s's oldest segment for the cluster: the first
// whose delete is not queued (a queued one was dropped by an applied
// entry, and lingers only while it is busy here).
func (c *Coordinator) clusterHead(s *core.Stream) (types.SegmentID, bool) {
	tl := s.TierLog()
	for _, info := range s.SegmentList() {
		if !deleteQueued(tl, info.ID) {
			return info.ID, true
		}
	}
	return 0, false
}

// scanClusterRetention queues a cluster member's retention work for
// stream s: on every node, the drop of each segment whose delete is
// queued but not done (it was busy when its Drop applied); on the leader
// of term with its first barrier applied (leads), the stream's next Drop
// unless a drop is still being finished, and once per term its sweep.
func (c *Coordinator) scanClusterRetention(s *core.Stream, term uint64, leads bool) {
	pending := false
	for _, ms := range s.TierLog().Segments() {
		if len(ms.Tier2.PendingDeletes) > 0 {
			pending = true
			c.enqueue(job{kind: jobDropLocal, stream: s.ID(), seg: ms.SegmentID})
		}
	}
	if !leads || c.remote == nil {
		return
	}
	if id, ok := c.retentionVictim(s, time.Now()); ok && !pending {
		c.enqueue(job{kind: jobDrop, stream: s.ID(), seg: id})
	}
	c.mu.Lock()
	swept := c.mu.swept[s.ID()] == term
	c.mu.Unlock()
	if !swept && c.cfg.Retention.enabled() {
		c.enqueue(job{kind: jobSweep, stream: s.ID(), term: term})
	}
}

// ErrNotCaughtUp: a cluster follower found no tier-2 object for a segment
// it holds, and cannot tell a segment retention dropped (by an entry it
// has not applied yet) from a lost object. Retry, or read from the leader,
// which can.
var ErrNotCaughtUp = errors.New("coordinator: this cluster member may be behind the leader; retry or read from the leader")

// droppedMeanwhile judges a hydration that found no object (err) on a
// cluster member: the segment may have been dropped by a Drop entry this
// node has not applied yet, its object deleted by the leader. The node
// catches up first; a segment dropped (or being dropped) by then answers
// types.ErrNotFound for retention, not a missing object. A node that
// cannot catch up (cut off from the leader) answers that error instead.
func (c *Coordinator) droppedMeanwhile(ctx context.Context, s *core.Stream, id types.SegmentID, err error) error {
	if c.cfg.Cluster == nil || c.cfg.Cluster.CatchUp == nil {
		return err
	}
	if cerr := c.cfg.Cluster.CatchUp(ctx); cerr != nil {
		// The catch-up's error, not the missing object's: nothing is
		// known lost until the node has caught up.
		return fmt.Errorf("segment %d: tier 2 has no object (%v), and this node could not catch up with the cluster to tell whether retention dropped it: %w",
			id, err, cerr)
	}
	if _, present := s.Segment(id); present && !deleteQueued(s.TierLog(), id) {
		if c.cfg.Cluster.Leading() {
			return err // the leader's barrier is a read index: the object is lost
		}
		// A follower's commit index stops at its own log: one still
		// catching up (a rejoin) may not hold the Drop yet. Only the
		// leader judges a loss.
		return fmt.Errorf("stream %d segment %d: tier 2 has no object (%v): %w", s.ID(), id, err, ErrNotCaughtUp)
	}
	return fmt.Errorf("stream %d segment %d: dropped by retention: %w", s.ID(), id, types.ErrNotFound)
}
