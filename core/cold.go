package core

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"

	"github.com/aof2/aof2/core/manifest"
	"github.com/aof2/aof2/core/segment"
	"github.com/aof2/aof2/core/types"
	"github.com/aof2/aof2/core/vfs"
)

// ErrSegmentBusy: the segment cannot be evicted now (not sealed, still
// being written, or a reader is positioned on it).
var ErrSegmentBusy = errors.New("aof2: segment busy")

// SegmentInfo describes one segment of a stream for the coordinator.
type SegmentInfo struct {
	ID         SegmentID
	Path       string // where its tier-0 file is (or goes when hydrated)
	BaseOffset uint64
	BaseRecord uint64
	Capacity   int64
	Resident   bool            // its tier-0 file is present
	Footer     *segment.Footer // nil while unsealed
	Pinned     bool            // a reader is positioned on it
	// Lost: its tier-0 file is unreadable and no other tier holds it
	// (core/lost.go); nothing is to be done with it but keep it.
	// LossAccepted: an operator accepted that.
	Lost, LossAccepted bool
}

// Segment describes segment id.
func (s *Stream) Segment(id SegmentID) (SegmentInfo, bool) {
	g, _ := s.cat.Load().byID(id)
	if g == nil {
		return SegmentInfo{}, false
	}
	return g.info(), true
}

// SegmentList describes every segment of the stream in id order.
func (s *Stream) SegmentList() []SegmentInfo {
	cat := s.cat.Load()
	out := make([]SegmentInfo, len(cat.segs))
	for i, g := range cat.segs {
		out[i] = g.info()
	}
	return out
}

func (g *seg) info() SegmentInfo {
	return SegmentInfo{ID: g.id, Path: g.path, BaseOffset: g.baseOffset, BaseRecord: g.baseRecord, Capacity: g.capacity,
		Resident: g.resident.Load(), Footer: g.footer.Load(), Pinned: g.pins.Load() > 0,
		Lost: g.damage != nil && g.damage.lost, LossAccepted: g.damage != nil && g.damage.lost && g.damage.accepted}
}

// Evict removes the tier-0 file of a sealed segment; the segment stays in
// the catalog and a later read hydrates it through Config.Tiering. The
// caller (the coordinator) makes sure another tier holds the segment, and
// records the eviction (LocalEvicted) once the file is gone: use
// EvictRecorded, which does both before the stream can close. It returns
// ErrSegmentBusy when the
// segment is active, sealing, unsealed or pinned by a reader; evicting a
// segment that is not resident does nothing.
func (s *Stream) Evict(id SegmentID) error {
	g, _ := s.cat.Load().byID(id)
	if g == nil {
		return fmt.Errorf("stream %d: evict segment %d: %w", s.id, id, ErrNotFound)
	}
	s.mu.Lock()
	busy := g == s.mu.active || g == s.mu.sealing || g.footer.Load() == nil || g.damage != nil
	s.mu.Unlock()
	if busy {
		return fmt.Errorf("stream %d: evict segment %d: not sealed: %w", s.id, id, ErrSegmentBusy)
	}
	s.readMu.Lock()
	if g.pins.Load() > 0 {
		s.readMu.Unlock()
		return fmt.Errorf("stream %d: evict segment %d: a reader is on it: %w", s.id, id, ErrSegmentBusy)
	}
	if !g.resident.Load() {
		s.readMu.Unlock()
		return nil
	}
	// The stub goes in before the file goes: at every moment recovery finds
	// one or the other (or both: the file wins).
	stub := encodeStub(segment.Header{StreamID: s.id, SegmentID: g.id, BaseOffset: g.baseOffset, BaseRecord: g.baseRecord,
		CreatedAt: g.createdAt}, *g.footer.Load())
	if err := vfs.WriteFileAtomic(s.cfg.FS, g.path+ColdSuffix, stub); err != nil {
		s.readMu.Unlock()
		return fmt.Errorf("stream %d: evict segment %d: write cold stub: %w", s.id, id, err)
	}
	g.resident.Store(false)
	err := g.close()
	g.w, g.index = nil, nil
	s.readMu.Unlock()
	if err != nil {
		s.log.Warn("closing an evicted segment failed", "segment_id", uint64(id), "error", err)
	}
	if err := s.cfg.FS.Remove(g.path); err != nil {
		return fmt.Errorf("stream %d: evict segment %d: %w", s.id, id, err)
	}
	if err := s.cfg.FS.SyncDir(s.segDir); err != nil {
		return fmt.Errorf("stream %d: evict segment %d: sync directory: %w", s.id, id, err)
	}
	s.m.bytes.Sub(float64(g.capacity))
	return nil
}

// EvictRecorded is Evict followed by rec (the coordinator's LocalEvicted)
// in the stream's manifest, both before the stream can close: a clean
// stop never leaves a segment the manifest places in tier 0 whose file is
// gone. A stream closing already refuses with ErrClosed.
func (s *Stream) EvictRecorded(ctx context.Context, id SegmentID, rec manifest.Record) error {
	s.evictMu.RLock()
	defer s.evictMu.RUnlock()
	s.mu.Lock()
	closed := s.mu.closed
	s.mu.Unlock()
	if closed {
		return fmt.Errorf("stream %d: evict segment %d: %w", s.id, id, ErrClosed)
	}
	if err := s.Evict(id); err != nil {
		return err
	}
	if tl := s.TierLog(); tl != nil {
		return tl.Record(ctx, rec)
	}
	return nil
}

// Hydrate brings segment id back into tier 0 (from tier 1 or 2 through
// the coordinator) and waits for it. A resident segment is a no-op; an
// unknown one is ErrNotFound. Operators use it to warm a range before a
// scan; readers hydrate on their own.
func (s *Stream) Hydrate(ctx context.Context, id SegmentID) error {
	g, _ := s.cat.Load().byID(id)
	if g == nil {
		return fmt.Errorf("stream %d: segment %d: %w", s.id, id, ErrNotFound)
	}
	return s.hydrate(ctx, g)
}

// hydrate brings g's file back through Config.Tiering and checks that what
// arrived is the segment the catalog describes.
func (s *Stream) hydrate(ctx context.Context, g *seg) error {
	if g == nil || g.resident.Load() {
		return nil
	}
	if s.cfg.Tiering == nil {
		return fmt.Errorf("stream %d: segment %d is not in tier 0 and no tiering is configured: %w", s.id, g.id, ErrNotFound)
	}
	select {
	case g.hyd <- struct{}{}:
	case <-ctx.Done():
		return fmt.Errorf("stream %d: hydrate segment %d: %w", s.id, g.id, ctx.Err())
	}
	released := false
	release := func() {
		if !released {
			released = true
			<-g.hyd
		}
	}
	defer release()
	if g.resident.Load() {
		return nil
	}
	key := SegmentKey{Stream: s.id, Segment: g.id}
	if err := s.cfg.Tiering.Hydrate(ctx, key, g.path); err != nil {
		release() // the judgement may wait on another reader of g
		return fmt.Errorf("stream %d: hydrate segment %d: %w", s.id, g.id, s.cfg.Tiering.ReadFailed(ctx, key, err))
	}
	name, _ := segment.ParseFileName(filepath.Base(g.path))
	info, err := segment.Inspect(s.cfg.FS, g.path, name, s.id)
	if err != nil {
		return fmt.Errorf("stream %d: hydrated segment %d: %w", s.id, g.id, err)
	}
	if want := g.footer.Load(); info.Footer == nil || *info.Footer != *want || info.Header.BaseRecord != g.baseRecord {
		return &types.CorruptError{Path: g.path, Reason: "hydrated segment does not match the segment it replaces"}
	}
	s.readMu.Lock()
	g.resident.Store(true)
	s.readMu.Unlock()
	if err := s.cfg.FS.Remove(g.path + ColdSuffix); err != nil && !vfs.IsNotExist(err) {
		s.log.Warn("could not remove the cold stub of a hydrated segment", "segment_id", uint64(g.id), "error", err)
	}
	s.m.bytes.Add(float64(g.capacity))
	s.stateN.broadcast()
	return nil
}

// addColdSegments puts sealed segments that the manifest places in tier 1
// or tier 2 (their tier-0 files were evicted) back into the catalog, so
// ordinals, ids and the next segment id stay right. Without
// Config.Tiering the stream cannot describe them and refuses to open rather than reuse
// their ids.
func (s *Stream) addColdSegments(ctx context.Context, rep *RecoveryReport) error {
	tl := s.TierLog()
	if tl == nil {
		return nil
	}
	cat := s.cat.Load()
	var cold []SegmentID
	for _, st := range tl.Segments() {
		if g, _ := cat.byID(st.SegmentID); g != nil || !st.Sealed || len(st.Tier2.PendingDeletes) > 0 {
			continue // present, unsealed, or being deleted by retention
		}
		if st.Tier1.State == manifest.Tier1Compressed || st.Tier2.Key != "" {
			cold = append(cold, st.SegmentID)
		}
	}
	if len(cold) == 0 {
		return nil
	}
	if s.cfg.Tiering == nil {
		return fmt.Errorf("stream %d: %d sealed segments (%d..%d) live only in tier 1/2; open the store with tiering (Config.Tiering): %w",
			s.id, len(cold), cold[0], cold[len(cold)-1], ErrInvalidConfig)
	}
	added := make([]*seg, 0, len(cold))
	for _, id := range cold {
		h, f, err := s.cfg.Tiering.Describe(ctx, SegmentKey{Stream: s.id, Segment: id})
		if err != nil {
			return fmt.Errorf("stream %d: describe cold segment %d: %w", s.id, id, err)
		}
		path := filepath.Join(s.segDir, segment.FileName(h.SegmentID, h.BaseOffset, h.CreatedAt))
		added = append(added, newColdSeg(path, h, f, s.cfg.SegmentSize))
		rep.Cold = append(rep.Cold, id)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	segs := append(slices.Clone(s.cat.Load().segs), added...)
	slices.SortFunc(segs, func(a, b *seg) int { return cmp.Compare(a.id, b.id) })
	cat = &catalog{segs: segs}
	if s.mu.active == nil {
		s.installLocked(cat, nil) // the stream's position moves past the newest cold segment
	} else {
		s.setCatalogLocked(cat)
	}
	return nil
}

// ReadAt reads the record with id. A record in a segment that is not in
// tier 0 is read through Tiering.ReadRecord (a point read fetches only the
// frames it needs), or the segment is hydrated when that is unsupported.
// The payload stays valid: it is copied out of the segment.
//
// Such a point read does not read the segment up to the record, so it
// knows less than a read in tier 0: the Record's Ordinal is 0 (a Reader
// positioned at id gives it), and id must be one the stream handed out —
// the record's frame is checked (its checksum), not that the segment's
// record chain reaches it, so an id pointing into a payload that holds a
// well-formed frame reads that frame.
func (s *Stream) ReadAt(ctx context.Context, id RecordID) (Record, error) {
	g, _ := s.cat.Load().byID(id.Segment())
	if g == nil {
		return Record{}, fmt.Errorf("stream %d: record %s: %w", s.id, id, ErrNotFound)
	}
	if g.damage != nil && int64(id.Offset()) >= g.visible.Load() {
		return s.readAfterDamage(g, id)
	}
	if !g.resident.Load() && s.cfg.Tiering != nil {
		f := g.footer.Load()
		key := SegmentKey{Stream: s.id, Segment: g.id}
		rec, err := s.cfg.Tiering.ReadRecord(ctx, key, int64(id.Offset()), int64(f.DurableBytes))
		switch {
		case err == nil:
			rec.ID = id
			return rec, nil
		case !errors.Is(err, errors.ErrUnsupported):
			return Record{}, fmt.Errorf("stream %d: record %s: %w", s.id, id, s.cfg.Tiering.ReadFailed(ctx, key, err))
		}
		// No ranged read possible: hydrate the segment below.
	}
	r := &Reader{s: s}
	defer r.Close()
	repaired := false
	for {
		err := r.seek(AtID(id))
		if err == nil && r.pending == nil {
			break
		}
		if !repaired && errors.Is(err, ErrCorrupt) {
			// The seek builds the segment's index: a damaged copy shows
			// here; the read repairs it from another tier once.
			cur, _ := s.cat.Load().byID(id.Segment())
			if repaired = s.repairOnRead(ctx, cur, err); repaired {
				continue
			}
		}
		if err != nil {
			return Record{}, err
		}
		if err := s.hydrate(ctx, r.cold); err != nil {
			return Record{}, err
		}
		r.pending, r.cold = nil, nil
	}
	rec, err := r.NextCtx(ctx)
	if err != nil {
		return Record{}, err
	}
	rec.Payload = append([]byte(nil), rec.Payload...)
	return rec, nil
}

// readAhead hydrates g in the background (a scan's next segment). It is
// owned by the stream: Close cancels it and waits for it.
func (s *Stream) readAhead(g *seg) {
	s.mu.Lock()
	if s.mu.closed {
		s.mu.Unlock()
		return
	}
	s.wg.Add(1)
	s.mu.Unlock()
	go func() {
		defer s.wg.Done()
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		go func() {
			select {
			case <-s.done:
				cancel()
			case <-ctx.Done():
			}
		}()
		if err := s.hydrate(ctx, g); err != nil && ctx.Err() == nil {
			s.log.Debug("read-ahead hydration failed; the reader will retry", "segment_id", uint64(g.id), "error", err)
		}
	}()
}
