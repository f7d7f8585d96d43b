package core

import (
	"context"
	"fmt"
	"path/filepath"
	"sync"
	"time"

	"github.com/aof2/aof2/core/manifest"
	"github.com/aof2/aof2/core/segment"
	"github.com/aof2/aof2/core/types"
)

// Journal receives one stream's segment lifecycle events. The manifest log
// implements it (manifestJournal); tests and embedders that want no
// manifest use Config.NoManifest.
type Journal interface {
	// SegmentOpened records a new active segment. It need not be durable
	// when it returns: the record is committed with the next commit (at
	// the latest the seal's), and recovery re-derives it from the segment
	// file if a crash loses it.
	SegmentOpened(h segment.Header) error
	// SegmentSealed records a seal and must be durable when it returns
	// nil: only then is the seal acknowledged.
	SegmentSealed(ctx context.Context, h segment.Header, f segment.Footer) error
	Close() error
}

type nopJournal struct{}

func (nopJournal) SegmentOpened(segment.Header) error { return nil }
func (nopJournal) SegmentSealed(context.Context, segment.Header, segment.Footer) error {
	return nil
}
func (nopJournal) Close() error { return nil }

// manifestJournal writes SegmentOpened and SealSegment records to the
// stream's manifest log. The log is fail-stop: after a failed write it
// answers every call with an error. A seal retried after such a failure (a
// full disk is backpressure, not the end of the stream) reopens the log,
// which recovers from what is on disk, and brings it up to date again.
type manifestJournal struct {
	s   *Stream
	mu  sync.Mutex
	log *manifest.Log
}

func (j *manifestJournal) SegmentOpened(h segment.Header) error {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.log.Append(openedRecord(h))
}

func (j *manifestJournal) SegmentSealed(ctx context.Context, h segment.Header, f segment.Footer) error {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.log.Err() != nil {
		_ = j.log.Close()
		log, _, err := j.s.openManifestLog(ctx)
		if err != nil {
			return err
		}
		j.log = log
	}
	return j.log.AppendCommit(ctx, sealRecord(h.BaseOffset, f))
}

func (j *manifestJournal) Close() error {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.log.Close()
}

func openedRecord(h segment.Header) manifest.SegmentOpened {
	return manifest.SegmentOpened{
		Header:     manifest.Header{SegmentID: h.SegmentID, LogicalOffset: h.BaseOffset, TimestampMS: uint64(max(h.CreatedAt, 0) / int64(time.Millisecond))},
		BaseOffset: h.BaseOffset,
	}
}

func sealRecord(baseOffset uint64, f segment.Footer) manifest.SealSegment {
	return manifest.SealSegment{
		Header:       manifest.Header{SegmentID: f.SegmentID, LogicalOffset: baseOffset + f.DurableBytes - segment.HeaderSize, TimestampMS: uint64(max(f.SealedAt, 0) / int64(time.Millisecond))},
		DurableBytes: f.DurableBytes, SegmentCRC64: manifest.Hex64(f.SegmentCRC), ExtID: f.ExtID,
		CoordinatorWatermark: f.CoordinatorWatermark, FlushFailure: f.Flags&segment.FlagFlushFailure != 0,
	}
}

// Segments implements manifest.GroundTruth from the segment headers and
// footers the engine holds: what the manifest is rebuilt from when replay
// finds it damaged.
func (s *Stream) Segments(context.Context) ([]manifest.SegmentFacts, error) {
	cat := s.cat.Load()
	out := make([]manifest.SegmentFacts, 0, len(cat.segs))
	for _, g := range cat.segs {
		if !g.resident.Load() {
			continue // ground truth is the tier-0 files present
		}
		fs := manifest.SegmentFacts{SegmentID: g.id, BaseOffset: g.baseOffset, BaseRecord: g.baseRecord}
		if f := g.footer.Load(); f != nil {
			fs.Sealed, fs.DurableBytes, fs.SegmentCRC64, fs.ExtID = true, f.DurableBytes, f.SegmentCRC, f.ExtID
			fs.CoordinatorWatermark, fs.FlushFailure = f.CoordinatorWatermark, f.Flags&segment.FlagFlushFailure != 0
		}
		out = append(out, fs)
	}
	return out, nil
}

// openManifest opens the stream's manifest log (after the segments are
// recovered, so ground truth is known) and brings it up to date with them:
// a crash can fall between a segment's activation or seal and the commit of
// its record. It returns what it found for the recovery report.
func (s *Stream) openManifest(ctx context.Context) (ManifestRecovery, error) {
	if s.cfg.NoManifest {
		s.journal = nopJournal{}
		return ManifestRecovery{}, nil
	}
	log, mr, err := s.openManifestLog(ctx)
	if err != nil {
		return mr, err
	}
	s.journal = &manifestJournal{s: s, log: log}
	return mr, nil
}

func (s *Stream) openManifestLog(ctx context.Context) (*manifest.Log, ManifestRecovery, error) {
	var mr ManifestRecovery
	opts := s.cfg.Manifest
	opts.GroundTruth = s
	if t := s.cfg.Tiering; t != nil {
		opts.GroundTruth = coldTruth{s, t}
	}
	if opts.Registerer == nil {
		opts.Registerer = s.cfg.Registerer
	}
	if opts.Logger == nil {
		opts.Logger = s.log.Named("manifest")
	}
	if opts.TracerProvider == nil {
		opts.TracerProvider = s.cfg.TracerProvider
	}
	log, err := manifest.Open(ctx, s.cfg.FS, filepath.Dir(s.segDir), s.id, opts)
	if err != nil {
		return nil, mr, fmt.Errorf("stream %d: open manifest: %w", s.id, err)
	}
	rs := log.Replay()
	mr.Chunks, mr.Corruptions, mr.Repaired = rs.ChunksInspected, rs.CorruptionEvents, rs.Repaired
	// A segment the log does not know at all, when the colder tiers may
	// hold some (cold stubs, or a lister): rebuild residency from every
	// tier rather than guess it is in tier 0.
	_, tiered := opts.GroundTruth.(coldTruth)
	for _, g := range s.cat.Load().segs {
		if _, known := log.Segment(g.id); !known && (tiered || !g.resident.Load()) {
			rep, err := log.Repair(ctx, opts.GroundTruth)
			if err != nil {
				return nil, mr, s.closeManifest(log, err)
			}
			mr.Repaired, mr.Added = true, len(rep.Added)
			break
		}
	}
	live := map[uint64]bool{}
	for _, g := range s.cat.Load().segs {
		live[uint64(g.id)] = true
		st, known := log.Segment(g.id)
		if !known {
			if err := log.Append(openedRecord(segment.Header{SegmentID: g.id, BaseOffset: g.baseOffset})); err != nil {
				return nil, mr, s.closeManifest(log, err)
			}
			mr.Added++
		}
		if f := g.footer.Load(); f != nil && !st.Sealed {
			if err := log.Append(sealRecord(g.baseOffset, *f)); err != nil {
				return nil, mr, s.closeManifest(log, err)
			}
			mr.Added++
		}
	}
	for _, st := range log.Index().Segments() {
		if st.Tier0 && !live[uint64(st.SegmentID)] && !st.Sealed {
			// An activated segment that recovery removed: it never held an
			// acknowledged record.
			mr.Vanished = append(mr.Vanished, st.SegmentID)
		}
	}
	if mr.Added > 0 {
		if err := log.Commit(ctx); err != nil {
			return nil, mr, s.closeManifest(log, err)
		}
	}
	return log, mr, nil
}

func (s *Stream) closeManifest(log *manifest.Log, err error) error {
	_ = log.Close()
	return fmt.Errorf("stream %d: bring the manifest up to date: %w", s.id, err)
}

// ManifestRecovery is what opening a stream's manifest found.
type ManifestRecovery struct {
	Chunks      int               // chunk files replayed
	Corruptions int               // damaged chunks or snapshots found
	Repaired    bool              // residency was rebuilt from the segments
	Added       int               // records appended for segments the log did not know about
	Vanished    []types.SegmentID // opened in the log, but removed by recovery as empty
}

// coldTruth is the stream's ground truth with the colder tiers' listings.
type coldTruth struct {
	*Stream
	l Tiering
}

func (c coldTruth) WarmArtifacts(ctx context.Context) ([]manifest.WarmArtifact, error) {
	return c.l.WarmArtifacts(ctx, c.id)
}

func (c coldTruth) Tier2Segments(ctx context.Context) ([]manifest.Tier2Segment, error) {
	return c.l.Tier2Segments(ctx, c.id)
}
