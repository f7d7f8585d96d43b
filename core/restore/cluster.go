package restore

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/aof2/aof2/core/manifest"
	"github.com/aof2/aof2/core/tier2"
	"github.com/aof2/aof2/core/types"
	"github.com/aof2/aof2/core/vfs"
)

// RunCluster gives a cluster member whose data directory holds no
// streams (a new node, or one whose disk was wiped) what tier 2 holds of
// each stream, so that it rejoins without copying those bytes from a
// peer (docs/adr-replication.md, "Rejoining from tier 2").
//
// A cluster uploads no manifest history: its Raft log is the record, and
// every member's segments are identical. So per stream it takes the
// segment objects that follow one another from the stream's first
// record (each starts where the one before ends) and records them as
// cold, exactly as Run does; it stops at the first id tier 2 does not
// hold yet (an upload still under way leaves a gap), since what follows
// is copied from a peer when Raft hands the node a snapshot. Unlike Run
// it writes nothing to tier 2 and records no id as lost: nothing is lost
// in a cluster, only not yet uploaded.
//
// A stream in cfg.Oldest (as a member answered: its oldest segment, which
// tier 2 held then) is taken from that segment instead. For a stream
// whose first segments the cluster's retention dropped, no member holds
// the records before it; objects below it (dropped, their deletes not
// swept yet) are passed over. Tier 2 must hold that segment, since the
// store starts a stream only at a segment's first record; when it does
// not any more (dropped since the answer), the stream fails with
// ErrOldestNotInTier2 and a rerun, asking again, goes on (it skips the
// streams already restored).
func RunCluster(ctx context.Context, cfg Config) (Report, error) {
	r, rep, err := start(ctx, &cfg)
	if err != nil {
		return rep, err
	}
	streams, err := cfg.Remote.ListStreams(ctx)
	if err != nil {
		return rep, fmt.Errorf("restore: list the prefix's streams: %w", err)
	}
	for s := range cfg.Oldest {
		if !slices.Contains(streams, s) {
			streams = append(streams, s) // none of its objects listed: its stream fails below
		}
	}
	return r.each(ctx, rep, streams, r.clusterStream)
}

func (r *run) clusterStream(ctx context.Context, s types.StreamID) (StreamReport, error) {
	began := time.Now()
	var sr StreamReport
	stage, final, exists, err := r.stage(s)
	if err != nil || exists {
		sr.Skipped = exists
		return sr, err
	}
	l, err := r.cfg.Remote.ListStream(ctx, s)
	if err != nil {
		return sr, fmt.Errorf("stream %d: list: %w", s, err)
	}
	oldest, cut := r.cfg.Oldest[s]
	entries, err := r.coldRun(ctx, s, l, oldest)
	if err != nil {
		return sr, err
	}
	if cut && (len(entries) == 0 || entries[0].id != oldest) {
		return sr, fmt.Errorf("%w: stream %d segment %d", ErrOldestNotInTier2, s, oldest)
	}
	if len(entries) == 0 {
		// Nothing from the stream's start: the peer copy brings it all.
		sr.Skipped = true
		return sr, vfs.RemoveAll(r.cfg.FS, stage)
	}
	opts := r.cfg.Manifest
	opts.Logger = r.log.Named("manifest")
	opts.SnapshotEveryBytes = -1
	log, err := manifest.Open(ctx, r.cfg.FS, stage, s, opts)
	if err != nil {
		return sr, fmt.Errorf("stream %d: manifest: %w", s, err)
	}
	defer log.Close()
	sr.Cold, sr.Records, err = r.install(ctx, s, stage, final, log, entries)
	if err != nil {
		return sr, err
	}
	sr.Duration = time.Since(began)
	r.log.Info("stream restored from tier 2", "stream_id", uint64(s), "cold_segments", sr.Cold, "records", sr.Records,
		"duration", sr.Duration)
	return sr, nil
}

// coldRun describes the segment objects of l that continue one another
// from the stream's first record: the longest run of consecutive ids
// from the lowest listed at or above from whose first starts the stream
// (from 0) or is segment from, and whose every next one starts where the
// one before ends.
func (r *run) coldRun(ctx context.Context, s types.StreamID, l tier2.Listing, from types.SegmentID) ([]*entry, error) {
	objs := slices.Clone(l.Segments)
	slices.SortFunc(objs, func(a, b tier2.Listed) int { return cmp.Compare(a.Ref.ID, b.Ref.ID) })
	var entries []*entry
	for i := range objs {
		id := types.SegmentID(objs[i].Ref.ID)
		if id < from {
			continue // dropped by retention; its delete not swept yet
		}
		if len(entries) > 0 && id != entries[len(entries)-1].id+1 {
			break
		}
		entries = append(entries, &entry{id: id, obj: &objs[i]})
	}
	if err := r.describeRun(ctx, s, entries); err != nil {
		return nil, err
	}
	for i, e := range entries {
		if e.err != nil {
			// The peer copy brings this segment and the ones after it; a
			// damaged object is the leader's scrubber's to repair.
			r.log.Warn("tier-2 segment object not taken for the rejoin; the records from it on are copied from a peer",
				"stream_id", uint64(s), "key", e.obj.Info.Key, "error", e.err)
			entries = entries[:i]
			break
		}
	}
	if from == 0 && len(entries) > 0 && (entries[0].h.BaseRecord != 0 || entries[0].h.BaseOffset != 0) {
		return nil, nil
	}
	for i := 1; i < len(entries); i++ {
		if checkChain(s, entries[i-1:i+1]) != nil {
			return nil, fmt.Errorf("%w: stream %d: segment %d does not start where segment %d ends",
				ErrSegmentMismatch, s, entries[i].id, entries[i-1].id)
		}
	}
	return entries, nil
}

// describeRun reads the header and footer of each entry from tier 2, as
// describeCold does, but records a failure in the entry instead of
// failing the run (the run is cut there). Only the context's end fails.
func (r *run) describeRun(ctx context.Context, s types.StreamID, entries []*entry) error {
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(r.cfg.Concurrency)
	for _, e := range entries {
		g.Go(func() error {
			h, f, err := r.describe(gctx, types.SegmentKey{Stream: s, Segment: e.id}, e.obj)
			if err == nil && (h.StreamID != s || h.SegmentID != e.id || f.SegmentID != e.id) {
				err = fmt.Errorf("%w: %s holds segment %d of stream %d", ErrSegmentMismatch, e.obj.Info.Key, h.SegmentID, h.StreamID)
			}
			e.h, e.f, e.err = h, f, err
			return nil
		})
	}
	_ = g.Wait()
	return ctx.Err()
}
