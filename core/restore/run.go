package restore

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"golang.org/x/sync/errgroup"

	"github.com/aof2/aof2/core"
	"github.com/aof2/aof2/core/coordinator"
	"github.com/aof2/aof2/core/manifest"
	"github.com/aof2/aof2/core/segment"
	"github.com/aof2/aof2/core/tier2"
	"github.com/aof2/aof2/core/types"
	"github.com/aof2/aof2/core/vfs"
	"github.com/aof2/aof2/internal/logfields"
)

// StagingDir is where streams are built, under the data directory; it
// exists from a restore's start until every stream is done.
const StagingDir = "restore.tmp"

// Config says what to restore into.
type Config struct {
	// DataDir is the data directory to rebuild; the caller holds its
	// lock.
	DataDir string
	// Remote is the tier-2 store of the prefix to restore from.
	Remote *tier2.Store
	// Manifest are the manifest options the host runs with (chunk
	// capacity, log_only).
	Manifest manifest.Options
	// SegmentSize is the host's segment.size: the capacity that bounds
	// the stubs of lost segments.
	SegmentSize int64
	// Concurrency bounds the segments described at once per stream and
	// (a quarter of it) the streams restored at once. Default 16.
	Concurrency int
	// ReserveSegments is tier2.reserve_segments (default 16): ids past the
	// highest reservation up to this many more, or the window the
	// reservation records if larger, are restored as lost too, covering
	// the one reservation the previous writer may have had in flight when
	// it was taken over.
	ReserveSegments int
	// Oldest is RunCluster's: streams with their oldest segment now, as
	// a member of the cluster lists it (with retention, not the first),
	// when tier 2 held it then. Those streams are taken from that
	// segment on; every other from its first record, if tier 2 holds it.
	Oldest map[types.StreamID]types.SegmentID
	FS     vfs.FS
	Logger hclog.Logger
}

// StreamReport is what the restore of one stream did.
type StreamReport struct {
	Stream types.StreamID `json:"stream_id"`
	// Skipped: the stream was already in the data directory (restored by
	// an earlier run, or never lost).
	Skipped bool `json:"skipped,omitempty"`
	// Snapshot is the tier-2 snapshot the history starts from (none:
	// chunk 0); Chunks the chunks replayed after it, from FirstChunk on.
	Snapshot         *uint64  `json:"snapshot,omitempty"`
	FirstChunk       uint64   `json:"first_chunk"`
	Chunks           int      `json:"chunks"`
	SkippedSnapshots []string `json:"skipped_snapshots,omitempty"`
	// Cold segments are in tier 2; Lost ids are not (their loss is
	// accepted by the restore); Reserved is the stream's reservation.
	Cold     int               `json:"cold_segments"`
	Lost     []types.SegmentID `json:"lost_segments,omitempty"`
	Reserved types.SegmentID   `json:"reserved_through,omitempty"`
	// MissingFromTier2 are lost segments the history says were uploaded:
	// their objects are gone from tier 2 (deleted behind the store's
	// back), not merely never uploaded.
	MissingFromTier2 []types.SegmentID `json:"missing_from_tier2,omitempty"`
	// Records is the number of records the restored segments hold.
	Records  uint64        `json:"records"`
	Duration time.Duration `json:"duration_ns"`
	Error    string        `json:"error,omitempty"`
}

// Report is what a restore did.
type Report struct {
	StoreID  string         `json:"store_id,omitempty"`
	Streams  []StreamReport `json:"streams"`
	Duration time.Duration  `json:"duration_ns"`
}

type run struct {
	cfg Config
	log hclog.Logger
	// fence is what this node's fence records hold: the epoch of its
	// claim of the prefix.
	fence manifest.Fence
}

// Run restores the streams in only (nil: every stream tier 2 holds) into
// cfg.DataDir. Streams already in the data directory are skipped, or,
// when asked for by id, refused with ErrStreamExists. A stream that
// fails is reported and the others go on; the error then joins every
// failure and the staging directory stays (serve refuses to start).
func Run(ctx context.Context, cfg Config, only []types.StreamID) (Report, error) {
	r, rep, err := start(ctx, &cfg)
	if err != nil {
		return rep, err
	}
	// Only the prefix's writer restores: once this node took the prefix
	// over, the previous writer makes no tier-2 write it has not started
	// already, so the listing below cannot miss its later reservations.
	claim, err := coordinator.HoldsPrefix(ctx, cfg.FS, cfg.DataDir, cfg.Remote)
	if err != nil {
		return rep, fmt.Errorf("restore: %w", err)
	}
	r.fence = manifest.Fence{Epoch: claim.Epoch, NodeID: claim.NodeID}
	streams := only
	if streams == nil {
		if streams, err = cfg.Remote.ListStreams(ctx); err != nil {
			return rep, fmt.Errorf("restore: list the prefix's streams: %w", err)
		}
	}
	return r.each(ctx, rep, streams, func(ctx context.Context, s types.StreamID) (StreamReport, error) {
		return r.stream(ctx, s, only != nil)
	})
}

// start applies cfg's defaults and checks the prefix's store descriptor
// against the data directory's (recording it there when the directory
// has none).
func start(ctx context.Context, cfg *Config) (*run, Report, error) {
	if cfg.FS == nil {
		cfg.FS = vfs.OS
	}
	if cfg.Logger == nil {
		cfg.Logger = hclog.NewNullLogger()
	}
	if cfg.Concurrency <= 0 {
		cfg.Concurrency = 16
	}
	if cfg.ReserveSegments <= 0 {
		cfg.ReserveSegments = 16
	}
	if cfg.SegmentSize == 0 {
		cfg.SegmentSize = segment.DefaultCapacity
	}
	if cfg.Remote == nil || cfg.DataDir == "" {
		return nil, Report{}, fmt.Errorf("restore: a data directory and a tier-2 store are required: %w", core.ErrInvalidConfig)
	}
	var rep Report
	id, _, err := coordinator.CheckStore(ctx, cfg.FS, cfg.DataDir, cfg.Remote, false)
	if err != nil {
		return nil, rep, fmt.Errorf("restore: %w", err)
	}
	rep.StoreID = id
	return &run{cfg: *cfg, log: cfg.Logger}, rep, nil
}

// each restores streams with one, a few at a time, into the staging
// directory, and removes the staging directory once every stream is done.
func (r *run) each(ctx context.Context, rep Report, streams []types.StreamID, one func(context.Context, types.StreamID) (StreamReport, error)) (Report, error) {
	began := time.Now()
	cfg := r.cfg
	staging := filepath.Join(cfg.DataDir, StagingDir)
	for _, dir := range []string{staging, filepath.Join(cfg.DataDir, "streams")} {
		if err := vfs.MkdirAllSync(cfg.FS, dir); err != nil {
			return rep, fmt.Errorf("restore: %w", err)
		}
	}
	var mu sync.Mutex
	var errs []error
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(max(1, cfg.Concurrency/4))
	for _, s := range streams {
		g.Go(func() error {
			sr, err := one(gctx, s)
			sr.Stream = s
			if err != nil {
				sr.Error = err.Error()
				r.log.Error("stream not restored", "stream_id", uint64(s), "error", err)
			}
			mu.Lock()
			defer mu.Unlock()
			rep.Streams = append(rep.Streams, sr)
			if err != nil {
				errs = append(errs, err)
			}
			return nil
		})
	}
	_ = g.Wait()
	slices.SortFunc(rep.Streams, func(a, b StreamReport) int { return cmp.Compare(a.Stream, b.Stream) })
	rep.Duration = time.Since(began)
	if err := errors.Join(errs...); err != nil {
		return rep, err
	}
	if err := ctx.Err(); err != nil {
		return rep, err
	}
	if err := vfs.RemoveAll(cfg.FS, staging); err != nil {
		return rep, fmt.Errorf("restore: remove %s: %w", staging, err)
	}
	return rep, cfg.FS.SyncDir(cfg.DataDir)
}

// Pending reports whether a restore of dataDir has not finished (fsys nil:
// the OS file system).
func Pending(fsys vfs.FS, dataDir string) (bool, error) {
	if fsys == nil {
		fsys = vfs.OS
	}
	_, err := fsys.Stat(filepath.Join(dataDir, StagingDir))
	switch {
	case err == nil:
		return true, nil
	case vfs.IsNotExist(err):
		return false, nil
	}
	return false, err
}

// stream restores one stream into its staging directory and renames it
// into place.
func (r *run) stream(ctx context.Context, s types.StreamID, asked bool) (StreamReport, error) {
	began := time.Now()
	var sr StreamReport
	stage, final, exists, err := r.stage(s)
	switch {
	case err != nil:
		return sr, err
	case exists && asked:
		return sr, fmt.Errorf("%w: stream %d (%s)", ErrStreamExists, s, final)
	case exists:
		sr.Skipped = true
		return sr, nil
	}
	log, listing, h, err := r.fencedHistory(ctx, stage, s)
	sr.FirstChunk, sr.Chunks, sr.SkippedSnapshots = h.FirstChunk, h.Chunks, h.SkippedSnapshots
	if h.HasSnapshot {
		sr.Snapshot = &h.Snapshot
	}
	if err != nil {
		return sr, err
	}
	defer log.Close()
	// Snapshot ids tier 2 holds (a newer one passed over) are never taken
	// again: the restored log snapshots itself past them below.
	if n := len(listing.Snapshots); n > 0 {
		log.SkipSnapshotIDs(listing.Snapshots[n-1].Ref.ID)
	}
	entries, err := r.planSegments(ctx, s, log.Index(), listing, !h.HasSnapshot && h.Chunks == 0)
	if err != nil {
		return sr, err
	}
	if err := r.recordLost(ctx, s, entries); err != nil {
		return sr, err
	}
	sr.Lost, sr.Reserved = lostIDs(entries), listing.Reserved()
	for _, e := range entries {
		if e.obj == nil && e.inHist && e.st.Tier2.Key != "" {
			sr.MissingFromTier2 = append(sr.MissingFromTier2, e.id)
		}
	}
	if len(sr.MissingFromTier2) > 0 {
		r.log.Error("segments the history records as uploaded are missing from tier 2; restored as lost",
			"stream_id", uint64(s), "segments", sr.MissingFromTier2)
	}
	cold, records, err := r.install(ctx, s, stage, final, log, entries)
	sr.Cold, sr.Records = cold, records
	if err != nil {
		return sr, err
	}
	sr.Duration = time.Since(began)
	r.log.Info("stream restored", append([]any{"stream_id", uint64(s), "cold_segments", sr.Cold, "lost_segments", len(sr.Lost),
		"chunks", sr.Chunks, "records", sr.Records}, logfields.Duration("duration", sr.Duration)...)...)
	return sr, nil
}

// stage prepares an empty staging directory for stream s, unless the
// stream is in place already (exists).
func (r *run) stage(s types.StreamID) (stage, final string, exists bool, err error) {
	name := strconv.FormatUint(uint64(s), 10)
	final = filepath.Join(r.cfg.DataDir, "streams", name)
	if _, err := r.cfg.FS.Stat(final); err == nil {
		return "", final, true, nil
	} else if !vfs.IsNotExist(err) {
		return "", final, false, err
	}
	stage = filepath.Join(r.cfg.DataDir, StagingDir, name)
	if err := vfs.RemoveAll(r.cfg.FS, stage); err != nil {
		return "", final, false, fmt.Errorf("stream %d: clear %s: %w", s, stage, err)
	}
	return stage, final, false, vfs.MkdirAllSync(r.cfg.FS, filepath.Join(stage, "segments"))
}

// openHistory installs the stream's history and opens it as a manifest
// log. A snapshot that verifies alone but whose replay does not (its
// position disagrees with the chunk tier 2 holds there: a snapshot of a
// history that did not go on, left by a writer taken over) is passed
// over for the next older one.
func (r *run) openHistory(ctx context.Context, stage string, s types.StreamID, listing tier2.Listing) (*manifest.Log, history, error) {
	skip := map[uint64]bool{}
	var passed []string
	for {
		h, err := r.installHistory(ctx, stage, s, listing, skip)
		h.SkippedSnapshots = append(passed, h.SkippedSnapshots...)
		if err != nil {
			return nil, h, err
		}
		opts := r.cfg.Manifest
		opts.Logger = r.log.Named("manifest")
		opts.SnapshotEveryBytes = -1 // no background snapshot: restore takes its one snapshot itself
		log, err := manifest.Open(ctx, r.cfg.FS, stage, s, opts)
		if err != nil {
			if isCorrupt(err) {
				err = fmt.Errorf("%w: stream %d: %w", ErrCorruptHistory, s, err)
			}
			return nil, h, err
		}
		rs := log.Replay()
		if rs.CorruptionEvents == 0 {
			return log, h, nil
		}
		_ = log.Close()
		if !h.HasSnapshot {
			return nil, h, fmt.Errorf("%w: stream %d: replay found %d corruptions: %v", ErrCorruptHistory, s, rs.CorruptionEvents, rs.Corruptions)
		}
		skip[h.Snapshot] = true
		passed = append(passed, fmt.Sprintf("snapshot %d: its replay does not verify: %v", h.Snapshot, rs.Corruptions))
		r.log.Warn("tier-2 snapshot passed over: its replay does not verify", "stream_id", uint64(s), "snapshot_id", h.Snapshot, "corruptions", rs.Corruptions)
		for _, dir := range manifest.Dirs(stage, opts) {
			if err := vfs.RemoveAll(r.cfg.FS, dir); err != nil {
				return nil, h, err
			}
		}
	}
}

// install writes the stubs of the entries into stage, brings the
// stream's manifest log up to them, and moves the stream into place at
// final. It returns how many cold segments and records it installed.
func (r *run) install(ctx context.Context, s types.StreamID, stage, final string, log *manifest.Log, entries []*entry) (cold int, recs uint64, err error) {
	segDir := filepath.Join(stage, "segments")
	// Stubs are written (and synced) concurrently: one fsync each, which
	// the file system's journal batches; written one after another they
	// were most of a 10,000-segment restore's time.
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(r.cfg.Concurrency)
	for _, e := range entries {
		g.Go(func() error {
			if err := gctx.Err(); err != nil {
				return err
			}
			if err := core.WriteStub(r.cfg.FS, segDir, e.h, e.f, e.obj == nil); err != nil {
				return fmt.Errorf("stream %d: stub of segment %d: %w", s, e.id, err)
			}
			return nil
		})
		if e.obj != nil {
			cold++
			recs += e.f.RecordCount
		}
	}
	if err := g.Wait(); err != nil {
		return cold, recs, err
	}
	for _, rec := range records(entries) {
		if err := log.Append(rec); err != nil {
			return cold, recs, fmt.Errorf("stream %d: manifest: %w", s, err)
		}
	}
	if err := log.Commit(ctx); err != nil {
		return cold, recs, fmt.Errorf("stream %d: manifest: %w", s, err)
	}
	if _, err := log.Snapshot(ctx); err != nil {
		return cold, recs, fmt.Errorf("stream %d: manifest snapshot: %w", s, err)
	}
	if err := log.Close(); err != nil {
		return cold, recs, fmt.Errorf("stream %d: manifest: %w", s, err)
	}
	for _, dir := range []string{segDir, stage} {
		if err := r.cfg.FS.SyncDir(dir); err != nil {
			return cold, recs, err
		}
	}
	if err := r.cfg.FS.Rename(stage, final); err != nil {
		return cold, recs, fmt.Errorf("stream %d: move into place: %w", s, err)
	}
	return cold, recs, r.cfg.FS.SyncDir(filepath.Dir(final))
}
