package manifest

import (
	"context"
	"fmt"
	"path/filepath"

	"github.com/aof2/aof2/core/vfs"
)

// SnapshotInfo describes a snapshot a Log wrote.
type SnapshotInfo struct {
	ID          uint64 `json:"snapshot_id"`
	ChunkIndex  uint64 `json:"chunk_index"`
	ChunkOffset uint64 `json:"chunk_offset"`
	Records     uint64 `json:"records"`
	Segments    int    `json:"segments"`
	Bytes       int    `json:"bytes"`
}

// Snapshot commits pending records, writes the whole Index to a new
// snapshot file (temp file, fsync, rename, directory fsync) and then
// commits a SnapshotMarker naming the log position the snapshot covers.
// Replay starts from the newest valid snapshot, so snapshots bound restart
// cost, and they let retention drop old chunks.
//
// A failure to write the snapshot file is returned but does not stop the
// Log: the file is verified by its CRC before any use and its marker is
// never written. A failure to commit the marker is fail-stop, as for any
// commit.
func (l *Log) Snapshot(ctx context.Context) (SnapshotInfo, error) {
	if err := acquire(ctx, l.snapTok); err != nil {
		return SnapshotInfo{}, err
	}
	defer release(l.snapTok)
	return l.snapshotHeld(ctx, nil)
}

// snapshotHeld takes a snapshot; the caller holds the snapshot token. With
// rebuild, the index is replaced by rebuild's result first, with the commit
// token held so that no commit lands in between.
func (l *Log) snapshotHeld(ctx context.Context, rebuild func(*Index) (*Index, error)) (SnapshotInfo, error) {
	if err := acquire(ctx, l.commitTok); err != nil {
		return SnapshotInfo{}, err
	}
	if err := l.commitHeld(false); err != nil {
		l.releaseCommit()
		return SnapshotInfo{}, err
	}
	if rebuild != nil {
		l.mu.Lock()
		cur := l.mu.index.Clone()
		l.mu.Unlock()
		next, err := rebuild(cur)
		if err != nil {
			l.releaseCommit()
			return SnapshotInfo{}, err
		}
		l.mu.Lock()
		l.mu.index = next
		l.mu.Unlock()
	}
	l.mu.Lock()
	if err := l.usableLocked(); err != nil {
		l.mu.Unlock()
		l.releaseCommit()
		return SnapshotInfo{}, err
	}
	// The first pending chunk starts at the committed end: the position
	// whose state the index now holds.
	pos := l.mu.pending[0]
	snap := Snapshot{ID: l.mu.nextSnapID, ChunkIndex: pos.index, ChunkOffset: uint64(pos.start), Index: l.mu.index.Clone()}
	l.mu.nextSnapID++
	l.mu.Unlock()
	// A view behind the snapshot could not be checked against the log
	// once replay starts from it.
	l.view.flush(l, true)
	l.releaseCommit()

	b := encodeSnapshot(snap)
	name := snapshotName(snap.ID)
	if err := vfs.WriteFileAtomic(l.fs, filepath.Join(l.mdir, name), b); err != nil {
		return SnapshotInfo{}, fmt.Errorf("manifest: write %s: %w", name, err)
	}
	marker := SnapshotMarker{ChunkIndex: snap.ChunkIndex, ChunkOffset: snap.ChunkOffset, SnapshotID: snap.ID}
	if err := l.appendRecords([]Record{marker}, true); err != nil {
		// Never used without its marker; removed so that no reader mistakes
		// it for the trace of a crash.
		_ = l.fs.Remove(filepath.Join(l.mdir, name))
		return SnapshotInfo{}, err
	}
	if err := l.Commit(ctx); err != nil {
		return SnapshotInfo{}, err
	}
	l.mu.Lock()
	l.mu.snapshots = append(l.mu.snapshots, snapMeta{ID: snap.ID, ChunkIndex: snap.ChunkIndex, ChunkOffset: snap.ChunkOffset})
	l.mu.snapFiles = append(l.mu.snapFiles, snap.ID)
	l.mu.sinceSnap, l.mu.sealedSince = 0, 0
	l.mu.Unlock()
	l.log.Debug("manifest snapshot written", "stream_id", l.streamID, "snapshot_id", snap.ID,
		"chunk_index", snap.ChunkIndex, "chunk_offset", snap.ChunkOffset, "bytes", len(b))
	if err := l.retain(); err != nil {
		l.log.Warn("manifest retention after snapshot failed", "stream_id", l.streamID, "error", err)
	}
	return SnapshotInfo{ID: snap.ID, ChunkIndex: snap.ChunkIndex, ChunkOffset: snap.ChunkOffset,
		Records: snap.Index.Records, Segments: snap.Index.Len(), Bytes: len(b)}, nil
}

// Repair rebuilds residency from ground truth (see Rebuild), installs the
// result and makes it durable as a snapshot, so that the next replay starts
// after the damage. NeedsRepair is cleared once the snapshot's marker is
// committed. Open calls it when Options.GroundTruth is set; an engine
// without ground truth at Open can call it later.
func (l *Log) Repair(ctx context.Context, gt GroundTruth) (RebuildReport, error) {
	if gt == nil {
		return RebuildReport{}, fmt.Errorf("%w: Repair needs a GroundTruth", ErrInvalidConfig)
	}
	if err := acquire(ctx, l.snapTok); err != nil {
		return RebuildReport{}, err
	}
	defer release(l.snapTok)
	var report RebuildReport
	_, err := l.snapshotHeld(ctx, func(cur *Index) (*Index, error) {
		next, r, err := Rebuild(ctx, cur, gt)
		report = r
		return next, err
	})
	if err != nil {
		return report, fmt.Errorf("manifest: repair stream %d: %w", l.streamID, err)
	}
	l.mu.Lock()
	l.mu.needsRepair = false
	l.mu.Unlock()
	l.log.Warn("manifest repaired from ground truth", "stream_id", l.streamID,
		"added", len(report.Added), "updated", len(report.Updated), "lost", len(report.Lost))
	return report, nil
}

// SkipSnapshotIDs makes the next snapshot's id greater than through
// (restore: ids tier 2 already holds from a history that does not go on,
// which a snapshot of this log must not take). It lasts once a snapshot
// is taken with the higher id.
func (l *Log) SkipSnapshotIDs(through uint64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.mu.nextSnapID = max(l.mu.nextSnapID, through+1)
}
