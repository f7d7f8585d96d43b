package manifest

import (
	"context"
	"fmt"
	"maps"
	"path/filepath"
	"slices"

	"github.com/aof2/aof2/core/types"
	"github.com/aof2/aof2/core/vfs"
)

// SealedChunk describes a sealed, read-only chunk file: what an uploader
// needs to copy it to tier 2.
type SealedChunk struct {
	StreamID     types.StreamID `json:"stream_id"`
	Index        uint64         `json:"index"`
	Path         string         `json:"path"`
	Size         int64          `json:"size"`
	BaseRecord   uint64         `json:"base_record"`
	CommittedLen uint64         `json:"committed_len"`
	CRC64        Hex64          `json:"crc"`
	Uploaded     bool           `json:"uploaded"`
}

// Tier2Key is the object key of the chunk in tier 2, relative to the
// configured prefix (docs/formats.md#tier-2-keys-and-object-metadata): streams/<stream_id>/manifest/<index:020>.mlog.
func (c SealedChunk) Tier2Key() string {
	return fmt.Sprintf("streams/%d/manifest/%s", c.StreamID, chunkName(c.Index))
}

// SealedChunks lists the sealed chunks held locally, oldest first. At
// startup an uploader takes the backlog from here; afterwards
// Options.OnChunkSealed announces each new one.
func (l *Log) SealedChunks() []SealedChunk {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []SealedChunk
	for _, idx := range slices.Sorted(maps.Keys(l.mu.chunks)) {
		m := l.mu.chunks[idx]
		if m.hdr.Flags.Sealed() && !m.corrupt {
			out = append(out, l.sealedChunk(m, false))
		}
	}
	return out
}

// LocalSnapshot is a valid snapshot file the log holds: what an uploader
// needs to copy it to tier 2. The snapshot describes the index at the log
// position (ChunkIndex, ChunkOffset): chunks before ChunkIndex are not
// needed to rebuild it.
type LocalSnapshot struct {
	StreamID    types.StreamID `json:"stream_id"`
	ID          uint64         `json:"snapshot_id"`
	ChunkIndex  uint64         `json:"chunk_index"`
	ChunkOffset uint64         `json:"chunk_offset"`
	Path        string         `json:"path"`
}

// LocalSnapshots lists the valid snapshot files on disk, oldest first
// (local retention keeps the newest two).
func (l *Log) LocalSnapshots() []LocalSnapshot {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make([]LocalSnapshot, 0, len(l.mu.snapshots))
	for _, m := range l.mu.snapshots {
		if m.Err == nil && slices.Contains(l.mu.snapFiles, m.ID) {
			out = append(out, LocalSnapshot{StreamID: l.streamID, ID: m.ID, ChunkIndex: m.ChunkIndex, ChunkOffset: m.ChunkOffset,
				Path: filepath.Join(l.mdir, snapshotName(m.ID))})
		}
	}
	return out
}

// MarkUploaded records that sealed chunk index is safe in tier 2: it sets
// the uploaded flag in the chunk header (fsynced) and applies retention.
// Call it only after the object has been verified against the chunk's
// bytes. A failed write or fsync of the flag is fail-stop.
func (l *Log) MarkUploaded(ctx context.Context, index uint64) error {
	if err := acquire(ctx, l.retainTok); err != nil {
		return err
	}
	defer release(l.retainTok)
	l.mu.Lock()
	if err := l.usableLocked(); err != nil {
		l.mu.Unlock()
		return err
	}
	m, ok := l.mu.chunks[index]
	var hdr ChunkHeader
	if ok {
		hdr = m.hdr
	}
	l.mu.Unlock()
	switch {
	case !ok:
		return fmt.Errorf("%w: chunk %d of stream %d", ErrNotFound, index, l.streamID)
	case !hdr.Flags.Sealed() || m.corrupt:
		return fmt.Errorf("%w: chunk %d of stream %d is not a sealed, intact chunk", ErrInvalidRecord, index, l.streamID)
	case hdr.Flags.Uploaded():
		return nil
	}
	path := filepath.Join(l.mdir, chunkName(index))
	onDisk, _, err := readChunkHeader(l.fs, path)
	if err != nil {
		return fmt.Errorf("manifest: mark %s uploaded: %w", chunkName(index), err)
	}
	if onDisk != hdr {
		return corruptf("chunk %s header changed on disk: %+v, expected %+v", chunkName(index), onDisk, hdr)
	}
	hdr.Flags |= FlagUploaded
	if err := writeHeader(l.fs, path, hdr); err != nil {
		return l.fail(failStop("mark "+chunkName(index)+" uploaded", err))
	}
	l.mu.Lock()
	if m, ok := l.mu.chunks[index]; ok {
		m.hdr = hdr
	}
	l.mu.Unlock()
	return l.retainHeld()
}

// writeHeader rewrites a chunk header in place and fsyncs it.
func writeHeader(fsys vfs.FS, path string, hdr ChunkHeader) error {
	f, err := fsys.OpenReadWrite(path)
	if err != nil {
		return err
	}
	if _, err = f.WriteAt(hdr.marshal(), 0); err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// retain applies local retention, taking the retention token.
func (l *Log) retain() error {
	_ = acquire(context.Background(), l.retainTok)
	defer release(l.retainTok)
	return l.retainHeld()
}

// retentionPlan decides what local retention removes. The rules:
//
//   - two snapshots are kept, the newest valid ones; older snapshot files
//     are removed. Replay needs one; the second is the fallback should the
//     newest be damaged, so chunks are kept from the older one's position;
//   - a chunk is removed only if it is sealed, uploaded, intact, older than
//     the chunk holding the second-newest snapshot's position, not one of
//     the two newest sealed chunks and not the active chunk;
//   - nothing is removed while fewer than two valid snapshots exist.
//
// So the active chunk, the last two sealed ones and everything newer than
// the latest snapshot always stay, and a chunk not yet in
// tier 2 is never removed.
func retentionPlan(chunks map[uint64]*chunkMeta, snaps []snapMeta, snapFiles []uint64, active uint64) (delChunks, delSnaps []uint64) {
	if len(snaps) < 2 {
		return nil, nil
	}
	keepFrom := snaps[len(snaps)-2]
	var sealed []uint64
	for _, idx := range slices.Sorted(maps.Keys(chunks)) {
		if chunks[idx].hdr.Flags.Sealed() {
			sealed = append(sealed, idx)
		}
	}
	lastTwo := sealed[max(0, len(sealed)-2):]
	for _, idx := range sealed {
		m := chunks[idx]
		if m.hdr.Flags.Uploaded() && !m.corrupt && idx < keepFrom.ChunkIndex && idx != active && !slices.Contains(lastTwo, idx) {
			delChunks = append(delChunks, idx)
		}
	}
	for _, id := range snapFiles {
		if id < keepFrom.ID {
			delSnaps = append(delSnaps, id)
		}
	}
	return delChunks, delSnaps
}

// retainHeld removes what retentionPlan allows. Removal errors are
// returned, not fail-stop: a file that survives (or reappears after a
// crash) is removed by the next pass.
func (l *Log) retainHeld() error {
	l.mu.Lock()
	if l.mu.failed != nil || l.mu.closed {
		l.mu.Unlock()
		return nil
	}
	delChunks, delSnaps := retentionPlan(l.mu.chunks, l.mu.snapshots, l.mu.snapFiles, l.mu.pending[0].index)
	l.mu.Unlock()
	if len(delChunks)+len(delSnaps) == 0 {
		return nil
	}
	var firstErr error
	removed := 0
	remove := func(name string) bool {
		err := l.fs.Remove(filepath.Join(l.mdir, name))
		if err != nil && !vfs.IsNotExist(err) {
			if firstErr == nil {
				firstErr = fmt.Errorf("manifest: remove %s: %w", name, err)
			}
			return false
		}
		removed++
		return true
	}
	var goneChunks, goneSnaps []uint64
	for _, idx := range delChunks {
		if remove(chunkName(idx)) {
			goneChunks = append(goneChunks, idx)
		}
	}
	for _, id := range delSnaps {
		if remove(snapshotName(id)) {
			goneSnaps = append(goneSnaps, id)
		}
	}
	if removed > 0 {
		if err := l.fs.SyncDir(l.mdir); err != nil && firstErr == nil {
			firstErr = fmt.Errorf("manifest: sync dir %s: %w", l.mdir, err)
		}
	}
	l.mu.Lock()
	for _, idx := range goneChunks {
		delete(l.mu.chunks, idx)
	}
	l.mu.snapFiles = slices.DeleteFunc(l.mu.snapFiles, func(id uint64) bool { return slices.Contains(goneSnaps, id) })
	l.mu.snapshots = slices.DeleteFunc(l.mu.snapshots, func(m snapMeta) bool { return slices.Contains(goneSnaps, m.ID) })
	l.mu.Unlock()
	if len(goneChunks) > 0 {
		l.log.Debug("manifest retention removed chunks", "stream_id", l.streamID, "chunks", goneChunks, "snapshots", goneSnaps)
	}
	return firstErr
}
