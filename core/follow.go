package core

import (
	"context"
	"fmt"
	"path/filepath"
	"time"

	"github.com/aof2/aof2/core/manifest"
	"github.com/aof2/aof2/core/segment"
	"github.com/aof2/aof2/core/types"
	"github.com/aof2/aof2/core/vfs"
)

// Remote names the tier-2 object that holds a followed segment.
type Remote struct {
	Key     string
	ETag    string
	ModTime time.Time
}

// Follow adds a sealed segment that another node wrote and uploaded —
// header h and footer f, held in tier 2 as obj — after the stream's
// newest segment, as a cold segment (no bytes are copied: reads hydrate
// or read by range as for any cold segment). A read replica
// (core/replica, Config.Follower) grows its streams this way.
//
// The segment must continue the stream exactly (the next id, starting at
// the record and offset where the newest segment ends); the first segment
// of an empty stream may have any id. Its cold stub is made durable
// first (written atomically), then its manifest records are committed,
// then readers see it: after a crash in between, the stub is in the
// catalog and FollowRepair commits the records that are missing.
func (s *Stream) Follow(ctx context.Context, h segment.Header, f segment.Footer, obj Remote) error {
	return s.follow(ctx, h, f, obj, false)
}

// FollowLost adds, like Follow, a segment the writer's restore recorded as
// lost for good (its stub in tier 2, tier2.Store.RecordLost): a lost stub
// with the loss accepted, so that readers pass over it as they do on the
// writer, and the stream goes on after it.
func (s *Stream) FollowLost(ctx context.Context, h segment.Header, f segment.Footer) error {
	return s.follow(ctx, h, f, Remote{}, true)
}

func (s *Stream) follow(ctx context.Context, h segment.Header, f segment.Footer, obj Remote, lost bool) error {
	if s.cfg.Follower == nil {
		return fmt.Errorf("stream %d: follow segment %d: the store is not a follower (Config.Follower)", s.id, h.SegmentID)
	}
	if err := s.checkFollowed(h, f); err != nil {
		return err
	}
	tl := s.TierLog()
	if tl == nil {
		return fmt.Errorf("stream %d: follow: %w", s.id, ErrNoManifest)
	}
	s.roundMu.Lock()
	defer s.roundMu.Unlock()
	s.mu.Lock()
	err := s.checkNextLocked(h)
	s.mu.Unlock()
	if err != nil {
		return err
	}
	path := filepath.Join(s.segDir, segment.FileName(h.SegmentID, h.BaseOffset, h.CreatedAt))
	var g *seg
	if lost {
		if err := vfs.WriteFileAtomic(s.cfg.FS, path+LostSuffix, EncodeLostStub(h, f)); err != nil {
			return fmt.Errorf("stream %d: follow lost segment %d: %w", s.id, h.SegmentID, err)
		}
		dmg := &DamageError{Stream: s.id, Segment: h.SegmentID, Offset: segment.HeaderSize, Reason: "its loss was accepted by the writer's restore", Accepted: true}
		f.Flags |= segment.FlagLossAccepted
		g = newLostSeg(path, h, f, dmg, true)
	} else {
		if err := vfs.WriteFileAtomic(s.cfg.FS, path+ColdSuffix, encodeStub(h, f)); err != nil {
			return fmt.Errorf("stream %d: follow segment %d: %w", s.id, h.SegmentID, err)
		}
		if err := tl.log().AppendCommit(ctx, followRecords(h, f, obj, false)...); err != nil {
			return fmt.Errorf("stream %d: follow segment %d: %w", s.id, h.SegmentID, err)
		}
		g = newColdSeg(path, h, f, s.cfg.SegmentSize)
	}
	s.mu.Lock()
	s.setCatalogLocked(s.cat.Load().with(g))
	s.mu.written = g.endPos()
	s.mu.records = g.baseRecord + g.count.Load()
	s.durableMark.Store(uint64(types.MakeRecordID(g.id, uint32(g.visible.Load()))))
	s.durablePos.Store(s.mu.written)
	s.durableRecs.Store(s.mu.records)
	s.mu.Unlock()
	s.m.segments.Inc()
	s.durableN.broadcast()
	s.stateN.broadcast()
	return nil
}

// FollowRepair commits the manifest records of followed segment id if
// they are missing: its stub survived a crash that its records did not
// (Follow makes the stub durable first). A segment the manifest records
// in tier 2 already is left alone.
func (s *Stream) FollowRepair(ctx context.Context, id SegmentID, obj Remote) error {
	tl := s.TierLog()
	if tl == nil {
		return fmt.Errorf("stream %d: follow: %w", s.id, ErrNoManifest)
	}
	g, _ := s.cat.Load().byID(id)
	if g == nil || g.footer.Load() == nil {
		return fmt.Errorf("stream %d: follow repair: segment %d: %w", s.id, id, ErrNotFound)
	}
	ms, _ := tl.Segment(id)
	if ms.Tier2.Key != "" {
		return nil
	}
	// Hydration records may name a segment whose opened and sealed
	// records are missing: known means sealed.
	known := ms.Sealed
	h := segment.Header{StreamID: s.id, SegmentID: id, BaseOffset: g.baseOffset, BaseRecord: g.baseRecord, CreatedAt: g.createdAt}
	return tl.log().AppendCommit(ctx, followRecords(h, *g.footer.Load(), obj, known)...)
}

// followRecords are the manifest records of a followed segment: opened
// and sealed (unless known already), in tier 2, not in tier 0.
func followRecords(h segment.Header, f segment.Footer, obj Remote, known bool) []manifest.Record {
	var out []manifest.Record
	if !known {
		opened, sealed := SegmentRecords(h, f)
		out = append(out, opened, sealed)
	}
	hdr := manifest.Header{SegmentID: h.SegmentID, TimestampMS: uint64(max(obj.ModTime.UnixMilli(), 0))}
	return append(out, manifest.UploadDone{Header: hdr, Key: obj.Key, ETag: obj.ETag}, manifest.LocalEvicted{Header: hdr})
}

func (s *Stream) checkFollowed(h segment.Header, f segment.Footer) error {
	switch {
	case h.StreamID != s.id:
		return &types.CorruptError{Path: s.segDir, Reason: fmt.Sprintf("followed segment %d belongs to stream %d", h.SegmentID, h.StreamID)}
	case f.SegmentID != h.SegmentID || f.BaseRecord != h.BaseRecord:
		return &types.CorruptError{Path: s.segDir, Reason: fmt.Sprintf("followed segment %d: footer of segment %d at record %d", h.SegmentID, f.SegmentID, f.BaseRecord)}
	case f.Flags&segment.FlagSealed == 0:
		return &types.CorruptError{Path: s.segDir, Reason: fmt.Sprintf("followed segment %d is not sealed", h.SegmentID)}
	}
	return nil
}

// checkNextLocked checks that h continues the stream; s.mu is held.
func (s *Stream) checkNextLocked(h segment.Header) error {
	last := s.cat.Load().last()
	if last == nil {
		return nil
	}
	if h.SegmentID != last.id+1 || h.BaseRecord != last.baseRecord+last.count.Load() || h.BaseOffset != last.endPos() {
		return fmt.Errorf("%w: stream %d: segment %d at record %d offset %d does not follow segment %d (ends at record %d offset %d)",
			ErrNotNext, s.id, h.SegmentID, h.BaseRecord, h.BaseOffset, last.id, last.baseRecord+last.count.Load(), last.endPos())
	}
	return nil
}
