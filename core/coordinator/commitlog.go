package coordinator

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"maps"
	"math"
	"slices"

	"github.com/aof2/aof2/core"
	"github.com/aof2/aof2/core/internal/tracing"
	"github.com/aof2/aof2/core/manifest"
	"github.com/aof2/aof2/core/tier2"
	"github.com/aof2/aof2/core/types"
	"github.com/aof2/aof2/core/vfs"
	"go.opentelemetry.io/otel/trace"
)

// A stream's commit log in tier 2 (docs/adr-fencing.md) is its sealed
// manifest chunks, each created only where its key is absent: one
// sequence, which a writer that took the prefix over closes for the
// previous one with a fence record at the next free index. A chunk
// create that finds its index taken is therefore an answer, not an
// accident: this node was fenced (the writer record moved on), or, if it
// still holds the claim, tier 2 lost or replaced what it had.

// ErrHistoryDiverged: a stream's local history and its tier-2 commit log
// disagree at an index — another writer extended the log this data
// directory continued. The stream must be restored from tier 2.
var ErrHistoryDiverged = errors.New("coordinator: a stream's local history differs from its tier-2 commit log")

// manifestLock is the lockKey segment id of a stream's commit-log
// uploads (no segment has it): its chunks go up one at a time, in order.
const manifestLock = types.SegmentID(math.MaxUint64)

// uploadChunks ships the stream's sealed manifest chunks not uploaded yet
// to tier 2, in index order, stopping at the first failure, and tells the
// log of each (its local retention may then delete it). A chunk is
// uploaded only once every sealed chunk before it is: tier 2's manifest
// has no gap a crash could leave (docs/adr-restore.md). Each create is
// preceded by the writer check.
func (c *Coordinator) uploadChunks(ctx context.Context, s *core.Stream) (err error) {
	ctx, span := tracing.Start(ctx, c.tracer, tracing.SpanChunkUpload, tracing.StreamID(uint64(s.ID())), tracing.Tier(2))
	result := tracing.ResultSkipped
	defer func() { endSpan(span, err, result) }()
	n, err := c.createChunks(ctx, s, c.mayMutate, true) // run checked before the job
	if errors.Is(err, tier2.ErrDataLoss) {
		c.remote.ReportDataLoss(err)
	}
	if n > 0 {
		result = tracing.ResultOK
	}
	if err != nil {
		return err
	}
	if n == 0 {
		return nil
	}
	return c.trimRemoteManifest(ctx, s)
}

// createChunks creates the stream's unuploaded sealed chunks in tier 2,
// each after check (the first without, when the caller has just checked),
// and returns how many it created. A chunk whose index
// another writer took is the fenced error when the claim moved on, else
// the data loss (ErrDataLoss, which the caller reports).
func (c *Coordinator) createChunks(ctx context.Context, s *core.Stream, check func(context.Context) error, checked bool) (int, error) {
	unlock := c.lockKey(types.SegmentKey{Stream: s.ID(), Segment: manifestLock})
	defer unlock()
	tl := s.TierLog()
	n := 0
	for _, ch := range tl.SealedChunks() {
		if ch.Uploaded {
			continue
		}
		if !checked {
			if err := check(ctx); err != nil {
				return n, err
			}
		}
		checked = false
		data, err := vfs.ReadFile(c.cfg.FS, ch.Path)
		if err != nil {
			return n, fmt.Errorf("read manifest chunk %d: %w", ch.Index, err)
		}
		// Verified as a restore will: damaged bytes never become part of
		// the tier-2 history (the chunks after it wait: no gap either).
		if _, err := manifest.CheckChunk(data, ch.Index); err != nil {
			return n, fmt.Errorf("manifest chunk %d is damaged; not uploaded: %w", ch.Index, err)
		}
		trace.SpanFromContext(ctx).SetAttributes(tracing.ChunkIndex(ch.Index), tracing.Bytes(int64(len(data))))
		if _, err := c.remote.CreateManifestChunk(ctx, s.ID(), ch.Index, data); err != nil {
			if errors.Is(err, tier2.ErrDataLoss) {
				if cerr := c.claimHeld(ctx); cerr != nil {
					return n, fmt.Errorf("manifest chunk %d: its index in tier 2 is taken: %w", ch.Index, cerr)
				}
			}
			return n, fmt.Errorf("upload manifest chunk %d: %w", ch.Index, err)
		}
		n++
		c.t2m.chunkStored(s.ID(), ch.Index)
		if err := tl.ChunkUploaded(ctx, ch.Index); err != nil {
			return n, err
		}
	}
	return n, nil
}

// publishIntent seals the stream's manifest chunk and creates every
// sealed chunk in tier 2, so that what the log recorded so far (a delete
// queued, say) is part of the tier-2 history before it is acted on: a
// writer fenced meanwhile finds its chunk's index taken and acts on
// nothing.
func (c *Coordinator) publishIntent(ctx context.Context, s *core.Stream) error {
	tl := s.TierLog()
	if err := tl.Rotate(ctx); err != nil {
		return err
	}
	if _, err := c.createChunks(ctx, s, c.mayMutate, true); err != nil { // finishDelete checked
		if errors.Is(err, tier2.ErrDataLoss) {
			c.remote.ReportDataLoss(err)
		}
		return fmt.Errorf("commit the intent to the tier-2 log first: %w", err)
	}
	return nil
}

// fenceStreams starts this node's epoch in the commit log of every local
// stream, the first time it runs as the writer at that epoch (after a
// takeover): a fence record at the next index of each stream's log,
// created in tier 2 before any other mutation of the prefix. From then on
// the previous writer cannot extend these logs. Epoch 1 has no previous
// writer. Streams restore installed with this epoch's fence are not
// fenced twice. The epoch is recorded as fenced only once every stream
// is: a failure keeps the writer gate shut (the next scan tries again);
// a stream that does not open is left for a start that opens it.
func (c *Coordinator) fenceStreams(ctx context.Context) error {
	local, err := loadWriterFile(c.cfg.FS, c.cfg.DataDir)
	if err != nil {
		return err
	}
	if local.Epoch <= 1 || local.Fenced >= local.Epoch {
		return nil
	}
	c.mu.Lock()
	st := c.mu.store
	c.mu.Unlock()
	if st == nil {
		return nil
	}
	f := manifest.Fence{Epoch: local.Epoch, NodeID: local.NodeID}
	done := map[types.StreamID]bool{}
	if p := local.Partial; p != nil && p.Epoch == local.Epoch {
		for _, id := range p.Streams {
			done[id] = true
		}
	}
	broken := 0
	for _, id := range st.Streams() {
		if done[id] {
			continue
		}
		s, err := st.Lookup(id)
		if err != nil {
			broken++ // reported by the store; it takes no appends, and is fenced at a start that opens it
			continue
		}
		if err := c.fenceStream(ctx, s, f); err != nil {
			return fmt.Errorf("fence stream %d at epoch %d: %w", id, f.Epoch, err)
		}
		done[id] = true
	}
	if broken > 0 {
		local.Partial = &partialFence{Epoch: local.Epoch, Streams: slices.Sorted(maps.Keys(done))}
		if err := saveWriterFile(c.cfg.FS, c.cfg.DataDir, local); err != nil {
			return fmt.Errorf("coordinator: record the fences: %w", err)
		}
		c.log.Warn("streams that do not open are not fenced at this epoch yet", "epoch", f.Epoch, "streams", broken)
		return nil
	}
	local.Fenced, local.Partial = local.Epoch, nil
	if err := saveWriterFile(c.cfg.FS, c.cfg.DataDir, local); err != nil {
		return fmt.Errorf("coordinator: record the fences: %w", err)
	}
	c.log.Info("fenced every stream's tier-2 commit log at this node's epoch", "epoch", f.Epoch, "streams", len(st.Streams()))
	return nil
}

// fenceStream appends the fence to the stream's log (unless an earlier
// attempt or restore did), seals the chunk, and creates in tier 2 every
// sealed chunk not there yet, the fence last. Tier 2 holding a chunk past
// the fence's index, or another chunk at one of these indices, means
// another writer extended the log this data directory continued: the
// stream is refused (ErrHistoryDiverged), nothing more is written for it.
func (c *Coordinator) fenceStream(ctx context.Context, s *core.Stream, f manifest.Fence) error {
	tl := s.TierLog()
	if tl == nil {
		return nil
	}
	if got, ok, err := tl.NewestFence(4); err != nil {
		return err
	} else if !ok || got.Epoch != f.Epoch {
		if err := tl.Record(ctx, f.Record()); err != nil {
			return err
		}
		if err := tl.Rotate(ctx); err != nil {
			return err
		}
	}
	sealed := tl.SealedChunks()
	if len(sealed) == 0 {
		return fmt.Errorf("coordinator: stream %d: the fence's chunk is not sealed", s.ID())
	}
	last := sealed[len(sealed)-1].Index
	listing, err := c.remote.ListStream(ctx, s.ID())
	if err != nil {
		return fmt.Errorf("list the stream's tier-2 commit log: %w", err)
	}
	pending := map[uint64]string{} // index → path of the local chunks to create
	for _, ch := range sealed {
		if !ch.Uploaded {
			pending[ch.Index] = ch.Path
		}
	}
	for _, ch := range listing.ManifestChunks {
		if ch.Ref.ID > last {
			return c.diverged(s, fmt.Errorf("tier 2 holds chunk %d (%s), past this data directory's chunk %d", ch.Ref.ID, ch.Info.Key, last))
		}
		// A chunk at an index this data directory is about to create is
		// another writer's unless it holds these very bytes (an earlier
		// attempt of this node's): found before anything is created, so
		// that nothing is written for a diverged stream — the chunks
		// below it may be free (the other writer's trim deleted them).
		path, ok := pending[ch.Ref.ID]
		if !ok {
			continue
		}
		local, err := vfs.ReadFile(c.cfg.FS, path)
		if err != nil {
			return fmt.Errorf("read manifest chunk %d: %w", ch.Ref.ID, err)
		}
		remote, _, err := c.remote.Fetch(ctx, ch.Info.Key, tier2.Expect{ETag: ch.Info.ETag})
		if err != nil {
			return fmt.Errorf("read the stream's tier-2 commit log: %w", err)
		}
		if !bytes.Equal(local, remote) {
			return c.diverged(s, fmt.Errorf("tier 2 holds another chunk %d (%s) than this data directory's", ch.Ref.ID, ch.Info.Key))
		}
	}
	if _, err := c.createChunks(ctx, s, c.claimHeld, false); errors.Is(err, tier2.ErrDataLoss) {
		return c.diverged(s, err)
	} else if err != nil {
		return err
	}
	return nil
}

// diverged refuses appends to a stream whose local history differs from
// its tier-2 commit log, and returns the ErrHistoryDiverged that says so.
func (c *Coordinator) diverged(s *core.Stream, why error) error {
	err := fmt.Errorf("%w: stream %d: %w; this data directory's copy of the stream cannot go on as its history: move streams/%d aside and `aof2-host restore -stream %d` (docs/adr-fencing.md)",
		ErrHistoryDiverged, s.ID(), why, s.ID(), s.ID())
	s.RefuseAppendsWith(err)
	return err
}
