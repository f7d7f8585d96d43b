package replica

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"golang.org/x/sync/errgroup"

	"github.com/aof2/aof2/core"
	"github.com/aof2/aof2/core/restore"
	"github.com/aof2/aof2/core/segment"
	"github.com/aof2/aof2/core/tier2"
	"github.com/aof2/aof2/core/types"
	"github.com/aof2/aof2/pluginapi"
)

// found is a segment object seen in tier 2 and not followed yet.
type found struct {
	id   types.SegmentID
	info pluginapi.ObjectInfo
	h    segment.Header
	f    segment.Footer
}

// next is the id the stream's next segment takes (1 for an empty one).
func next(s *core.Stream) types.SegmentID {
	segs := s.SegmentList()
	if len(segs) == 0 {
		return 1
	}
	return segs[len(segs)-1].ID + 1
}

// pollStream brings one stream up to tier 2: from the listing when there
// is one (bulk, concurrent describes), then by polling the next key.
func (f *Follower) pollStream(ctx context.Context, s *core.Stream, l *tier2.Listing) error {
	if l != nil {
		if err := f.applyListing(ctx, s, l); err != nil {
			return err
		}
	}
	for {
		id := next(s)
		k := types.SegmentKey{Stream: s.ID(), Segment: id}
		if f.isLost(k) {
			// A restore of the writer recorded the id as lost for good
			// (tier2.Store.RecordLost); the record wins over an object
			// that a fenced writer's last upload may have left.
			if err := f.followLost(ctx, s, k); err != nil {
				return err
			}
			continue
		}
		info, err := f.cfg.Remote.Stat(ctx, f.cfg.Remote.Layout().SegmentObjectKey(k))
		if errors.Is(err, pluginapi.ErrNotFound) {
			now := f.cfg.Now()
			f.update(s.ID(), func(st *state) {
				if st.stalled == nil {
					st.caughtUp, st.behind = now, 0
				}
			})
			return nil
		}
		if err != nil {
			return err
		}
		// A lost record written since the last listing wins too: the
		// object may be a fenced writer's last upload, landed after the
		// new writer's restore listed the prefix (docs/adr-fencing.md).
		if _, err := f.cfg.Remote.Stat(ctx, f.cfg.Remote.Layout().LostKey(k)); err == nil {
			if err := f.followLost(ctx, s, k); err != nil {
				return err
			}
			continue
		} else if !errors.Is(err, pluginapi.ErrNotFound) {
			return err
		}
		fo := &found{id: id, info: info}
		f.noteBehind(s.ID(), []*found{fo})
		if err := f.describe(ctx, s.ID(), []*found{fo}); err != nil {
			return err
		}
		if err := f.follow(ctx, s, fo); err != nil {
			return err
		}
	}
}

// isLost reports whether the last listing found segment k recorded as
// lost. Between listings, pollStream also checks the lost key of each
// segment it finds (one more request per new segment, none per idle
// poll).
func (f *Follower) isLost(k types.SegmentKey) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	st := f.streams[k.Stream]
	return st != nil && st.lost[k.Segment]
}

// followLost follows segment k as lost, from its record in tier 2.
func (f *Follower) followLost(ctx context.Context, s *core.Stream, k types.SegmentKey) error {
	key := f.cfg.Remote.Layout().LostKey(k)
	b, _, err := f.cfg.Remote.Fetch(ctx, key, tier2.Expect{})
	if err != nil {
		return err
	}
	h, ft, err := core.DecodeLostStub(b, k.Stream, f.cfg.SegmentSize)
	if err != nil || h.SegmentID != k.Segment {
		return &types.CorruptError{Path: key, Reason: fmt.Sprintf("lost stub of segment %d: %v", h.SegmentID, err)}
	}
	if err := s.FollowLost(ctx, h, ft); err != nil {
		return err
	}
	f.log.Info("replica: segment followed as lost (the writer's restore accepted its loss)", "stream_id", uint64(k.Stream), "segment_id", uint64(k.Segment))
	return nil
}

// applyListing drops what the writer's retention deleted, repairs the
// records of segments a crash left unrecorded, detects a gap, and
// follows every listed segment that continues the stream.
func (f *Follower) applyListing(ctx context.Context, s *core.Stream, l *tier2.Listing) error {
	objs := map[types.SegmentID]pluginapi.ObjectInfo{}
	var ids []types.SegmentID
	for _, o := range l.Segments {
		id := types.SegmentID(o.Ref.ID)
		objs[id] = o.Info
		ids = append(ids, id)
	}
	slices.Sort(ids)
	present := slices.Clone(ids) // segments and ids recorded lost
	lost := map[types.SegmentID]bool{}
	for _, o := range l.Lost {
		lost[types.SegmentID(o.Ref.ID)] = true
		present = append(present, types.SegmentID(o.Ref.ID))
	}
	slices.Sort(present)
	f.update(s.ID(), func(st *state) { st.lost = lost })
	if len(ids) > 0 {
		f.dropRetired(ctx, s, ids[0])
	}
	tl := s.TierLog()
	for _, info := range s.SegmentList() {
		obj, ok := objs[info.ID]
		// A segment followed as lost has no records to repair: an object
		// under its id is a fenced writer's stray upload, which no history
		// names (docs/adr-fencing.md), never the segment's tier-2 copy.
		if ms, _ := tl.Segment(info.ID); ok && !info.Lost && ms.Tier2.Key == "" && info.Footer != nil {
			if err := s.FollowRepair(ctx, info.ID, core.Remote{Key: obj.Key, ETag: obj.ETag, ModTime: obj.ModTime}); err != nil {
				return err
			}
		}
	}
	n := next(s)
	if len(s.SegmentList()) == 0 && len(present) > 0 && present[0] > n {
		start, err := f.firstLive(ctx, s.ID(), l, present[0])
		if err != nil {
			return err
		}
		n = start
		if lost[n] {
			// The first live id is one a restore recorded lost: follow it
			// here, or the empty stream's polls would look for segment 1.
			if err := f.followLost(ctx, s, types.SegmentKey{Stream: s.ID(), Segment: n}); err != nil {
				return err
			}
			n = next(s)
		}
	}
	var run []*found
	for _, id := range ids {
		if id < n {
			continue
		}
		if id != n+types.SegmentID(len(run)) || lost[id] {
			break // a gap, or a lost id: pollStream goes on from there
		}
		run = append(run, &found{id: id, info: objs[id]})
	}
	f.checkGap(s.ID(), n, present)
	if len(run) == 0 {
		return nil
	}
	f.noteBehind(s.ID(), run)
	for len(run) > 0 {
		batch := run[:min(len(run), 4*f.cfg.Concurrency)]
		run = run[len(batch):]
		if err := f.describe(ctx, s.ID(), batch); err != nil {
			return err
		}
		for _, fo := range batch {
			if err := f.follow(ctx, s, fo); err != nil {
				return err
			}
		}
	}
	return nil
}

// firstLive is where an empty stream starts following when tier 2's
// lowest segment (or recorded loss) is lowest > 1. Tier 2 alone cannot
// tell the segments the writer's retention deleted from those whose
// upload has not landed yet (uploads run in parallel: segment 2 may be in
// tier 2 before segment 1); starting at lowest in the second case would
// skip records for good. The writer's tier-2 history can: retention
// commits each delete to it before deleting (docs/adr-fencing.md), and a
// retired segment leaves the folded index. So:
//   - a segment the history holds below lowest and is not deleting is
//     waited for (following stops there, reported as a gap, until it
//     lands);
//   - else, when the history knows a segment at or past lowest, every
//     earlier id it lacks was retired (the log records segments in id
//     order): start at lowest;
//   - else the history does not reach that far yet (its chunks lag the
//     uploads by a rotation period or two): start at the beginning and
//     decide again at the next listing.
func (f *Follower) firstLive(ctx context.Context, stream types.StreamID, l *tier2.Listing, lowest types.SegmentID) (types.SegmentID, error) {
	x, err := restore.FoldHistory(ctx, f.cfg.Remote, f.log, stream, *l)
	if err != nil {
		return 0, fmt.Errorf("stream %d: read the writer's history to find its first live segment: %w", stream, err)
	}
	segs := x.Segments()
	for _, st := range segs {
		if st.SegmentID < lowest && len(st.Tier2.PendingDeletes) == 0 {
			return st.SegmentID, nil
		}
	}
	for _, st := range segs {
		if st.SegmentID >= lowest {
			return lowest, nil
		}
	}
	return 1, nil
}

// dropRetired removes the stream's oldest segments that tier 2 no longer
// holds (the writer's retention deleted them). A segment a reader is on
// stays until the next listing.
func (f *Follower) dropRetired(ctx context.Context, s *core.Stream, lowest types.SegmentID) {
	if f.cfg.Retire == nil {
		return
	}
	for {
		segs := s.SegmentList()
		if len(segs) < 2 || segs[0].ID >= lowest {
			return
		}
		if err := f.cfg.Retire(ctx, s, segs[0].ID); err != nil {
			if !errors.Is(err, core.ErrSegmentBusy) {
				f.log.Warn("replica: could not drop a segment the writer's retention deleted", "stream_id", uint64(s.ID()), "segment_id", uint64(segs[0].ID), "error", err)
			}
			return
		}
	}
}

// checkGap marks the stream stalled when its next segment is missing and
// a later one is listed: following stops there, visibly.
func (f *Follower) checkGap(id types.StreamID, n types.SegmentID, listed []types.SegmentID) {
	var err error
	if len(listed) > 0 && listed[len(listed)-1] > n && !slices.Contains(listed, n) {
		err = fmt.Errorf("%w: stream %d: segment %d (tier 2 holds up to %d)", ErrStalled, id, n, listed[len(listed)-1])
	}
	f.update(id, func(st *state) {
		if err != nil && st.stalled == nil {
			f.log.Error("replica: following stopped at a gap in tier 2; the stream is served up to it", "stream_id", uint64(id), "segment_id", uint64(n), "error", err)
		}
		st.stalled = err
	})
}

// noteBehind adds what the found segments hold to the stream's lag.
func (f *Follower) noteBehind(id types.StreamID, fs []*found) {
	var n uint64
	for _, fo := range fs {
		if m, err := tier2.ParseMetadata(fo.info.Metadata); err == nil {
			n += m.RecordCount
		}
	}
	f.update(id, func(st *state) { st.behind = n })
}

// describe reads every found segment's header and footer, concurrently.
func (f *Follower) describe(ctx context.Context, stream types.StreamID, fs []*found) error {
	g, ctx := errgroup.WithContext(ctx)
	g.SetLimit(f.cfg.Concurrency)
	for _, fo := range fs {
		g.Go(func() error {
			h, ft, err := restore.Describe(ctx, f.cfg.Remote, types.SegmentKey{Stream: stream, Segment: fo.id}, fo.info.ETag)
			if err != nil {
				return fmt.Errorf("describe segment %d (%s): %w", fo.id, fo.info.Key, err)
			}
			if h.StreamID != stream || h.SegmentID != fo.id {
				return &types.CorruptError{Path: fo.info.Key, Reason: fmt.Sprintf("holds segment %d of stream %d", h.SegmentID, h.StreamID)}
			}
			fo.h, fo.f = h, ft
			return nil
		})
	}
	return g.Wait()
}

// follow adds one described segment to the stream.
func (f *Follower) follow(ctx context.Context, s *core.Stream, fo *found) error {
	obj := core.Remote{Key: fo.info.Key, ETag: fo.info.ETag, ModTime: fo.info.ModTime}
	if err := s.Follow(ctx, fo.h, fo.f, obj); err != nil {
		return err
	}
	f.update(s.ID(), func(st *state) { st.behind -= min(st.behind, fo.f.RecordCount) })
	f.log.Debug("replica: segment followed", "stream_id", uint64(s.ID()), "segment_id", uint64(fo.id), "records", fo.f.RecordCount)
	return nil
}
