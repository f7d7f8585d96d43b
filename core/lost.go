package core

import (
	"cmp"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/aof2/aof2/core/segment"
	"github.com/aof2/aof2/core/types"
	"github.com/aof2/aof2/core/vfs"
)

// Lost segments (docs/tiering.md#damage). A segment file recovery cannot
// read (its header, size or footer damaged) that no other tier holds does
// not keep the rest of the stream from opening: the segment comes back as
// a lost catalog entry whose bounds come from its neighbours (the previous
// segment's end, the next one's start; its name gives its base offset),
// the stream is damaged (appends refused), reads of its records fail with
// ErrCorrupt naming the damage, and every other record reads as before —
// a reader from the start stops at the lost segment with the error, and
// goes on by id from the next segment's first record.
//
// Accepting the loss (AcceptLoss) moves the unreadable file aside
// (<file>.damaged-<ns>, kept for inspection) and writes a lost stub,
// <file>.lost — the cold stub's encoding, its footer flagged
// FlagLossAccepted — so that later recoveries know the segment's bounds
// and that its loss was accepted: appends go on, and readers from the
// start pass over the segment. Its ids are never handed out again.

// LostSuffix names the stub that stands for a segment whose loss was
// accepted.
const LostSuffix = ".lost"

// lostReadErr is what a read of a record in lost segment g returns.
func (s *Stream) lostReadErr(g *seg) error {
	next := types.MakeRecordID(g.id+1, segment.HeaderSize)
	if g.damage.accepted {
		return fmt.Errorf("stream %d: segment %d was lost (loss accepted; read on from record %s): %w (%w)", s.id, g.id, next, ErrCorrupt, g.damage.err)
	}
	return fmt.Errorf("stream %d: segment %d is lost: its tier-0 file is damaged and no other tier holds it (read on from record %s): %w (%w)",
		s.id, g.id, next, ErrCorrupt, g.damage.err)
}

// newLostSeg is the catalog entry of a lost segment.
func newLostSeg(path string, h segment.Header, f segment.Footer, err *DamageError, accepted bool) *seg {
	g := &seg{id: h.SegmentID, path: path, baseRecord: h.BaseRecord, baseOffset: h.BaseOffset, createdAt: h.CreatedAt,
		hyd: make(chan struct{}, 1), damage: &damage{err: err, lost: true, accepted: accepted}}
	g.resident.Store(true) // not cold: no tier holds it to hydrate from
	g.setSealed(&f)
	return g
}

// addLostSegments puts the segments recovery could not read and no other
// tier holds (healFromOtherTiers left them in s.recovered.lost) into the
// catalog, between their neighbours, and marks the stream damaged. Runs
// once the catalog holds every other segment (cold ones included).
func (s *Stream) addLostSegments(rep *RecoveryReport) error {
	lost := s.recovered.lost
	s.recovered.lost = nil
	if len(lost) == 0 {
		return nil
	}
	// Newest first: a run of lost segments is bounded from above by the
	// one placed before it (which takes the run's records: how they were
	// split is unknown, the older ones get none).
	slices.SortFunc(lost, func(a, b suspect) int { return cmp.Compare(b.info.Name.SegmentID, a.info.Name.SegmentID) })
	s.mu.Lock()
	defer s.mu.Unlock()
	cat := s.cat.Load()
	for _, sp := range lost {
		id, name := sp.info.Name.SegmentID, sp.info.Name
		i := 0
		for i < len(cat.segs) && cat.segs[i].id < id {
			i++
		}
		if i < len(cat.segs) && cat.segs[i].id == id {
			// Its loss was accepted, and a crash came before the file
			// was moved aside: the stub wins.
			if err := s.cfg.FS.Rename(sp.info.Path, fmt.Sprintf("%s%s-%d", sp.info.Path, DamagedSuffix, time.Now().UnixNano())); err != nil {
				return fmt.Errorf("stream %d: set aside lost segment %d: %w", s.id, id, err)
			}
			continue
		}
		var prev, next *seg
		if i > 0 {
			prev = cat.segs[i-1]
		}
		if i < len(cat.segs) {
			next = cat.segs[i]
		}
		h := segment.Header{StreamID: s.id, SegmentID: id, BaseOffset: name.BaseOffset, CreatedAt: name.CreatedAt}
		switch {
		case prev != nil:
			h.BaseRecord = prev.baseRecord + prev.count.Load()
		case sp.info.Header.SegmentID == id:
			h.BaseRecord = sp.info.Header.BaseRecord // the header is intact (a truncated file)
		case name.BaseOffset == 0:
			h.BaseRecord = 0 // the stream's first segment
		case next != nil:
			h.BaseRecord = next.baseRecord
		}
		// Without a next segment how many records it held is unknown:
		// they take no ordinals (nor logical offsets), as an accepted loss
		// of a tail's records does. The last record's id is not known
		// either: the footer names the first possible one.
		f := segment.Footer{Flags: segment.FlagSealed, SegmentID: id, BaseRecord: h.BaseRecord, DurableBytes: segment.HeaderSize}
		if tl := s.TierLog(); tl != nil {
			if st, ok := tl.Segment(id); ok && st.Sealed {
				// Its bytes still take their logical offsets.
				f.SegmentCRC, f.DurableBytes = uint64(st.SegmentCRC64), st.DurableBytes
			}
		}
		if next != nil {
			// The lost records are exactly those between the neighbours.
			if next.baseRecord < h.BaseRecord || next.baseOffset < h.BaseOffset {
				return fmt.Errorf("stream %d: segment %d is damaged in tier 0 and no other tier holds it; its neighbours do not bound it: %w", s.id, id, sp.err)
			}
			f.RecordCount = next.baseRecord - h.BaseRecord
			f.DurableBytes = segment.HeaderSize + (next.baseOffset - h.BaseOffset)
			if f.RecordCount > 0 {
				f.LastRecordID = types.MakeRecordID(id, segment.HeaderSize)
			}
		}
		reason := fmt.Sprintf("the tier-0 file is unreadable (%v) and no other tier holds the segment", sp.err)
		dmg := s.damageError(id, segment.HeaderSize, reason)
		cat = cat.withSorted(newLostSeg(sp.info.Path, h, f, dmg, false))
		rep.Lost = append(rep.Lost, id)
		if s.recovered.damage == nil {
			s.noteDamage(dmg, 0)
		} else {
			s.log.Error("segment lost: its tier-0 file is unreadable and no other tier holds it", "segment_id", uint64(id), "reason", reason)
		}
	}
	if s.mu.active == nil {
		s.installLocked(cat, nil) // the stream's position moves past the newest lost segment
	} else {
		s.setCatalogLocked(cat)
	}
	return nil
}

// readLostStub loads the stub of a segment whose loss was accepted.
func (s *Stream) readLostStub(path string) (*seg, error) {
	h, f, err := s.loadStub(path, LostSuffix)
	if err != nil {
		return nil, err
	}
	if f.Flags&segment.FlagLossAccepted == 0 {
		return nil, &types.CorruptError{Path: path, Reason: "lost stub without the loss-accepted flag"}
	}
	dmg := &DamageError{Stream: s.id, Segment: h.SegmentID, Offset: segment.HeaderSize, Reason: "its loss was accepted", Accepted: true}
	return newLostSeg(strings.TrimSuffix(path, LostSuffix), h, f, dmg, true), nil
}

// acceptLostLocked records the accepted loss of lost segment g: its stub
// first, then the unreadable file moves aside. s.readMu and s.mu are held.
func (s *Stream) acceptLostLocked(g *seg, rep *LossReport) error {
	f := *g.footer.Load()
	f.Flags |= segment.FlagLossAccepted
	h := segment.Header{StreamID: s.id, SegmentID: g.id, BaseOffset: g.baseOffset, BaseRecord: g.baseRecord, CreatedAt: g.createdAt}
	if err := vfs.WriteFileAtomic(s.cfg.FS, g.path+LostSuffix, encodeStub(h, f)); err != nil {
		return fmt.Errorf("stream %d: accept loss: write the lost stub of segment %d: %w", s.id, g.id, err)
	}
	aside := fmt.Sprintf("%s%s-%d", g.path, DamagedSuffix, time.Now().UnixNano())
	if err := s.cfg.FS.Rename(g.path, aside); err != nil && !vfs.IsNotExist(err) {
		return fmt.Errorf("stream %d: accept loss: set aside segment %d: %w", s.id, g.id, err)
	}
	if err := s.cfg.FS.SyncDir(s.segDir); err != nil {
		return fmt.Errorf("stream %d: accept loss: %w", s.id, err)
	}
	rep.Lost = true
	rep.Quarantine = append(rep.Quarantine, filepath.Base(aside))
	// A new entry: readers load g.damage without a lock.
	lost := newLostSeg(g.path, h, f, &DamageError{Stream: s.id, Segment: g.id, Offset: segment.HeaderSize, Reason: "its loss was accepted", Accepted: true}, true)
	cat := s.cat.Load()
	_, i := cat.byID(g.id)
	segs := slices.Clone(cat.segs)
	segs[i] = lost
	s.setCatalogLocked(&catalog{segs: segs})
	return nil
}
