package core

import (
	"context"
	"errors"
	"fmt"

	"github.com/aof2/aof2/core/manifest"
	"github.com/aof2/aof2/core/segment"
)

// Tiering is everything the engine needs from its colder tiers, set as
// Config.Tiering; core/coordinator implements it. The engine never imports
// tier 1 or tier 2: it budgets new segments, reports seals and reads, and
// asks for the segments whose tier-0 files are gone through this one
// interface. Every method is required, so an implementation that misses
// one (or renames one) does not compile instead of silently switching a
// behaviour off.
//
// Methods marked "must not block" run on the engine's hot paths (under the
// stream's writer lock, on its syncer or on a reader's goroutine).
type Tiering interface {
	// AdmitSegment admits a new active segment of bytes to the tier-0
	// budget. It runs under the stream's writer lock and must not block:
	// refusing returns a *WouldBlock (Admission), and the implementation
	// calls Stream.Wake once space is free.
	AdmitSegment(key SegmentKey, bytes int64) error
	// SegmentSealed reports an acknowledged seal (so that compression and
	// upload start). It runs on the stream's syncer and must not block.
	SegmentSealed(s *Stream, seg SegmentInfo)
	// SegmentRead reports that a reader moved onto a segment (once per
	// segment, not per record), so that eviction takes the least recently
	// read segments first. It runs on the reader's goroutine and must not
	// block.
	SegmentRead(key SegmentKey)
	// Describe returns the header and footer of a sealed segment whose
	// tier-0 file is gone (recovery keeps ordinals and offsets known). It
	// must not download the whole segment.
	Describe(ctx context.Context, key SegmentKey) (segment.Header, segment.Footer, error)
	// Hydrate writes the segment's file to path, durable and verified
	// against its footer's segment_crc64, admitted by the tier-0 budget.
	// The engine serialises calls for one segment.
	Hydrate(ctx context.Context, key SegmentKey, path string) error
	// ReadRecord reads the record at off (below limit, the segment's
	// durable bytes) of a segment that is not in tier 0, fetching only what
	// the record needs (the seek table and its frames), not the segment.
	// The payload is the caller's. An error matching errors.ErrUnsupported
	// (no artifact at hand that allows ranged reads) makes the engine
	// hydrate the segment instead.
	ReadRecord(ctx context.Context, key SegmentKey, off, limit int64) (Record, error)
	// ReadFailed judges err, what Hydrate or ReadRecord answered for key,
	// once the engine stopped serialising hydrations of the segment, and
	// returns the error the reader gets. It may block within ctx: a
	// cluster member that found no object catches up with the cluster
	// first, to tell a segment retention dropped from a lost one, and
	// what it waits for may need to read the same segment.
	ReadFailed(ctx context.Context, key SegmentKey, err error) error
	// WarmArtifacts lists the stream's verified tier-1 artifacts and
	// Tier2Segments its tier-2 segment objects: a damaged manifest is
	// rebuilt from all three tiers, not only from the tier-0 files.
	WarmArtifacts(ctx context.Context, stream StreamID) ([]manifest.WarmArtifact, error)
	Tier2Segments(ctx context.Context, stream StreamID) ([]manifest.Tier2Segment, error)
	// CheckNewStream is asked before the store creates a stream it does
	// not have: a stream that tier 2 already holds (this node lost its
	// data) must not start over at segment 1, reusing ids that name
	// records. It answers a *NeedsRestoreError then, a *WouldBlock while
	// it cannot tell yet (tier 2 not listed), nil otherwise. It runs under
	// the store's lock and must not block.
	CheckNewStream(stream StreamID) error
	// Repair replaces the tier-0 copy of a sealed segment that failed a
	// check on the read path with a copy rebuilt from tier 1 or 2,
	// verified against the manifest's segment_crc64, through
	// Stream.ReplaceSealedFile. It returns an error when the tier-0 copy
	// matches the manifest (the damage is not in it) or no verified copy
	// can be had. It blocks (a download) within ctx.
	Repair(ctx context.Context, key SegmentKey) error
}

// Wake wakes writers waiting in AppendCtx (after an Admission refusal)
// to try again.
func (s *Stream) Wake() { s.stateN.broadcast() }

// TierLog is the tiering side's handle on one stream's manifest: it reads
// where the stream's segments are and records tier transitions
// (compression, upload, hydration, eviction, deletion, chunk uploads). The
// records that open and seal segments are the engine's own and are
// refused here. Every call goes to the stream's current log, which the
// engine may reopen after a failed write.
type TierLog struct {
	j *manifestJournal
}

// errEngineRecord: SegmentOpened, SealSegment and SnapshotMarker are
// written by the engine and the log themselves.
var errEngineRecord = errors.New("aof2: segment open, seal and snapshot records are not tier records")

// TierLog returns the stream's tier log, or nil when the store runs
// without manifests (Config.NoManifest).
func (s *Stream) TierLog() *TierLog {
	if j, ok := s.journal.(*manifestJournal); ok {
		return &TierLog{j: j}
	}
	return nil
}

func (t *TierLog) log() *manifest.Log {
	t.j.mu.Lock()
	defer t.j.mu.Unlock()
	return t.j.log
}

// Segment returns what the manifest knows of segment id.
func (t *TierLog) Segment(id SegmentID) (manifest.SegmentState, bool) {
	return t.log().Segment(id)
}

// Segments returns every segment the manifest knows, in id order.
func (t *TierLog) Segments() []manifest.SegmentState { return t.log().Index().Segments() }

// Note appends a record that need not be durable yet (a *Started record):
// it is committed with the next commit.
func (t *TierLog) Note(rec manifest.Record) error {
	if err := checkTierRecord(rec); err != nil {
		return err
	}
	return t.log().Append(rec)
}

// Record appends records and commits them: they are durable when it
// returns nil.
func (t *TierLog) Record(ctx context.Context, recs ...manifest.Record) error {
	for _, r := range recs {
		if err := checkTierRecord(r); err != nil {
			return err
		}
	}
	return t.log().AppendCommit(ctx, recs...)
}

// SealedChunks lists the sealed manifest chunks still on local disk.
func (t *TierLog) SealedChunks() []manifest.SealedChunk { return t.log().SealedChunks() }

// LocalSnapshots lists the manifest snapshots on local disk, oldest first.
func (t *TierLog) LocalSnapshots() []manifest.LocalSnapshot { return t.log().LocalSnapshots() }

// ChunkUploaded records that sealed chunk index is safe in tier 2; local
// retention may then delete it.
func (t *TierLog) ChunkUploaded(ctx context.Context, index uint64) error {
	return t.log().MarkUploaded(ctx, index)
}

// Snapshot snapshots the stream's manifest now; the coordinator's next
// scan uploads it to tier 2.
func (t *TierLog) Snapshot(ctx context.Context) (manifest.SnapshotInfo, error) {
	return t.log().Snapshot(ctx)
}

// Rotate seals the active manifest chunk (if it holds records), so that
// it is uploaded to tier 2 without waiting for it to fill.
func (t *TierLog) Rotate(ctx context.Context) error { return t.log().Rotate(ctx) }

// SkipSnapshotIDs makes the log's next snapshot ids greater than through.
func (t *TierLog) SkipSnapshotIDs(through uint64) { t.log().SkipSnapshotIDs(through) }

// NewestFence returns the newest fence record in the log's newest n
// sealed chunks (manifest.Log.NewestFence).
func (t *TierLog) NewestFence(n int) (manifest.Fence, bool, error) { return t.log().NewestFence(n) }

func checkTierRecord(rec manifest.Record) error {
	switch rec.Type() {
	case manifest.TypeSegmentOpened, manifest.TypeSealSegment, manifest.TypeSnapshotMarker:
		return fmt.Errorf("manifest record %s for segment %d: %w", rec.Type(), rec.GetHeader().SegmentID, errEngineRecord)
	}
	return nil
}
