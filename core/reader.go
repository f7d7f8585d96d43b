package core

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/aof2/aof2/core/segment"
	"github.com/aof2/aof2/core/types"
)

// Record is one record read from a stream.
type Record struct {
	ID        RecordID
	Ordinal   uint64 // index in the stream, from 0
	Timestamp int64  // unix ns
	ExtID     uint64
	// Payload aliases the mapped segment: valid until the next call on the
	// reader that returned it, and never after the store is closed.
	Payload []byte
}

// Position says where a reader starts.
type Position struct {
	byID    bool
	start   bool
	id      RecordID
	ordinal uint64
}

// AtID starts at the record with this id; the id must name a record
// boundary.
func AtID(id RecordID) Position { return Position{byID: true, id: id} }

// AtOrdinal starts at the record with this ordinal. The ordinal one past the
// last record is allowed: the reader then waits at the end.
func AtOrdinal(n uint64) Position { return Position{ordinal: n} }

// AtStart starts at the first record.
func AtStart() Position { return Position{start: true} }

// Reader reads a stream forwards. Next returns io.EOF once it has caught up
// with the appended records; calling it again later returns newer ones.
// A Reader is not safe for concurrent use.
type Reader struct {
	s           *Stream
	seg         *seg
	off         int64
	ord         uint64
	durableOnly bool
	// pending is a start position inside a segment not in tier 0 yet;
	// cold is the segment a Hydration WouldBlock is about; pinned is the
	// segment this reader keeps from eviction.
	pending *Position
	cold    *seg
	pinned  *seg
	// atStart: positioned AtStart on an empty stream; the first segment
	// to appear may start at any record (a follower's first segment).
	atStart bool
	// The view of seg last loaded: records up to vlimit are read from vb
	// without touching the catalog again (a sequential scan's fast path).
	vseg   *seg
	vb     []byte
	vlimit int64
	vdrop  uint32 // vseg.dropped when vb was taken
}

// NewReader returns a reader at p. It sees every appended record, durable
// or not; use Tail for durable records only. A reader pins the segment it
// is positioned on against eviction until it moves on or is closed.
func (s *Stream) NewReader(p Position) (*Reader, error) {
	r := &Reader{s: s}
	if err := r.seek(p); err != nil {
		return nil, err
	}
	return r, nil
}

// Close releases the reader's pin. The reader must not be used afterwards.
func (r *Reader) Close() {
	r.s.readMu.RLock()
	defer r.s.readMu.RUnlock()
	r.pin(nil)
}

// pin moves the reader's pin to g; the caller holds readMu.
func (r *Reader) pin(g *seg) {
	if r.pinned == g {
		return
	}
	if r.pinned != nil {
		r.pinned.pins.Add(-1)
	}
	if g != nil {
		g.pins.Add(1)
		if t := r.s.cfg.Tiering; t != nil {
			t.SegmentRead(SegmentKey{Stream: r.s.id, Segment: g.id})
		}
	}
	r.pinned = g
}

func (r *Reader) seek(p Position) error {
	s := r.s
	s.readMu.RLock()
	defer s.readMu.RUnlock()
	if s.readersClosed {
		return fmt.Errorf("stream %d: %w", s.id, ErrClosed)
	}
	err := r.seekLocked(p)
	var ec *errCold
	if errors.As(err, &ec) {
		// Resolved by the first Next, which can hydrate the segment.
		r.pending, r.cold = &p, ec.g
		r.pin(ec.g)
		return nil
	}
	return err
}

func (r *Reader) seekLocked(p Position) error {
	s := r.s
	cat := s.cat.Load()
	if p.byID {
		g, _ := cat.byID(p.id.Segment())
		if g == nil {
			return fmt.Errorf("stream %d: record %s: segment %d does not exist: %w", s.id, p.id, p.id.Segment(), ErrNotFound)
		}
		if g == s.activeSeg() {
			_ = s.flushVisible(g)
		}
		if d := g.damage; d != nil && int64(p.id.Offset()) >= d.err.Offset {
			k, err := s.pastDamage(g, p.id)
			if err != nil {
				return err
			}
			r.seg, r.off, r.ord = g, int64(p.id.Offset()), g.baseRecord+g.count.Load()+uint64(k)
			r.pin(g)
			return nil
		}
		v, err := g.view(s.cfg.FS)
		if err != nil {
			return err
		}
		n, err := segment.Locate(v.b, v.index, g.path, int64(p.id.Offset()), v.limit)
		if err != nil {
			return fmt.Errorf("stream %d: record %s: %w", s.id, p.id, err)
		}
		r.seg, r.off, r.ord = g, int64(p.id.Offset()), g.baseRecord+n
		r.pin(g)
		return nil
	}
	last := cat.last()
	total := uint64(0)
	if last != nil {
		total = last.baseRecord + last.count.Load()
	}
	if p.start && len(cat.segs) > 0 {
		// The oldest record still kept: retention may have dropped the head.
		p.ordinal = cat.segs[0].baseRecord
		if g := cat.segs[0]; g.damage != nil && g.damage.lost {
			// It may hold no ordinal (its records uncounted): start on it
			// anyway, so that Next says it is lost.
			r.seg, r.off, r.ord = g, segment.HeaderSize, g.baseRecord
			r.pin(g)
			return nil
		}
	}
	if p.ordinal > total {
		return fmt.Errorf("stream %d: ordinal %d past the end (%d records): %w", s.id, p.ordinal, total, ErrNotFound)
	}
	r.ord = p.ordinal
	if last == nil {
		r.atStart = p.start
		return nil // empty stream: positioned before the first segment
	}
	g, _ := cat.byOrdinal(p.ordinal)
	if g == nil {
		return fmt.Errorf("stream %d: ordinal %d is before the first local segment: %w", s.id, p.ordinal, ErrNotFound)
	}
	if g.damage != nil && g.damage.lost {
		r.seg, r.off = g, segment.HeaderSize // Next says it is lost, or passes over it
		r.pin(g)
		return nil
	}
	if g == s.activeSeg() {
		// The ordinal counts records still staged for a pwrite; the view
		// shows them only once pushed.
		_ = s.flushVisible(g)
	}
	v, err := g.view(s.cfg.FS)
	if err != nil {
		return err
	}
	if p.ordinal == g.baseRecord+v.count {
		r.seg, r.off = g, v.limit
		r.pin(g)
		return nil
	}
	off, err := segment.LocateOrdinal(v.b, v.index, g.path, p.ordinal-g.baseRecord, v.limit)
	if err != nil {
		return fmt.Errorf("stream %d: ordinal %d: %w", s.id, p.ordinal, err)
	}
	r.seg, r.off = g, off
	r.pin(g)
	return nil
}

func (s *Stream) activeSeg() *seg {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.mu.active
}

// Next returns the next record, or io.EOF when there is none yet. When
// the next record lies in a segment that is not in tier 0 it returns
// WouldBlock(Hydration); NextCtx hydrates and waits instead.
func (r *Reader) Next() (Record, error) {
	s := r.s
	s.readMu.RLock()
	defer s.readMu.RUnlock()
	if s.readersClosed {
		return Record{}, fmt.Errorf("stream %d: %w", s.id, ErrClosed)
	}
	if r.seg == nil && r.atStart && len(s.cat.Load().segs) > 0 {
		// The first segment appeared: start on it, whatever its first record.
		p := AtStart()
		r.atStart, r.pending = false, &p
	}
	if r.pending != nil {
		if err := r.seekLocked(*r.pending); err != nil {
			return Record{}, r.coldErr(err)
		}
		r.pending, r.cold = nil, nil
	}
	pushed := false
	for {
		if r.seg != nil && r.seg == r.vseg && r.off < r.vlimit {
			if r.vdrop == r.seg.dropped.Load() {
				return r.read(r.vb, r.vlimit)
			}
			r.retake()
		}
		if g := r.seg; g != nil && g.damage != nil && g.damage.lost {
			// A lost segment: the error, or past it once its loss was
			// accepted (AcceptLoss puts a new entry in the catalog).
			if cur, _ := s.cat.Load().byID(g.id); cur != nil && cur != g {
				r.seg = cur
				r.pin(cur)
				g = cur
			}
			next, _ := s.cat.Load().byID(g.id + 1)
			switch {
			case !g.damage.accepted:
				return Record{}, s.lostReadErr(g)
			case next == nil:
				return Record{}, io.EOF
			}
			r.seg, r.off, r.ord = next, segment.HeaderSize, next.baseRecord
			r.pin(next)
			continue
		}
		if g := r.seg; g != nil && g.damage != nil && r.off >= g.damage.err.Offset {
			// Positioned by id past the damage (a sequential read stops
			// at it): the intact records after it, then the end.
			if g.damage.resume == 0 || r.off < g.damage.resume || r.off >= g.damage.end {
				return Record{}, io.EOF
			}
			v, err := g.view(s.cfg.FS)
			if err != nil {
				return Record{}, err
			}
			return r.read(v.b, g.damage.end)
		}
		if r.seg == nil {
			g, _ := s.cat.Load().byOrdinal(r.ord)
			if g == nil {
				return Record{}, io.EOF
			}
			r.seg, r.off = g, segment.HeaderSize
			r.pin(g)
		}
		// Check for a successor before loading the limit: a segment's final
		// size is published before its successor appears.
		next, _ := s.cat.Load().byID(r.seg.id + 1)
		v, err := r.seg.view(s.cfg.FS)
		if err != nil {
			return Record{}, r.coldErr(err)
		}
		limit := v.limit
		if r.durableOnly {
			limit = r.durableLimit(limit)
		}
		r.vseg, r.vb, r.vlimit, r.vdrop = r.seg, v.b, limit, r.seg.dropped.Load()
		if r.off < limit {
			return r.read(v.b, limit)
		}
		if next == nil || (r.durableOnly && limit < v.limit) {
			if !pushed && !r.durableOnly && s.cfg.WriteMode == segment.WritePwrite {
				pushed = true
				if err := s.flushVisible(r.seg); err != nil {
					return Record{}, err
				}
				continue
			}
			return Record{}, io.EOF
		}
		if r.ord != next.baseRecord {
			return Record{}, &types.CorruptError{Path: next.path, Reason: fmt.Sprintf("segment starts at record %d, but the previous one ends at %d", next.baseRecord, r.ord)}
		}
		r.seg, r.off = next, segment.HeaderSize
		r.pin(next)
	}
}

// read decodes the record at r.off of r.seg and moves past it.
func (r *Reader) read(b []byte, limit int64) (Record, error) {
	rec, err := segment.ReadRecord(b, r.seg.path, r.off, limit)
	if err != nil {
		return Record{}, fmt.Errorf("stream %d: %w", r.s.id, err)
	}
	out := Record{ID: types.MakeRecordID(r.seg.id, uint32(rec.Offset)), Ordinal: r.ord,
		Timestamp: rec.Timestamp, ExtID: rec.ExtID, Payload: rec.Payload}
	r.off, r.ord = rec.Next(), r.ord+1
	return out, nil
}

// coldErr turns "segment not in tier 0" into WouldBlock(Hydration) and
// remembers the segment for NextCtx.
func (r *Reader) coldErr(err error) error {
	var ec *errCold
	if !errors.As(err, &ec) {
		return err
	}
	r.cold = ec.g
	return r.s.m.blocked(&WouldBlock{Kind: Hydration, Cause: fmt.Errorf("stream %d: %w", r.s.id, err)})
}

// NextCtx is Next, hydrating segments that are not in tier 0 (through
// Config.Tiering) and waiting for them until ctx is done.
func (r *Reader) NextCtx(ctx context.Context) (Record, error) {
	repaired := false
	for {
		rec, err := r.Next()
		if !repaired && errors.Is(err, ErrCorrupt) && r.s.repairOnRead(ctx, r.seg, err) {
			// A damaged tier-0 copy was replaced from another tier.
			repaired = true
			r.current()
			continue
		}
		if KindOf(err) != Hydration {
			return rec, err
		}
		// A scan reads on: fetch the next segment while this one is read,
		// if it was cold already. One this hydration evicts to make room
		// is left alone: fetching it straight back undoes the eviction for
		// a reader that may stop in this segment.
		next, _ := r.s.cat.Load().byID(r.cold.id + 1)
		ahead := next != nil && !next.resident.Load()
		if err := r.s.hydrate(ctx, r.cold); err != nil {
			return Record{}, err
		}
		if ahead && !next.resident.Load() {
			r.s.readAhead(next)
		}
	}
}

// HydrateInBackground starts hydrating the segment the last
// WouldBlock(Hydration) of Next was about, without waiting, so that the
// caller can answer "retry later" and a later read finds the segment in
// tier 0 (a network client that asked not to wait). The stream owns the
// work, as a read-ahead's: Close cancels it. It does nothing when that
// segment is resident or a hydration of it is already running.
func (r *Reader) HydrateInBackground() {
	if g := r.cold; g != nil && !g.resident.Load() && len(g.hyd) == 0 {
		r.s.readAhead(g)
	}
}

// durableLimit clips a segment's visible limit to what is durable, or
// published (Stream.Publish).
func (r *Reader) durableLimit(visible int64) int64 {
	m := types.RecordID(max(r.s.durableMark.Load(), r.s.publishedMark.Load()))
	switch {
	case m.Segment() > r.seg.id:
		return visible
	case m.Segment() == r.seg.id:
		return min(visible, int64(m.Offset()))
	}
	return segment.HeaderSize
}

// Tailer follows a stream's durable records.
type Tailer struct {
	r Reader
}

// Tail returns a tailer at p that yields only durable records.
func (s *Stream) Tail(p Position) (*Tailer, error) {
	t := &Tailer{r: Reader{s: s, durableOnly: true}}
	if err := t.r.seek(p); err != nil {
		return nil, err
	}
	return t, nil
}

// Close releases the tailer's pin on its segment.
func (t *Tailer) Close() { t.r.Close() }

// TryNext returns the next durable record, or WouldBlock(Tail).
func (t *Tailer) TryNext() (Record, error) {
	rec, err := t.r.Next()
	if err == io.EOF {
		if ferr := t.r.s.Err(); ferr != nil {
			return Record{}, ferr
		}
		return Record{}, &WouldBlock{Kind: Tail}
	}
	return rec, err
}

// Next waits for the next durable record until ctx is done.
func (t *Tailer) Next(ctx context.Context) (Record, error) {
	s := t.r.s
	for {
		ch := s.durableN.wait()
		rec, err := t.TryNext()
		if KindOf(err) == Hydration {
			if err := s.hydrate(ctx, t.r.cold); err != nil {
				return Record{}, err
			}
			continue
		}
		if KindOf(err) != Tail {
			return rec, err
		}
		select {
		case <-ch:
		case <-s.closed:
			return Record{}, fmt.Errorf("stream %d: %w", s.id, ErrClosed)
		case <-ctx.Done():
			return Record{}, fmt.Errorf("stream %d: tail: %w", s.id, ctx.Err())
		}
	}
}
