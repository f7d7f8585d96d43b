package manifest

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/aof2/aof2/core/internal/tracing"
	"github.com/aof2/aof2/core/types"
	"github.com/aof2/aof2/core/vfs"
)

// Directory names inside a stream directory.
const (
	manifestDirName = "manifest"
	warmDirName     = "warm"
	jsonViewName    = "manifest.json"
)

// Dirs returns the directories Open needs in stream directory dir with
// options o. Creating a stream, the caller makes them together with its
// own, one sync per parent (vfs.MkdirAllSync); Open then finds them.
func Dirs(dir string, o Options) []string {
	dirs := []string{filepath.Join(dir, manifestDirName)}
	if !o.LogOnly {
		dirs = append(dirs, filepath.Join(dir, warmDirName))
	}
	return dirs
}

// Open opens the manifest log of stream streamID whose stream directory
// is dir (<data_dir>/streams/<stream_id>): chunks and snapshots live in
// dir/manifest, the tier-1 JSON view in dir/warm/manifest.json.
//
// Open replays the newest valid snapshot and the chunks after its marker,
// verifying every CRC, then trims what crashed commits left past
// committed_len, seals the chunk the previous process was writing, removes
// never-committed chunks, publishes the replay metrics, checks JSON parity
// (unless opts.LogOnly) and, when replay found damage and
// opts.GroundTruth is set, repairs residency from ground truth. New records
// go to a new chunk.
func Open(ctx context.Context, fsys vfs.FS, dir string, streamID types.StreamID, opts Options) (l *Log, err error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	opts = opts.withDefaults()
	ctx, span := tracing.Start(ctx, tracing.Tracer(opts.TracerProvider, tracing.ScopeManifest), tracing.SpanManifestReplay,
		tracing.StreamID(uint64(streamID)))
	var res *replayResult
	defer func() { endReplaySpan(span, l, res, err) }()
	met, err := newStreamMetrics(opts.Registerer, opts.Logger, streamID)
	if err != nil {
		return nil, fmt.Errorf("manifest: register metrics: %w", err)
	}
	l = &Log{
		fs: fsys, dir: dir, mdir: filepath.Join(dir, manifestDirName), streamID: streamID,
		opts: opts, log: opts.Logger, met: met,
		commitTok: newToken(), snapTok: newToken(), retainTok: newToken(),
		kick: make(chan struct{}, 1),
	}
	l.w = chunkWriter{fs: fsys, mdir: l.mdir, capacity: opts.ChunkCapacity}
	if err := vfs.MkdirAllSync(fsys, l.mdir); err != nil {
		return nil, fmt.Errorf("manifest: create %s: %w", l.mdir, err)
	}
	res, err = replay(ctx, fsys, l.mdir, streamID, opts.Clock)
	if err != nil {
		return nil, err
	}
	t0 := opts.Clock.Now()
	if err := l.trim(res); err != nil {
		return nil, fmt.Errorf("manifest: trim stream %d: %w", streamID, err)
	}
	if last := res.last(); last != nil {
		res.stats.LastChunkLag += opts.Clock.Now().Sub(t0)
	}
	l.install(res)
	l.replay = res.stats
	met.observeReplay(&l.replay)

	if !opts.LogOnly {
		if err := l.view.open(ctx, l); err != nil {
			return nil, err
		}
	}
	if l.mu.needsRepair && opts.GroundTruth != nil {
		if _, err := l.Repair(ctx, opts.GroundTruth); err != nil {
			l.view.close(l, false)
			_ = l.w.close()
			return nil, fmt.Errorf("manifest: repair stream %d: %w", streamID, err)
		}
		l.replay.Repaired = true
	}
	if err := l.retain(); err != nil {
		l.log.Warn("manifest retention at open failed", "stream_id", streamID, "error", err)
	}
	l.start()
	return l, nil
}

// endReplaySpan ends Open's span with the replay statistics: those of the
// opened log, or what replay found before Open failed.
func endReplaySpan(span trace.Span, l *Log, res *replayResult, err error) {
	var st *ReplayStats
	switch {
	case l != nil && err == nil:
		st = &l.replay
	case res != nil:
		st = &res.stats
	}
	if st != nil && span.IsRecording() {
		span.SetAttributes(
			tracing.KeyChunkCount.Int(st.ChunksInspected),
			tracing.KeyJournalLagBytes.Int64(st.JournalLagBytes),
			tracing.KeyCorruptionEvents.Int(st.CorruptionEvents),
			tracing.KeyRecordsApplied.Int64(int64(st.RecordsApplied)),
			tracing.KeySnapshotID.Int64(int64(st.SnapshotID)),
			tracing.ChunkIndex(st.LastChunk),
			tracing.KeyNeedsRepair.Bool(st.NeedsRepair),
			tracing.KeyRepaired.Bool(st.Repaired),
		)
	}
	tracing.End(span, err)
}

// trim makes the on-disk state match what replay accepted: the newest
// chunk is cut to its committed length and sealed, never-committed chunks
// and leftovers of interrupted atomic writes are removed. A damaged chunk
// is left exactly as found.
func (l *Log) trim(res *replayResult) error {
	if last := res.last(); last != nil && last.hdrOK && last.err == nil &&
		(!last.hdr.Flags.Sealed() || last.size > int64(last.hdr.CommittedLen)) {
		hdr, err := sealInPlace(l.fs, filepath.Join(l.mdir, last.name), last.hdr)
		if err != nil {
			return fmt.Errorf("seal %s: %w", last.name, err)
		}
		last.hdr, last.size = hdr, int64(hdr.CommittedLen)
		if last.tailLag > 0 {
			l.log.Info("manifest trimmed uncommitted bytes", "stream_id", l.streamID, "chunk_index", last.index, "bytes", last.tailLag)
		}
	}
	var removed []string
	for _, o := range res.orphans {
		removed = append(removed, o.name)
	}
	removed = append(removed, res.listing.junk...)
	for _, name := range removed {
		if err := l.fs.Remove(filepath.Join(l.mdir, name)); err != nil && !vfs.IsNotExist(err) {
			return fmt.Errorf("remove %s: %w", name, err)
		}
	}
	if len(removed) > 0 {
		if err := l.fs.SyncDir(l.mdir); err != nil {
			return fmt.Errorf("sync dir %s: %w", l.mdir, err)
		}
	}
	return nil
}

// install sets the Log's state from a replay.
func (l *Log) install(res *replayResult) {
	l.mu.index = res.index
	l.mu.needsRepair = res.stats.NeedsRepair
	l.mu.chunks = map[uint64]*chunkMeta{}
	for _, cr := range slices.Concat(res.older, res.replayed) {
		l.mu.chunks[cr.index] = &chunkMeta{hdr: cr.hdr, size: cr.size, named: true, corrupt: !cr.hdrOK || cr.err != nil}
	}
	l.mu.snapFiles = slices.Clone(res.listing.snapshots)
	for _, m := range res.snapshots {
		if m.Err == nil {
			l.mu.snapshots = append(l.mu.snapshots, m)
		}
	}
	slices.SortFunc(l.mu.snapshots, func(a, b snapMeta) int { return cmp.Compare(a.ID, b.ID) })
	if n := len(res.listing.snapshots); n > 0 {
		l.mu.nextSnapID = res.listing.snapshots[n-1] + 1
	}
	l.mu.nextSnapID = max(l.mu.nextSnapID, res.index.LastSnapshotID+1, 1)
	l.mu.appended = res.index.Records
	l.mu.durable = res.index.Records
	l.mu.pending = []*pendingChunk{{index: res.nextChunk, baseRecord: res.index.Records, start: chunkHeaderLen}}
}

// start readies the background goroutine, which runs only while it has
// work (wakeBackgroundLocked); Close stops it.
func (l *Log) start() {
	l.bgCtx, l.bgCancel = context.WithCancel(context.Background())
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.kick) > 0 { // a snapshot asked for while Open repaired the log
		l.wakeBackgroundLocked()
	}
}

// wakeBackgroundLocked starts the background goroutine unless it runs or
// the Log is closing. It is needed while records wait uncommitted (the
// rotation timer) and when an automatic snapshot is asked for; an idle Log
// runs none, so a stream that is not written costs no goroutine and no
// timer. l.mu must be held.
func (l *Log) wakeBackgroundLocked() {
	if l.mu.bgRunning || l.mu.closing || l.bgCtx == nil {
		return
	}
	l.mu.bgRunning = true
	l.bgWG.Add(1)
	go l.background(l.bgCtx)
}

// background runs the rotation timer and automatic snapshots, and exits
// once neither has anything left to do (backgroundIdle).
func (l *Log) background(ctx context.Context) {
	defer l.bgWG.Done()
	var ticks <-chan time.Time
	if l.opts.RotationPeriod > 0 {
		tick := l.opts.Clock.NewTicker(l.opts.RotationPeriod)
		defer tick.Stop()
		ticks = tick.C()
	}
	for {
		select {
		case <-ctx.Done():
			return
		case <-ticks:
			l.rotateIfPending(ctx)
			if l.opts.afterTick != nil {
				l.opts.afterTick()
			}
		case <-l.kick:
			if _, err := l.Snapshot(ctx); err != nil && ctx.Err() == nil && !errors.Is(err, ErrClosed) {
				l.log.Warn("manifest automatic snapshot failed", "stream_id", l.streamID, "error", err)
			}
		}
		if l.backgroundIdle() {
			return
		}
	}
}

// rotationDueLocked reports whether the rotation timer should commit and
// seal now: records wait uncommitted, or committed records have sat in the
// open chunk for a period.
func (l *Log) rotationDueLocked() bool {
	return l.mu.appended > l.mu.durable ||
		!l.mu.openSince.IsZero() && l.opts.Clock.Now().Sub(l.mu.openSince) >= l.opts.RotationPeriod
}

// backgroundIdle reports whether the background goroutine may exit: no
// record waits for the rotation timer and no snapshot is asked for. It
// then marks it stopped, under the lock that wakeBackgroundLocked takes, so
// that work arriving later starts a new one.
func (l *Log) backgroundIdle() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	waiting := (l.mu.appended > l.mu.durable || !l.mu.openSince.IsZero()) && l.opts.RotationPeriod > 0
	if l.usableLocked() == nil && (waiting || len(l.kick) > 0) {
		return false
	}
	l.mu.bgRunning = false
	return true
}

// rotateIfPending commits and seals when records wait uncommitted, or
// committed in a chunk that has been open for a rotation period.
func (l *Log) rotateIfPending(ctx context.Context) {
	l.mu.Lock()
	pending := l.rotationDueLocked() && l.usableLocked() == nil
	l.mu.Unlock()
	if !pending {
		return
	}
	if err := acquire(ctx, l.commitTok); err != nil {
		return
	}
	defer l.releaseCommit()
	// A commit that held the token while this waited for it may have
	// committed and sealed everything: sealing then would cut a chunk
	// nobody asked for.
	l.mu.Lock()
	pending = l.rotationDueLocked()
	l.mu.Unlock()
	if !pending {
		return
	}
	if err := l.commitHeld(true); err != nil {
		l.log.Error("manifest rotation failed", "stream_id", l.streamID, "error", err)
	}
}
