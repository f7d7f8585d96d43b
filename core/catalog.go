package core

import (
	"fmt"
	"maps"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aof2/aof2/core/segment"
	"github.com/aof2/aof2/core/types"
	"github.com/aof2/aof2/core/vfs"
)

// seg is the engine's handle on one segment of a stream.
type seg struct {
	id         types.SegmentID
	path       string
	baseRecord uint64
	baseOffset uint64
	createdAt  int64
	capacity   int64
	// activated is when a rollover made the segment active (monoNow); 0
	// for segments found at open.
	activated int64

	// w is set while the segment is active or sealing, and kept afterwards
	// so readers go on using its mapping. Appends go through the stream's
	// writer lock; syncs through the syncer.
	w *segment.Writer

	// Published for readers: records [0,count) lying in [0,visible).
	// Writers store visible before count; readers load count first.
	visible atomic.Int64
	count   atomic.Uint64
	footer  atomic.Pointer[segment.Footer]
	// firstAt is when the segment's first record was published (or its
	// recovery found it holding records), monoNow; 0 until then. An
	// active segment this old is sealed (Stream.ActiveSince).
	firstAt atomic.Int64

	dirSynced bool            // syncer-owned: the segment's directory entry is durable
	sealed    *segment.Footer // syncer-owned: footer durable, seal not yet finished

	mu     sync.Mutex // guards the lazy read mapping of sealed segments
	region vfs.Region
	index  *segment.Index
	// dropped counts the times the segment's mappings were dropped while
	// readers may hold views of them (dropMapping, with the stream's
	// readMu held exclusively); a reader's view taken before is stale.
	dropped atomic.Uint32

	// resident is false while the segment's tier-0 file is evicted; it
	// changes only under the stream's readMu held exclusively. pins counts
	// readers positioned on the segment (changed under readMu shared):
	// eviction skips pinned segments. hyd serialises hydrations.
	resident atomic.Bool
	pins     atomic.Int32
	hyd      chan struct{}

	// damage is set on a damaged tail segment and on a lost one
	// (read-only; set at recovery, a new entry once a loss is accepted).
	damage *damage
}

func newActiveSeg(w *segment.Writer) *seg {
	h := w.Header()
	g := &seg{id: h.SegmentID, path: w.Path(), baseRecord: h.BaseRecord, baseOffset: h.BaseOffset, createdAt: h.CreatedAt, capacity: w.Capacity(), w: w,
		hyd: make(chan struct{}, 1)}
	g.resident.Store(true)
	g.publish()
	return g
}

func newSealedSeg(info segment.Info) *seg {
	g := &seg{id: info.Header.SegmentID, path: info.Path, baseRecord: info.Header.BaseRecord,
		baseOffset: info.Header.BaseOffset, createdAt: info.Header.CreatedAt, capacity: info.Capacity, hyd: make(chan struct{}, 1)}
	g.resident.Store(true)
	g.setSealed(info.Footer)
	return g
}

// newColdSeg describes a sealed segment whose file is not in tier 0.
func newColdSeg(path string, h segment.Header, f segment.Footer, capacity int64) *seg {
	g := &seg{id: h.SegmentID, path: path, baseRecord: h.BaseRecord, baseOffset: h.BaseOffset, createdAt: h.CreatedAt, capacity: capacity,
		hyd: make(chan struct{}, 1)}
	g.setSealed(&f)
	return g
}

// errCold says a segment's file is not in tier 0.
type errCold struct{ g *seg }

func (e *errCold) Error() string { return fmt.Sprintf("segment %d is not in tier 0", e.g.id) }

// publish makes everything appended so far readable.
func (g *seg) publish() {
	g.visible.Store(g.w.Visible())
	n := g.w.Count()
	g.count.Store(n)
	if n > 0 && g.firstAt.Load() == 0 {
		g.firstAt.Store(monoNow())
	}
}

// monoStart is the origin of monoNow.
var monoStart = time.Now()

// monoNow is the monotonic time since monoStart in nanoseconds, plus one
// (never 0, which means "not yet").
func monoNow() int64 { return int64(time.Since(monoStart)) + 1 }

func (g *seg) setSealed(f *segment.Footer) {
	g.visible.Store(int64(f.DurableBytes))
	g.count.Store(f.RecordCount)
	g.footer.Store(f)
}

// endPos is the stream position after the segment's visible records.
func (g *seg) endPos() uint64 { return g.baseOffset + uint64(g.visible.Load()-segment.HeaderSize) }

// view is a consistent read view of a segment.
type view struct {
	b     []byte
	limit int64
	count uint64
	index *segment.Index
}

func (g *seg) view(fsys vfs.FS) (view, error) {
	count := g.count.Load()
	limit := g.visible.Load()
	if !g.resident.Load() {
		return view{}, &errCold{g}
	}
	if g.damage != nil && g.damage.lost {
		return view{}, fmt.Errorf("segment %d is lost: %w (%w)", g.id, ErrCorrupt, g.damage.err)
	}
	if g.w != nil {
		return view{b: g.w.Bytes(), limit: limit, count: count, index: g.w.Index()}, nil
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.region == nil {
		r, err := segment.MapReadOnly(fsys, g.path)
		if err != nil {
			return view{}, fmt.Errorf("map %s: %w", g.path, err)
		}
		ix, err := segment.BuildIndex(r.Bytes(), g.path, limit)
		if err != nil {
			_ = r.Close()
			return view{}, err
		}
		g.region, g.index = r, ix
	}
	return view{b: g.region.Bytes(), limit: limit, count: count, index: g.index}, nil
}

// dropMapping closes g's file and mappings so that the file can change
// under a rewind or an accepted loss, which hold the stream's readMu
// exclusively: readers that kept a view of g drop it at their next read
// and take the catalog's entry for the segment again (Reader.Next).
func (g *seg) dropMapping() error {
	g.dropped.Add(1)
	return g.close()
}

func (g *seg) close() error {
	var err error
	if g.w != nil {
		err = g.w.Close()
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.region != nil {
		if cerr := g.region.Close(); err == nil {
			err = cerr
		}
		g.region = nil
	}
	return err
}

// catalog is an immutable, id-ordered list of a stream's segments,
// replaced as a whole (copy on write) when a segment is added or dropped.
// Readers load Stream.cat without a lock; every replacement goes through
// setCatalogLocked under the stream's writer lock, so two changes (a
// rollover adding the newest segment, retention dropping the oldest) can
// never overwrite one another.
type catalog struct {
	segs []*seg
}

// setCatalogLocked replaces the stream's catalog; s.mu must be held.
func (s *Stream) setCatalogLocked(c *catalog) { s.cat.Store(c) }

func (c *catalog) with(g *seg) *catalog {
	out := &catalog{segs: make([]*seg, len(c.segs), len(c.segs)+1)}
	copy(out.segs, c.segs)
	out.segs = append(out.segs, g)
	return out
}

// withSorted returns a catalog with g added in id order.
func (c *catalog) withSorted(g *seg) *catalog {
	i := sort.Search(len(c.segs), func(i int) bool { return c.segs[i].id >= g.id })
	out := &catalog{segs: make([]*seg, 0, len(c.segs)+1)}
	out.segs = append(append(append(out.segs, c.segs[:i]...), g), c.segs[i:]...)
	return out
}

func (c *catalog) byID(id types.SegmentID) (*seg, int) {
	i := sort.Search(len(c.segs), func(i int) bool { return c.segs[i].id >= id })
	if i < len(c.segs) && c.segs[i].id == id {
		return c.segs[i], i
	}
	return nil, -1
}

// byOrdinal returns the segment holding record ordinal ord.
func (c *catalog) byOrdinal(ord uint64) (*seg, int) {
	i := sort.Search(len(c.segs), func(i int) bool { return c.segs[i].baseRecord > ord }) - 1
	if i < 0 {
		return nil, -1
	}
	return c.segs[i], i
}

func (c *catalog) last() *seg {
	if len(c.segs) == 0 {
		return nil
	}
	return c.segs[len(c.segs)-1]
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
// the catalog and its tier-0 file and cold stub are deleted. The caller
// commits Tier2DeleteQueued first, and deletes the other tiers' copies and
// commits Tier2Deleted afterwards.
// It must be the oldest segment and sealed; a reader on it makes it
// ErrSegmentBusy. Records before the new head then answer ErrNotFound.
func (s *Stream) DropHead(id SegmentID) error {
	s.readMu.Lock()
	s.mu.Lock()
	if d := s.mu.undropped[id]; d != nil {
		s.mu.Unlock()
		s.readMu.Unlock()
		return s.removeDropped(d)
	}
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
	d := &droppedSeg{g: g, resident: g.resident.Load()}
	if s.mu.undropped == nil {
		s.mu.undropped = map[SegmentID]*droppedSeg{}
	}
	s.mu.undropped[id] = d
	s.mu.Unlock()
	g.resident.Store(false)
	cerr := g.close()
	g.w, g.index = nil, nil
	s.readMu.Unlock()
	if cerr != nil {
		s.log.Warn("closing a dropped segment failed", "segment_id", uint64(id), "error", cerr)
	}
	return s.removeDropped(d)
}

// droppedSeg is a segment DropHead took out of the catalog, until its
// files are removed.
type droppedSeg struct {
	g        *seg
	resident bool // its tier-0 file counted in the stream's bytes
}

// removeDropped removes the files of a dropped segment, durably; on a
// failure the segment stays in s.mu.undropped for the next DropHead.
func (s *Stream) removeDropped(d *droppedSeg) error {
	g := d.g
	for _, p := range []string{g.path, g.path + ColdSuffix, g.path + LostSuffix} {
		if err := s.cfg.FS.Remove(p); err != nil && !vfs.IsNotExist(err) {
			return fmt.Errorf("stream %d: drop segment %d: %w", s.id, g.id, err)
		}
	}
	if err := s.cfg.FS.SyncDir(s.segDir); err != nil {
		return fmt.Errorf("stream %d: drop segment %d: sync directory: %w", s.id, g.id, err)
	}
	s.mu.Lock()
	_, mine := s.mu.undropped[g.id]
	delete(s.mu.undropped, g.id)
	s.mu.Unlock()
	if !mine {
		return nil // a concurrent retry finished it
	}
	if d.resident {
		s.m.bytes.Sub(float64(g.capacity))
	}
	s.m.segments.Dec()
	return nil
}

// Undropped lists the segments DropHead took out of the catalog without
// removing their files yet.
func (s *Stream) Undropped() []SegmentID {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Sorted(maps.Keys(s.mu.undropped))
}

// DropPending reports whether DropHead took segment id out of the catalog
// without removing its files yet (DropHead(id) retries), and whether it
// was a lost segment.
func (s *Stream) DropPending(id SegmentID) (pending, lost bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	d := s.mu.undropped[id]
	if d == nil {
		return false, false
	}
	return true, d.g.damage != nil && d.g.damage.lost
}
