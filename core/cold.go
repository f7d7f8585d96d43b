package core

import (
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

// Cold is the engine's view of the colder tiers, implemented by the
// coordinator (core/coordinator): it never imports tier 1 or tier 2
// itself. Segments whose tier-0 file was evicted stay in the stream's
// catalog; reading one asks Cold to put the file back.
type Cold interface {
	// Describe returns the header and footer of a sealed segment whose
	// tier-0 file is gone (for recovery: ordinals and offsets must stay
	// known). It must not download the whole segment.
	Describe(ctx context.Context, stream StreamID, seg SegmentID) (segment.Header, segment.Footer, error)
	// Hydrate writes the segment's file to path, durable and verified
	// against its footer's segment_crc64, admitted by the tier-0 budget.
	// Concurrent calls for one segment do not happen: the engine
	// serialises them.
	Hydrate(ctx context.Context, stream StreamID, seg SegmentID, path string) error
}

// Admitter is implemented by a Cold that budgets tier 0: every new active
// segment is admitted first. AdmitSegment runs under the stream's writer
// lock and must not block; refusing returns a *WouldBlock (Admission), and
// the implementation calls Stream.Wake once space is free.
type Admitter interface {
	AdmitSegment(stream StreamID, seg SegmentID, bytes int64) error
}

// SealObserver is implemented by a Cold that wants to hear about seals
// (to start compression and upload). SegmentSealed runs on the stream's
// syncer after the seal is acknowledged and must not block.
type SealObserver interface {
	SegmentSealed(s *Stream, seg SegmentInfo)
}

// ReadObserver is implemented by a Cold that orders eviction by use: a
// reader moving onto a segment reports it (once per segment, not per
// record). SegmentRead runs on the reader's goroutine and must not block.
type ReadObserver interface {
	SegmentRead(stream StreamID, seg SegmentID)
}

// Wake wakes writers waiting in AppendCtx (after an Admission refusal)
// to try again.
func (s *Stream) Wake() { s.stateN.broadcast() }

// ErrSegmentBusy: the segment cannot be evicted now (not sealed, still
// being written, or a reader is positioned on it).
var ErrSegmentBusy = errors.New("aof2: segment busy")

// Manifest returns the stream's manifest log (nil with Config.NoManifest).
// The coordinator appends tier-transition records to it.
func (s *Stream) Manifest() *manifest.Log {
	if j, ok := s.journal.(*manifestJournal); ok {
		j.mu.Lock()
		defer j.mu.Unlock()
		return j.log
	}
	return nil
}

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
		Resident: g.resident.Load(), Footer: g.footer.Load(), Pinned: g.pins.Load() > 0}
}

// Evict removes the tier-0 file of a sealed segment; the segment stays in
// the catalog and a later read hydrates it through Config.Cold. The caller
// (the coordinator) makes sure another tier holds the segment and records
// the eviction in the manifest first. It returns ErrSegmentBusy when the
// segment is active, sealing, unsealed or pinned by a reader; evicting a
// segment that is not resident does nothing.
func (s *Stream) Evict(id SegmentID) error {
	g, _ := s.cat.Load().byID(id)
	if g == nil {
		return fmt.Errorf("stream %d: evict segment %d: %w", s.id, id, ErrNotFound)
	}
	s.mu.Lock()
	busy := g == s.mu.active || g == s.mu.sealing || g.footer.Load() == nil
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

// hydrate brings g's file back through Config.Cold and checks that what
// arrived is the segment the catalog describes.
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

func (s *Stream) hydrate(ctx context.Context, g *seg) error {
	if g == nil || g.resident.Load() {
		return nil
	}
	if s.cfg.Cold == nil {
		return fmt.Errorf("stream %d: segment %d is not in tier 0 and no cold tier is configured: %w", s.id, g.id, ErrNotFound)
	}
	select {
	case g.hyd <- struct{}{}:
	case <-ctx.Done():
		return fmt.Errorf("stream %d: hydrate segment %d: %w", s.id, g.id, ctx.Err())
	}
	defer func() { <-g.hyd }()
	if g.resident.Load() {
		return nil
	}
	if err := s.cfg.Cold.Hydrate(ctx, s.id, g.id, g.path); err != nil {
		return fmt.Errorf("stream %d: hydrate segment %d: %w", s.id, g.id, err)
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
// ordinals, ids and the next segment id stay right. Without Config.Cold
// the stream cannot describe them and refuses to open rather than reuse
// their ids.
func (s *Stream) addColdSegments(ctx context.Context, rep *RecoveryReport) error {
	log := s.Manifest()
	if log == nil {
		return nil
	}
	cat := s.cat.Load()
	var cold []uint64
	for _, st := range log.Index().Segments() {
		if g, _ := cat.byID(st.SegmentID); g != nil || !st.Sealed || len(st.Tier2.PendingDeletes) > 0 {
			continue // present, unsealed, or being deleted by retention
		}
		if st.Tier1.State == manifest.Tier1Compressed || st.Tier2.Key != "" {
			cold = append(cold, uint64(st.SegmentID))
		}
	}
	if len(cold) == 0 {
		return nil
	}
	if s.cfg.Cold == nil {
		return fmt.Errorf("stream %d: %d sealed segments (%d..%d) live only in tier 1/2; open the store with a cold tier (Config.Cold): %w",
			s.id, len(cold), cold[0], cold[len(cold)-1], ErrInvalidConfig)
	}
	added := make([]*seg, 0, len(cold))
	for _, id := range cold {
		h, f, err := s.cfg.Cold.Describe(ctx, s.id, SegmentID(id))
		if err != nil {
			return fmt.Errorf("stream %d: describe cold segment %d: %w", s.id, id, err)
		}
		path := filepath.Join(s.segDir, segment.FileName(h.SegmentID, h.BaseOffset, h.CreatedAt))
		added = append(added, newColdSeg(path, h, f, s.cfg.SegmentSize))
		rep.Cold = append(rep.Cold, SegmentID(id))
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	cat = s.cat.Load()
	for _, g := range added {
		cat = cat.withSorted(g)
	}
	if s.mu.active == nil {
		s.installLocked(cat, nil) // the stream's position moves past the newest cold segment
	} else {
		s.setCatalogLocked(cat)
	}
	return nil
}

// checkCatalog verifies that the catalog, local and cold segments
// together, is one unbroken chain: consecutive ids, each segment starting
// at the record and offset where the previous one ends. A gap that no tier
// accounts for is corruption, never skipped.
func (s *Stream) checkCatalog() error {
	segs := s.cat.Load().segs
	for i := 1; i < len(segs); i++ {
		prev, g := segs[i-1], segs[i]
		if g.id != prev.id+1 {
			return &types.CorruptError{Path: g.path, Reason: fmt.Sprintf("segment %d follows segment %d: segments are missing", g.id, prev.id)}
		}
		if want, wantOff := prev.baseRecord+prev.count.Load(), prev.endPos(); g.baseRecord != want || g.baseOffset != wantOff {
			return &types.CorruptError{Path: g.path, Reason: fmt.Sprintf(
				"segment starts at record %d, offset %d; the previous one ends at record %d, offset %d", g.baseRecord, g.baseOffset, want, wantOff)}
		}
	}
	return nil
}

// DropHead removes the stream's oldest segment for retention: it leaves
// the catalog and its tier-0 file and cold stub are deleted (the caller
// deletes the other tiers' copies and records it in the manifest first).
// It must be the oldest segment and sealed; a reader on it makes it
// ErrSegmentBusy. Records before the new head then answer ErrNotFound.
func (s *Stream) DropHead(id SegmentID) error {
	s.readMu.Lock()
	s.mu.Lock()
	cat := s.cat.Load()
	if len(cat.segs) == 0 || cat.segs[0].id != id {
		s.mu.Unlock()
		s.readMu.Unlock()
		return fmt.Errorf("stream %d: drop segment %d: not the oldest segment: %w", s.id, id, ErrSegmentBusy)
	}
	g := cat.segs[0]
	if g == s.mu.active || g == s.mu.sealing || g.footer.Load() == nil || len(cat.segs) == 1 {
		s.mu.Unlock()
		s.readMu.Unlock()
		return fmt.Errorf("stream %d: drop segment %d: still written or the only segment: %w", s.id, id, ErrSegmentBusy)
	}
	if g.pins.Load() > 0 {
		s.mu.Unlock()
		s.readMu.Unlock()
		return fmt.Errorf("stream %d: drop segment %d: a reader is on it: %w", s.id, id, ErrSegmentBusy)
	}
	s.setCatalogLocked(&catalog{segs: slices.Clone(cat.segs[1:])})
	s.mu.Unlock()
	resident := g.resident.Load()
	g.resident.Store(false)
	cerr := g.close()
	g.w, g.index = nil, nil
	s.readMu.Unlock()
	if cerr != nil {
		s.log.Warn("closing a dropped segment failed", "segment_id", uint64(id), "error", cerr)
	}
	for _, p := range []string{g.path, g.path + ColdSuffix} {
		if err := s.cfg.FS.Remove(p); err != nil && !vfs.IsNotExist(err) {
			return fmt.Errorf("stream %d: drop segment %d: %w", s.id, id, err)
		}
	}
	if err := s.cfg.FS.SyncDir(s.segDir); err != nil {
		return fmt.Errorf("stream %d: drop segment %d: sync directory: %w", s.id, id, err)
	}
	if resident {
		s.m.bytes.Sub(float64(g.capacity))
	}
	s.m.segments.Dec()
	return nil
}

// ColdReader is implemented by a Cold that can read one record of a
// segment that is not in tier 0 without hydrating it (SPEC §7: the seek
// table and the frames the record needs, not the segment). The payload is
// the caller's.
type ColdReader interface {
	ReadRecord(ctx context.Context, stream StreamID, seg SegmentID, off, limit int64) (Record, error)
}

// ReadAt reads the record with id. A record in a segment that is not in
// tier 0 is read through Config.Cold's ColdReader when it has one (a point
// read fetches only the frames it needs), else the segment is hydrated.
// The payload stays valid: it is copied out of the segment.
func (s *Stream) ReadAt(ctx context.Context, id RecordID) (Record, error) {
	g, _ := s.cat.Load().byID(id.Segment())
	if g == nil {
		return Record{}, fmt.Errorf("stream %d: record %s: %w", s.id, id, ErrNotFound)
	}
	if !g.resident.Load() {
		if cr, ok := s.cfg.Cold.(ColdReader); ok {
			f := g.footer.Load()
			rec, err := cr.ReadRecord(ctx, s.id, g.id, int64(id.Offset()), int64(f.DurableBytes))
			if err != nil {
				return Record{}, fmt.Errorf("stream %d: record %s: %w", s.id, id, err)
			}
			rec.ID = id
			return rec, nil
		}
	}
	r := &Reader{s: s}
	defer r.Close()
	for {
		err := r.seek(AtID(id))
		if err == nil && r.pending == nil {
			break
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
