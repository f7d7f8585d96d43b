package coordinator

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/aof2/aof2/core"
	"github.com/aof2/aof2/core/internal/tracing"
	"github.com/aof2/aof2/core/manifest"
	"github.com/aof2/aof2/core/tier1"
	"github.com/aof2/aof2/core/types"
)

// Retention bounds how much of each stream is kept. Zero fields keep
// everything. Only the oldest sealed segments go, never the newest
// segment, and only with a tier 2 (the deletion is recorded through
// Tier2DeleteQueued / Tier2Deleted, docs/tiering.md#retention).
type Retention struct {
	// MaxAge drops segments sealed longer ago than this.
	MaxAge time.Duration
	// MaxBytes drops the oldest segments while the stream's sealed
	// segments hold more record bytes than this.
	MaxBytes int64
}

func (r Retention) enabled() bool { return r.MaxAge > 0 || r.MaxBytes > 0 }

// retentionVictim returns the stream's oldest segment if the policy says
// it must go.
func (c *Coordinator) retentionVictim(s *core.Stream, now time.Time) (types.SegmentID, bool) {
	pol := c.cfg.Retention
	floor := c.retireFloor(s.ID())
	if (!pol.enabled() && floor == 0) || c.remote == nil {
		return 0, false
	}
	segs := s.SegmentList()
	if floor != 0 && (len(segs) == 0 || segs[0].ID >= floor) {
		c.reachedRetireFloor(s.ID(), floor)
		floor = 0
	}
	if len(segs) < 2 || segs[0].Footer == nil {
		return 0, false
	}
	var total int64
	for _, info := range segs {
		if info.Footer != nil {
			total += int64(info.Footer.DurableBytes)
		}
	}
	head := segs[0]
	if ms, _ := s.TierLog().Segment(head.ID); ms.Tier2.Key == "" && len(ms.Tier2.PendingDeletes) == 0 && !head.LossAccepted {
		return 0, false // let its upload finish first: no job races the delete (a lost segment has none coming)
	}
	old := pol.MaxAge > 0 && now.Sub(time.Unix(0, head.Footer.SealedAt)) > pol.MaxAge
	big := pol.MaxBytes > 0 && total > pol.MaxBytes
	return head.ID, old || big || head.ID < floor
}

// retire deletes the oldest segment of a stream from every tier: the
// delete is queued in the manifest first, so a crash half-way finishes it
// at the next start instead of resurrecting the segment.
func (c *Coordinator) retire(ctx context.Context, s *core.Stream, id types.SegmentID) error {
	return c.retireWith(ctx, s, id, true)
}

// retireJob is retire on a worker, which never waits for the segment's
// lock: a hydration holds it while it waits for tier-0 room, which may
// need this worker (an upload, an eviction). Busy, the segment is left to
// the next scan, which derives the drop again (the delete stays queued).
func (c *Coordinator) retireJob(ctx context.Context, s *core.Stream, id types.SegmentID) error {
	return c.retireWith(ctx, s, id, false)
}

func (c *Coordinator) retireWith(ctx context.Context, s *core.Stream, id types.SegmentID, wait bool) (err error) {
	ctx, span := c.startSpan(ctx, tracing.SpanRetentionDelete, s.ID(), id, 2)
	defer func() { tracing.End(span, err) }()
	key, err := c.queueDelete(ctx, s, id)
	if err != nil {
		return err
	}
	k := types.SegmentKey{Stream: s.ID(), Segment: id}
	var unlock func()
	if wait {
		unlock = c.lockKey(k)
	} else {
		var ok bool
		if unlock, ok = c.tryLockKey(k); !ok {
			return nil
		}
	}
	defer unlock()
	return c.dropQueued(ctx, s, id, key, span)
}

// queueDelete records the decision to delete segment id (its tier-2
// object is key) in the stream's manifest, once.
func (c *Coordinator) queueDelete(ctx context.Context, s *core.Stream, id types.SegmentID) (key string, err error) {
	tl := s.TierLog()
	key = c.remote.Layout().SegmentObjectKey(types.SegmentKey{Stream: s.ID(), Segment: id})
	if ms, known := tl.Segment(id); known && !containsKey(ms.Tier2.PendingDeletes, key) {
		if err := tl.Record(ctx, manifest.Tier2DeleteQueued{Header: hdr(id), Key: key}); err != nil {
			return key, err
		}
	}
	return key, nil
}

// dropQueued drops segment id, whose delete is queued, from the stream
// and every tier (finishDelete). The caller holds the segment's key lock.
// span, if not nil, gets the segment's size.
func (c *Coordinator) dropQueued(ctx context.Context, s *core.Stream, id types.SegmentID, key string, span trace.Span) error {
	lost := false
	if info, ok := s.Segment(id); ok {
		lost = info.Lost
		err := s.DropHead(id)
		if _, still := s.Segment(id); !still && info.Resident {
			// It left the catalog, even if removing its file failed (a
			// later DropHead retries that): the budget stops charging it.
			_ = c.budget.Removed(types.SegmentKey{Stream: s.ID(), Segment: id})
		}
		if err != nil {
			return err
		}
		if info.Footer != nil && span != nil {
			span.SetAttributes(tracing.KeyRecords.Int64(int64(info.Footer.RecordCount)), tracing.Bytes(int64(info.Footer.DurableBytes)))
		}
	} else if pending, wasLost := s.DropPending(id); pending {
		// An earlier drop left its files: they go before the delete is
		// recorded, or the next open would bring the segment back.
		lost = wasLost
		if err := s.DropHead(id); err != nil {
			return err
		}
	}
	return c.finishDelete(ctx, s, id, key, lost)
}

// finishDelete removes the warm artifact and the tier-2 object of a
// dropped segment (and, for a lost one, its lost record) and records the
// deletion (which retires it from the manifest index).
func (c *Coordinator) finishDelete(ctx context.Context, s *core.Stream, id types.SegmentID, key string, lost bool) error {
	if _, err := c.warm.Remove(types.SegmentKey{Stream: s.ID(), Segment: id}); err != nil && !errors.Is(err, tier1.ErrNotCached) {
		return fmt.Errorf("retention: remove warm artifact of segment %d: %w", id, err)
	}
	if c.ownsCommitLog() { // a replica's writer deleted the object
		if err := c.mayMutate(ctx); err != nil {
			return err
		}
		// The delete queued is in the tier-2 history before the object
		// goes (docs/adr-fencing.md): a writer fenced meanwhile deletes
		// nothing a newer writer's history still names.
		if err := c.publishIntent(ctx, s); err != nil {
			return fmt.Errorf("retention: delete %s: %w", key, err)
		}
		if err := c.remote.Delete(ctx, key); err != nil {
			return fmt.Errorf("retention: delete %s: %w", key, err)
		}
		if lost {
			lk := c.remote.Layout().LostKey(types.SegmentKey{Stream: s.ID(), Segment: id})
			if err := c.remote.Delete(ctx, lk); err != nil {
				return fmt.Errorf("retention: delete %s: %w", lk, err)
			}
		}
	}
	// Every copy is gone: record each so the index retires the segment
	// (a segment the manifest never knew, as a replica's lost one, has
	// nothing to retire).
	tl := s.TierLog()
	ms, known := tl.Segment(id)
	if !known {
		return nil
	}
	var recs []manifest.Record
	if ms.Tier0 {
		recs = append(recs, manifest.LocalEvicted{Header: hdr(id)})
	}
	if ms.Tier1.State == manifest.Tier1Compressed {
		recs = append(recs, manifest.LocalEvicted{Header: hdr(id)})
	}
	recs = append(recs, manifest.Tier2Deleted{Header: hdr(id), Key: key})
	return tl.Record(ctx, recs...)
}

// RetireFollowed drops segment id, the oldest of a read replica's stream
// s, whose tier-2 object the writer's retention deleted (core/replica):
// as retention does on the writer — the delete queued in the manifest,
// the segment dropped, its warm copy removed, the deletion recorded — but
// with no tier-2 request. Only in replica mode (Config.Replica).
func (c *Coordinator) RetireFollowed(ctx context.Context, s *core.Stream, id types.SegmentID) error {
	if !c.cfg.Replica {
		return fmt.Errorf("coordinator: RetireFollowed outside replica mode: %w", errNotWriter)
	}
	return c.retire(ctx, s, id)
}

// resumeDeletes finishes retention deletes a crash interrupted.
func (c *Coordinator) resumeDeletes(ctx context.Context, s *core.Stream) {
	if c.remote == nil {
		return
	}
	for _, ms := range s.TierLog().Segments() {
		for _, key := range ms.Tier2.PendingDeletes {
			id := ms.SegmentID
			var err error
			if _, ok := s.Segment(id); ok {
				err = c.retire(ctx, s, id)
			} else {
				sctx, span := c.startSpan(ctx, tracing.SpanRetentionDelete, s.ID(), id, 2)
				err = c.finishDelete(sctx, s, id, key, false)
				tracing.End(span, err)
			}
			if err != nil {
				c.log.Warn("could not finish a retention delete; the scan retries it", "stream_id", uint64(s.ID()), "segment_id", uint64(id), "error", err)
			}
		}
	}
}

func containsKey(keys []string, k string) bool {
	for _, x := range keys {
		if x == k {
			return true
		}
	}
	return false
}
