package coordinator

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"sync"

	"github.com/aof2/aof2/core"
	"github.com/aof2/aof2/core/manifest"
	"github.com/aof2/aof2/core/tier2"
	"github.com/aof2/aof2/core/types"
	"github.com/aof2/aof2/core/vfs"
)

// The tier-2 manifest (docs/tiering.md#the-tier-2-manifest). Each stream's
// manifest reaches tier 2 as its sealed chunks (uploadChunks) and its
// snapshots: every snapshot the manifest log takes (every
// manifest.snapshot_every_bytes, or on demand) is uploaded once the chunk
// its position lies in is in tier 2 (positionPublished). Once two uploaded snapshots exist, tier 2 keeps only what
// a reader needs: the chunks from the older of the two on, and those two.
// The older one is the fallback should the newer be damaged, as local
// retention keeps it, so a stream's tier-2 manifest is O(the chunks since
// its last two snapshots), not O(its history).
//
// A snapshot covers the tier-2 log only once the chunk its position lies
// in is in tier 2 itself: a reader rebuilds from a snapshot and the
// chunks after it, and may not find state the log never got to
// (docs/adr-fencing.md: deletes follow what is committed to tier 2).

// remoteManifest is what the coordinator knows a stream's tier-2 manifest
// holds: listed at start, then each upload and delete. Guarded by
// remoteManifests.mu.
type remoteManifest struct {
	chunks map[uint64]bool // chunk indices in tier 2
	snaps  map[uint64]bool // snapshot ids in tier 2
	// taken are ids of local snapshots whose key holds another writer's
	// snapshot: never uploaded (snapshotIDTaken).
	taken map[uint64]bool
	// uploaded are the snapshots known in tier 2 with their positions
	// (uploaded by this process, or found there by an idempotent upload),
	// ascending id.
	uploaded []manifest.LocalSnapshot
}

type remoteManifests struct {
	mu      sync.Mutex
	streams map[types.StreamID]*remoteManifest // guarded by mu
}

// of returns the stream's record, creating it; mu is held.
func (r *remoteManifests) ofLocked(id types.StreamID) *remoteManifest {
	if r.streams == nil {
		r.streams = map[types.StreamID]*remoteManifest{}
	}
	m := r.streams[id]
	if m == nil {
		m = &remoteManifest{chunks: map[uint64]bool{}, snaps: map[uint64]bool{}, taken: map[uint64]bool{}}
		r.streams[id] = m
	}
	return m
}

// listed records a start-up listing of the stream's manifest objects.
func (r *remoteManifests) listed(id types.StreamID, chunks, snaps []uint64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	m := r.ofLocked(id)
	for _, c := range chunks {
		m.chunks[c] = true
	}
	for _, s := range snaps {
		m.snaps[s] = true
	}
}

// chunkStored records that chunk index is in tier 2.
func (r *remoteManifests) chunkStored(id types.StreamID, index uint64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.ofLocked(id).chunks[index] = true
}

// snapshotUploaded reports whether snapshot sid of the stream is known in
// tier 2.
func (r *remoteManifests) snapshotUploaded(id types.StreamID, sid uint64) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	m := r.ofLocked(id)
	return slices.ContainsFunc(m.uploaded, func(s manifest.LocalSnapshot) bool { return s.ID == sid })
}

// positionPublished says whether the state snap holds is all in tier 2's
// commit log: the chunk its position lies in (or, at a chunk's start,
// the one before) was created by this writer or found there at start. A
// writer fenced before that chunk was created never uploads the snapshot,
// which would otherwise describe a history tier 2 does not hold.
func (c *Coordinator) positionPublished(s *core.Stream, snap manifest.LocalSnapshot) bool {
	need := snap.ChunkIndex
	if snap.ChunkOffset <= manifest.ChunkHeaderLen {
		if need == 0 {
			return true
		}
		need--
	}
	c.t2m.mu.Lock()
	known := c.t2m.ofLocked(s.ID()).chunks[need]
	c.t2m.mu.Unlock()
	if known {
		return true
	}
	for _, ch := range s.TierLog().SealedChunks() {
		if ch.Index == need {
			return ch.Uploaded
		}
	}
	return false
}

// snapshotTaken reports whether snapshot sid's key holds another
// writer's snapshot.
func (r *remoteManifests) snapshotTaken(id types.StreamID, sid uint64) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.ofLocked(id).taken[sid]
}

// snapshotIDTaken handles a snapshot whose id's key holds other bytes.
// Fenced, this node stops. Still the writer after a takeover (epoch 2 on),
// the object is a snapshot the previous writer stored under an id this
// log took again (docs/adr-fencing.md): it stays (readers use a snapshot
// only where the history replays from it), this one stays local, and the
// log's next snapshots take ids past it. At epoch 1 no other writer ever
// was: the object is a loss, reported as one.
func (c *Coordinator) snapshotIDTaken(ctx context.Context, s *core.Stream, sid uint64, err error) error {
	if cerr := c.claimHeld(ctx); cerr != nil {
		return fmt.Errorf("upload manifest snapshot %d: its id in tier 2 is taken: %w", sid, cerr)
	}
	c.t2m.mu.Lock()
	c.t2m.ofLocked(s.ID()).taken[sid] = true // tried once: never queued again
	c.t2m.mu.Unlock()
	s.TierLog().SkipSnapshotIDs(sid)
	if c.epoch.Load() <= 1 {
		c.remote.ReportDataLoss(err)
		return fmt.Errorf("upload manifest snapshot %d: %w", sid, err)
	}
	c.log.Warn("manifest snapshot not uploaded: tier 2 holds another snapshot under its id (a previous writer's); later snapshots take higher ids",
		"stream_id", uint64(s.ID()), "snapshot_id", sid, "error", err)
	return nil
}

// scanSnapshots queues the upload of the stream's local snapshots tier 2
// does not hold yet.
func (c *Coordinator) scanSnapshots(s *core.Stream, tl *core.TierLog) {
	for _, snap := range tl.LocalSnapshots() {
		if !c.t2m.snapshotUploaded(s.ID(), snap.ID) && !c.t2m.snapshotTaken(s.ID(), snap.ID) {
			c.enqueue(job{kind: jobSnapshot, stream: s.ID(), chunk: snap.ID})
		}
	}
}

// uploadSnapshot uploads local snapshot sid (idempotent: a snapshot tier 2
// already holds with these bytes counts as uploaded), then trims the
// tier-2 manifest.
func (c *Coordinator) uploadSnapshot(ctx context.Context, s *core.Stream, sid uint64) error {
	tl := s.TierLog()
	i := slices.IndexFunc(tl.LocalSnapshots(), func(l manifest.LocalSnapshot) bool { return l.ID == sid })
	if i < 0 {
		return nil // removed by local retention meanwhile: a newer one exists
	}
	snap := tl.LocalSnapshots()[i]
	if !c.positionPublished(s, snap) {
		return nil // its state is not all in tier 2's log yet: a later scan uploads it
	}
	data, err := vfs.ReadFile(c.cfg.FS, snap.Path)
	if err != nil {
		return fmt.Errorf("read manifest snapshot %d: %w", sid, err)
	}
	pos := tier2.SnapshotPosition{ChunkIndex: snap.ChunkIndex, ChunkOffset: snap.ChunkOffset}
	if _, err := c.remote.UploadSnapshot(ctx, s.ID(), sid, pos, data); errors.Is(err, tier2.ErrDataLoss) {
		return c.snapshotIDTaken(ctx, s, sid, err)
	} else if err != nil {
		return fmt.Errorf("upload manifest snapshot %d: %w", sid, err)
	}
	c.t2m.mu.Lock()
	m := c.t2m.ofLocked(s.ID())
	m.snaps[sid] = true
	if !slices.ContainsFunc(m.uploaded, func(u manifest.LocalSnapshot) bool { return u.ID == sid }) {
		m.uploaded = append(m.uploaded, snap)
		slices.SortFunc(m.uploaded, func(a, b manifest.LocalSnapshot) int { return cmp.Compare(a.ID, b.ID) })
	}
	c.t2m.mu.Unlock()
	c.m.snapshotUploads.Inc()
	return c.trimRemoteManifest(ctx, s)
}

// trimRemoteManifest deletes the tier-2 chunks and snapshots no reader
// needs: those older than the second-newest uploaded snapshot, once the
// chunk that snapshot's position lies in is in tier 2 — and, for chunks,
// once local retention removed them too, so that every chunk file on
// local disk is still in tier 2 (what manifest verify checks).
func (c *Coordinator) trimRemoteManifest(ctx context.Context, s *core.Stream) error {
	id := s.ID()
	cutoff := uint64(math.MaxUint64)
	for _, ch := range s.TierLog().SealedChunks() {
		cutoff = min(cutoff, ch.Index)
	}
	c.t2m.mu.Lock()
	m := c.t2m.ofLocked(id)
	if len(m.uploaded) < 2 {
		c.t2m.mu.Unlock()
		return nil
	}
	keep := m.uploaded[len(m.uploaded)-2]
	if !m.chunks[keep.ChunkIndex] {
		c.t2m.mu.Unlock()
		return nil // its position is not in the tier-2 log yet
	}
	cutoff = min(cutoff, keep.ChunkIndex)
	var chunks, snaps []uint64
	for idx := range m.chunks {
		if idx < cutoff {
			chunks = append(chunks, idx)
		}
	}
	for sid := range m.snaps {
		if sid < keep.ID {
			snaps = append(snaps, sid)
		}
	}
	c.t2m.mu.Unlock()
	slices.Sort(chunks)
	slices.Sort(snaps)
	layout := c.remote.Layout()
	for _, idx := range chunks {
		if err := c.mayMutate(ctx); err != nil {
			return fmt.Errorf("trim the tier-2 manifest: %w", err)
		}
		if err := c.remote.Delete(ctx, layout.ManifestChunkKey(id, idx)); err != nil {
			return fmt.Errorf("trim the tier-2 manifest: chunk %d: %w", idx, err)
		}
		c.t2m.mu.Lock()
		delete(m.chunks, idx)
		c.t2m.mu.Unlock()
		c.m.manifestTrims.WithLabelValues("chunk").Inc()
	}
	for _, sid := range snaps {
		if err := c.mayMutate(ctx); err != nil {
			return fmt.Errorf("trim the tier-2 manifest: %w", err)
		}
		if err := c.remote.Delete(ctx, layout.SnapshotKey(id, sid)); err != nil {
			return fmt.Errorf("trim the tier-2 manifest: snapshot %d: %w", sid, err)
		}
		c.t2m.mu.Lock()
		delete(m.snaps, sid)
		m.uploaded = slices.DeleteFunc(m.uploaded, func(u manifest.LocalSnapshot) bool { return u.ID == sid })
		c.t2m.mu.Unlock()
		c.m.manifestTrims.WithLabelValues("snapshot").Inc()
	}
	return nil
}

// RemoteManifestObjects is how many manifest objects (chunks, snapshots)
// the coordinator knows tier 2 holds for the stream.
func (c *Coordinator) RemoteManifestObjects(id types.StreamID) (chunks, snapshots int) {
	c.t2m.mu.Lock()
	defer c.t2m.mu.Unlock()
	m := c.t2m.ofLocked(id)
	return len(m.chunks), len(m.snaps)
}
