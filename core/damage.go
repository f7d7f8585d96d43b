package core

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"sort"

	"github.com/aof2/aof2/core/manifest"
	"github.com/aof2/aof2/core/segment"
	"github.com/aof2/aof2/core/types"
	"github.com/aof2/aof2/core/vfs"
)

// Recovery of a stream's tail, and damage (docs/tiering.md#damage).
//
// The tail segment's bytes past its intact records are either a torn write
// (the interrupted last write of a power loss: dropped) or damage (durable
// bytes that changed: never dropped, the stream refuses appends until the
// loss is accepted). segment.ClassifyTail tells them apart with the durable
// mark's proof (core/mark.go).
//
// Ids are never handed out twice: unless the stream was closed cleanly,
// the tail is sealed at recovery and appends go on in the next segment, so
// an id a crash lost (a torn write, a record appended but never synced) is
// never given to another payload; and segment ids the mark reserved whose
// files are gone are taken by empty sealed placeholder segments.

// recoveredState is what recovery leaves for start and for the store.
type recoveredState struct {
	mark   *segment.Mark
	resume bool // the tail was closed cleanly and goes on taking records
	// unclean: with TailReplayed, the tail goes on after an unclean
	// shutdown (under the node WAL it is sealed once the WAL replayed).
	unclean bool
	damage  *DamageError // why appends are refused, if they are
	// suspects are segment files recovery could not read, decided once
	// the manifest is open (core/heal.go); lost are those no other tier
	// holds (core/lost.go).
	suspects, lost []suspect
}

// damage is what a damaged tail segment knows past its damage: the intact
// records after it, readable by id (not by ordinal: how many records the
// damage took is unknown until the loss is accepted).
type damage struct {
	err    *DamageError
	resume int64    // the first intact frame after the damage (0: none)
	after  []uint32 // offsets of the intact records from resume on
	end    int64    // where they end
	// lastExt is the ext_id of the last intact record before the damage
	// (0: none there): a caller's log replays from the entry after it
	// (RewindDamagedTail).
	lastExt uint64
	// lost: the whole segment is unreadable and no other tier holds it
	// (core/lost.go); accepted: an operator accepted its loss.
	lost, accepted bool
}

// openTail recovers the unsealed last segment info: a clean tail is
// reopened for appends (returned as a writer), an unclean or torn one is
// sealed (info.Footer is set), a damaged one is left untouched and returned
// as a read-only catalog entry. watermark is the newest seal's.
func (s *Stream) openTail(info *segment.Info, mark *segment.Mark, watermark uint64, rep *RecoveryReport) (*segment.Writer, *seg, error) {
	id := info.Name.SegmentID
	if info.Truncated {
		ts, err := segment.ScanTruncated(s.cfg.FS, info.Path)
		if err != nil {
			return nil, nil, fmt.Errorf("stream %d: %w", s.id, err)
		}
		rep.TailSegment, rep.TailRecords = id, ts.Count
		g, err := s.damagedTail(*info, ts, segment.TailVerdict{Kind: segment.TailDamaged, At: ts.End,
			Reason: fmt.Sprintf("the file is %d bytes, shorter than any segment capacity: truncated (%s)", info.Capacity, ts.Stop)})
		return nil, g, err
	}
	proof := segment.TailProof{Durable: segment.HeaderSize}
	if mark != nil && mark.SegmentID == id {
		proof = segment.TailProof{Durable: int64(mark.DurableBytes), Clean: mark.Clean()}
	}
	w, ts, v, err := segment.OpenTail(s.cfg.FS, *info, s.cfg.WriteMode, proof)
	if err != nil {
		return nil, nil, fmt.Errorf("stream %d: %w", s.id, err)
	}
	rep.TailSegment, rep.TailRecords = id, ts.Count
	if v.Kind == segment.TailDamaged {
		g, err := s.damagedTail(*info, ts, v)
		return nil, g, err
	}
	rep.DroppedBytes = ts.Dropped()
	if mark != nil && mark.Clean() && mark.SegmentID == id && mark.DurableBytes == uint64(ts.End) && v.Kind == segment.TailClean {
		s.recovered.resume = true
		return w, nil, nil
	}
	if s.cfg.TailReplayed {
		// Config.TailReplayed: the caller's log gives the lost records
		// back, at the offsets they had.
		s.recovered.resume, s.recovered.unclean = true, true
		s.log.Info("unclean shutdown: the tail segment goes on after its intact records; the caller's log replays the rest",
			"segment_id", uint64(id), "records", ts.Count, "dropped_bytes", ts.Dropped())
		return w, nil, nil
	}
	// Not closed cleanly: ids past the intact records may have been handed
	// out (a torn write, appends never synced). Seal here; appends go on in
	// the next segment.
	f, err := w.Seal(segment.SealParams{SealedAt: s.cfg.Now().UnixNano(), ExtID: ts.LastExt, CoordinatorWatermark: watermark})
	if cerr := w.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, nil, fmt.Errorf("stream %d: seal the tail after an unclean shutdown: %w", s.id, err)
	}
	if err := s.writePointer(segment.Pointer{SegmentID: id, DurableBytes: f.DurableBytes, CoordinatorWatermark: f.CoordinatorWatermark}); err != nil {
		return nil, nil, err
	}
	info.Footer, info.FooterErr = &f, nil
	rep.TailSealed = true
	if v.Kind == segment.TailTorn {
		s.log.Warn("recovered a torn last write: its bytes were dropped, the tail sealed, appends go on in the next segment",
			"segment_id", uint64(id), "dropped_bytes", ts.Dropped(), "offset", ts.End, "reason", v.Reason, "records", ts.Count)
	} else {
		s.log.Info("unclean shutdown: the tail segment was sealed, appends go on in the next segment",
			"segment_id", uint64(id), "records", ts.Count)
	}
	return nil, nil, nil
}

// damagedTail makes the catalog entry of a damaged tail: readable up to
// the damage, and by id after it.
func (s *Stream) damagedTail(info segment.Info, ts segment.TailScan, v segment.TailVerdict) (*seg, error) {
	d := &damage{err: s.damageError(info.Name.SegmentID, v.At, v.Reason), resume: v.Resume}
	if ts.Count > 0 {
		d.lastExt = ts.LastExt
	}
	if v.Resume > 0 {
		r, err := segment.MapReadOnly(s.cfg.FS, info.Path)
		if err != nil {
			return nil, fmt.Errorf("stream %d: %w", s.id, err)
		}
		d.after, d.end = segment.Intact(r.Bytes(), v.Resume, segment.DataEnd(info.Capacity))
		_ = r.Close()
	}
	g := &seg{id: info.Header.SegmentID, path: info.Path, baseRecord: info.Header.BaseRecord, baseOffset: info.Header.BaseOffset,
		createdAt: info.Header.CreatedAt, capacity: info.Capacity, hyd: make(chan struct{}, 1), damage: d}
	g.resident.Store(true)
	g.visible.Store(v.At)
	g.count.Store(ts.Count)
	s.noteDamage(d.err, len(d.after))
	return g, nil
}

// remainingDamageLocked is the damage that still refuses appends once
// one damage was settled (an accepted loss, a rewind): another segment's
// that is not accepted, or a segment the durable mark proves whose file is
// gone; nil when none. s.mu is held.
func (s *Stream) remainingDamageLocked() error {
	for _, g := range s.cat.Load().segs {
		if g.damage != nil && !g.damage.accepted {
			return g.damage.err
		}
	}
	if d := s.markDamageLocked(); d != nil {
		return d
	}
	return nil
}

// damageError is the error of damage found at off in segment seg.
func (s *Stream) damageError(seg SegmentID, off int64, reason string) *DamageError {
	return &DamageError{Stream: s.id, Segment: seg, Offset: off, Reason: reason, Replicated: s.cfg.TailReplayed}
}

// noteDamage refuses appends and reports the damage loudly.
func (s *Stream) noteDamage(err *DamageError, after int) {
	s.recovered.damage = err
	s.m.damage.Inc()
	s.m.damaged.Set(1)
	s.log.Error("stream damaged: durable records failed their checks; nothing was dropped, appends are refused until the loss is accepted",
		"segment_id", uint64(err.Segment), "offset", err.Offset, "reason", err.Reason, "intact_records_after", after)
}

// pastDamage finds id among the intact records after the damage of g:
// its index among them. An id in the damaged range is ErrCorrupt.
func (s *Stream) pastDamage(g *seg, id RecordID) (int, error) {
	d, off := g.damage, id.Offset()
	i := sort.Search(len(d.after), func(i int) bool { return d.after[i] >= off })
	if i < len(d.after) && d.after[i] == off {
		return i, nil
	}
	switch {
	case d.resume == 0 || int64(off) < d.resume:
		return 0, fmt.Errorf("stream %d: record %s lies in the damaged range: %w (%w)", s.id, id, ErrCorrupt, d.err)
	case int64(off) >= d.end:
		return 0, fmt.Errorf("stream %d: record %s: %w", s.id, id, ErrNotFound)
	default:
		return 0, fmt.Errorf("stream %d: record %s is not an intact record past the damage: %w", s.id, id, ErrInvalidRecordID)
	}
}

// readAfterDamage reads the record with id past the damage of g. Its
// ordinal counts the records before the damage and the intact ones after
// it, as an accepted loss will.
func (s *Stream) readAfterDamage(g *seg, id RecordID) (Record, error) {
	k, err := s.pastDamage(g, id)
	if err != nil {
		return Record{}, err
	}
	s.readMu.RLock()
	defer s.readMu.RUnlock()
	if s.readersClosed {
		return Record{}, fmt.Errorf("stream %d: %w", s.id, ErrClosed)
	}
	v, err := g.view(s.cfg.FS)
	if err != nil {
		return Record{}, fmt.Errorf("stream %d: %w", s.id, err)
	}
	rec, err := segment.ReadRecord(v.b, g.path, int64(id.Offset()), g.damage.end)
	if err != nil {
		return Record{}, fmt.Errorf("stream %d: %w", s.id, err)
	}
	return Record{ID: id, Ordinal: g.baseRecord + g.count.Load() + uint64(k), Timestamp: rec.Timestamp, ExtID: rec.ExtID,
		Payload: append([]byte(nil), rec.Payload...)}, nil
}

// settleIDs makes sure no segment id the durable mark reserved is used
// again: reserved ids past the newest segment become empty sealed
// placeholders, so the next segment takes a fresh id. A segment the mark
// proves durable whose file is gone is damage. Runs after the catalog is
// complete (cold and lost segments included). With damage the stream
// refuses appends, and the placeholders wait until every loss is accepted
// (AcceptLoss).
func (s *Stream) settleIDs(rep *RecoveryReport) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.recovered.damage == nil {
		if d := s.markDamageLocked(); d != nil {
			s.noteDamage(d, 0)
		}
	}
	if s.recovered.damage != nil {
		rep.Damage = s.recovered.damage
		s.mu.refused = s.recovered.damage
		return nil
	}
	if s.cfg.nodeWAL {
		// The node WAL may replay records into the reserved ids; what it
		// leaves empty gets its placeholders then (settleAfterReplay).
		return nil
	}
	ph, err := s.reserveLocked()
	rep.Placeholders = ph
	return err
}

// markDamageLocked is the damage the recovery's durable mark proves: a
// segment newer than every one in the catalog, with records, whose file is
// gone. s.mu is held.
func (s *Stream) markDamageLocked() *DamageError {
	mark := s.recovered.mark
	if mark == nil {
		return nil
	}
	var newest types.SegmentID
	if last := s.cat.Load().last(); last != nil {
		newest = last.id
	}
	if mark.SegmentID <= newest || mark.DurableBytes <= segment.HeaderSize {
		return nil
	}
	return s.damageError(mark.SegmentID, segment.HeaderSize,
		fmt.Sprintf("the segment file is gone, but the durable mark proves %d records (%d bytes) in it", mark.Records, mark.DurableBytes))
}

// reserveLocked appends placeholders for the segment ids the recovery's
// durable mark reserved past the newest segment (unless one is active)
// and returns them. s.mu is held.
//
// With Config.TailReplayed there are none: the caller's log replays the
// records of a lost segment into the same id, so an id is only ever given
// to the same records again.
func (s *Stream) reserveLocked() ([]SegmentID, error) {
	mark := s.recovered.mark
	if mark == nil || s.mu.active != nil || (s.cfg.TailReplayed && !s.cfg.nodeWAL) {
		return nil, nil
	}
	var newest types.SegmentID
	if last := s.cat.Load().last(); last != nil {
		newest = last.id
	}
	var out []SegmentID
	for id := newest + 1; id <= mark.Reserved; id++ {
		if err := s.placeholderLocked(id); err != nil {
			return out, err
		}
		out = append(out, id)
	}
	if len(out) > 0 {
		s.installLocked(s.cat.Load(), nil)
	}
	return out, nil
}

// placeholderLocked appends an empty sealed segment with id to the
// catalog: an id the durable mark reserved whose file is gone. s.mu is
// held; runs during recovery, before the stream is used.
func (s *Stream) placeholderLocked(id SegmentID) error {
	if s.mu.next != nil && s.mu.nextID == id {
		_ = s.mu.next.Discard() // prepared before recovery knew the id was taken
		s.mu.next = nil
	}
	cat := s.cat.Load()
	h := segment.Header{StreamID: s.id, SegmentID: id, CreatedAt: s.cfg.Now().UnixNano()}
	if last := cat.last(); last != nil {
		h.BaseOffset, h.BaseRecord = last.endPos(), last.baseRecord+last.count.Load()
	}
	p, err := segment.Prepare(s.cfg.FS, filepath.Join(s.segDir, segment.PrepName(id)), segment.MinCapacity, s.cfg.Preparation, s.cfg.WriteMode)
	if err != nil {
		return fmt.Errorf("stream %d: placeholder for segment %d: %w", s.id, id, err)
	}
	w, err := p.Activate(h)
	if err != nil {
		_ = p.Discard()
		return fmt.Errorf("stream %d: placeholder for segment %d: %w", s.id, id, err)
	}
	f, err := w.Seal(segment.SealParams{SealedAt: h.CreatedAt, CoordinatorWatermark: s.mu.watermark})
	if cerr := w.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = s.cfg.FS.SyncDir(s.segDir)
	}
	if err == nil {
		err = s.writePointer(segment.Pointer{SegmentID: id, DurableBytes: f.DurableBytes, CoordinatorWatermark: f.CoordinatorWatermark})
	}
	if err != nil {
		return fmt.Errorf("stream %d: placeholder for segment %d: %w", s.id, id, err)
	}
	path := filepath.Join(s.segDir, segment.FileName(id, h.BaseOffset, h.CreatedAt))
	info, err := segment.Inspect(s.cfg.FS, path, segment.Name{SegmentID: id, BaseOffset: h.BaseOffset, CreatedAt: h.CreatedAt}, s.id)
	if err != nil {
		return fmt.Errorf("stream %d: placeholder for segment %d: %w", s.id, id, err)
	}
	if err := s.journal.SegmentOpened(h); err != nil {
		return err
	}
	if err := s.journal.SegmentSealed(context.Background(), h, f); err != nil {
		return err
	}
	s.setCatalogLocked(cat.with(newSealedSeg(info)))
	s.mu.written, s.mu.records = h.BaseOffset, h.BaseRecord
	s.m.segments.Inc()
	s.m.bytes.Add(float64(info.Capacity))
	s.log.Warn("a reserved segment's file is gone (a crash before it was durable): an empty placeholder takes its id so it is never reused",
		"segment_id", uint64(id))
	return nil
}

// LossReport says what AcceptLoss did.
type LossReport struct {
	Stream  StreamID  `json:"stream_id"`
	Segment SegmentID `json:"segment_id"`
	// Filled are the damaged ranges ([from, to) offsets) replaced by filler
	// frames; their original bytes are in Quarantine files beside the
	// segment.
	Filled     [][2]int64 `json:"filled,omitempty"`
	Quarantine []string   `json:"quarantine,omitempty"`
	// Records is how many intact records the segment keeps; DroppedBytes
	// how many bytes past the last of them no longer count.
	Records      uint64 `json:"records"`
	DroppedBytes int64  `json:"dropped_bytes"`
	// Placeholder: the segment's file was gone; an empty sealed segment
	// takes its id.
	Placeholder bool `json:"placeholder,omitempty"`
	// Lost: the whole segment was unreadable with no other copy; a lost
	// stub keeps its bounds (core/lost.go), the file is in Quarantine.
	Lost bool `json:"lost,omitempty"`
	// NodeWAL is set when the loss accepted is what the node WAL held
	// (Config.NodeWALAcceptLoss): why it could not be replayed. Segment is
	// then the tail sealed so that no id the WAL handed out is given
	// again, and Quarantine the directory holding the WAL's files.
	NodeWAL string `json:"node_wal,omitempty"`
	// FromNodeWAL counts the records of Records written back from the
	// node WAL's copy (it held them past the damage); NodeWALKept the
	// WAL's entries for the stream that could not be placed (the WAL keeps
	// them, and its checkpoints stop, until its own loss is accepted).
	FromNodeWAL uint64 `json:"from_node_wal,omitempty"`
	NodeWALKept int    `json:"node_wal_kept,omitempty"`
	// Healed: no operator decided; the node WAL's copy replaced every
	// damaged record when the store opened, and nothing was lost.
	Healed bool `json:"healed,omitempty"`
}

// QuarantineSuffix names the files holding the original bytes of ranges an
// accepted loss replaced: <segment file>.damaged-<offset>.
const QuarantineSuffix = ".damaged-"

// AcceptLoss is the operator's decision that the damage recovery found in
// the stream is lost (aof2-host repair --accept-loss): no other copy will
// repair it. The damaged segment keeps every intact record, before and
// after the damage, at its id; each damaged range is replaced by a filler
// frame (its bytes kept in a quarantine file beside the segment first),
// the segment is sealed, the decision is recorded in the manifest, and
// appends go on in the next segment. A damaged segment whose file is gone
// is replaced by an empty sealed placeholder. Ordinals after the damage in
// that segment count the records that remain.
func (s *Stream) AcceptLoss(ctx context.Context) (LossReport, error) { return s.acceptLoss(ctx, false) }

// acceptLoss is AcceptLoss; healed says the node WAL's copy replaced
// every damaged record (healFromWAL), which the report records.
func (s *Stream) acceptLoss(ctx context.Context, healed bool) (LossReport, error) {
	// Readers are kept off while the damaged entry is replaced.
	s.readMu.Lock()
	defer s.readMu.Unlock()
	s.mu.Lock()
	defer s.mu.Unlock()
	var dmg *DamageError
	if !errors.As(s.mu.refused, &dmg) {
		return LossReport{}, fmt.Errorf("stream %d: accept loss: %w", s.id, ErrNotDamaged)
	}
	rep := LossReport{Stream: s.id, Segment: dmg.Segment, Healed: healed}
	cat := s.cat.Load()
	g, i := cat.byID(dmg.Segment)
	switch {
	case g == nil:
		if err := s.placeholderLocked(dmg.Segment); err != nil {
			return rep, err
		}
		rep.Placeholder = true
	case g.damage != nil && g.damage.lost:
		if err := s.acceptLostLocked(g, &rep); err != nil {
			return rep, err
		}
	case g.damage == nil || i != len(cat.segs)-1:
		return rep, fmt.Errorf("stream %d: accept loss: segment %d is not the damaged tail", s.id, dmg.Segment)
	default:
		if err := s.fillAndSealLocked(ctx, g, &rep); err != nil {
			return rep, err
		}
	}
	rep.NodeWALKept = len(s.mu.walKept)
	blob, err := json.Marshal(rep)
	if err != nil {
		return rep, err
	}
	if tl := s.TierLog(); tl != nil {
		if err := tl.Record(ctx, manifest.CustomEvent{Header: manifest.Header{SegmentID: dmg.Segment}, SchemaID: manifest.SchemaLossAccepted, Blob: blob}); err != nil {
			return rep, fmt.Errorf("stream %d: accept loss: record it: %w", s.id, err)
		}
	}
	if s.mu.active == nil {
		s.installLocked(s.cat.Load(), nil)
	}
	s.mu.refused = s.remainingDamageLocked()
	if s.mu.refused == nil {
		// Every loss is accepted: the ids the mark reserved are taken
		// before the next segment is opened.
		if _, err := s.reserveLocked(); err != nil {
			return rep, err
		}
		s.m.damaged.Set(0)
	}
	if rep.NodeWALKept == 0 && s.wal != nil {
		s.mu.walKept = nil
		s.wal.release(s)
	} else if rep.NodeWALKept > 0 && s.mu.refused == nil {
		s.log.Error("the node WAL holds records of the stream that could not be placed after its accepted loss; the WAL keeps them and its checkpoints stay stopped until its own loss is accepted (offline: aof2-host repair -node-wal -accept-loss)",
			"entries", rep.NodeWALKept, "first", s.mu.walKept[0].id)
	}
	s.dropStaleNextLocked()
	s.kickPrepLocked()
	what := "loss accepted by an operator: appends go on in the next segment"
	if healed {
		what = "damage healed from the node WAL's copy: appends go on in the next segment"
	}
	s.log.Warn(what, "segment_id", uint64(dmg.Segment),
		"filled", len(rep.Filled), "records_kept", rep.Records, "dropped_bytes", rep.DroppedBytes, "placeholder", rep.Placeholder, "lost", rep.Lost,
		"from_node_wal", rep.FromNodeWAL)
	s.stateN.broadcast()
	return rep, nil
}

// placeWALKeptLocked writes back into the filled tail g the records the
// node WAL kept for it (walKept): over the end of a filled range they
// cover, and after its intact records, before it is sealed; s.mu is held.
func (s *Stream) placeWALKeptLocked(g *seg, ts segment.TailScan, filled [][2]int64, quarantine func(int64, []byte) error, rep *LossReport) (segment.TailScan, [][2]int64, error) {
	kept := s.mu.walKept
	for len(kept) > 0 && kept[0].id.Segment() < g.id {
		kept = kept[1:] // in a sealed segment, synced when it was sealed
	}
	var recs []segment.Placed
	for _, e := range kept {
		if e.id.Segment() != g.id {
			break
		}
		recs = append(recs, segment.Placed{Offset: int64(e.id.Offset()), Payload: e.payload, TS: e.ts, Ext: e.ext})
	}
	before := ts.Count
	ts, filled, n, err := segment.PlaceRecords(s.cfg.FS, g.path, ts, filled, recs, quarantine)
	if err != nil {
		return ts, filled, fmt.Errorf("place the node WAL's records: %w", err)
	}
	if s.mu.walKept = kept[n:]; len(s.mu.walKept) == 0 {
		s.mu.walKept = nil // the payloads are in the segment now
	}
	rep.FromNodeWAL = ts.Count - before
	return ts, filled, nil
}

// quarantiner saves bytes of g's file at an offset, durably, in a file
// beside it (<segment file>.damaged-<offset>), and hands kept the file's
// name.
func (s *Stream) quarantiner(g *seg, kept func(name string)) func(off int64, b []byte) error {
	return func(off int64, b []byte) error {
		q := fmt.Sprintf("%s%s%d", g.path, QuarantineSuffix, off)
		if err := vfs.WriteFileAtomic(s.cfg.FS, q, b); err != nil {
			return fmt.Errorf("quarantine [%d,%d) of %s: %w", off, off+int64(len(b)), g.path, err)
		}
		kept(filepath.Base(q))
		return nil
	}
}

// fillAndSealLocked fills the damage of the tail g and seals it; s.readMu
// and s.mu are held.
func (s *Stream) fillAndSealLocked(ctx context.Context, g *seg, rep *LossReport) error {
	quarantine := s.quarantiner(g, func(name string) { rep.Quarantine = append(rep.Quarantine, name) })
	// Readers are kept off (s.readMu): drop the mapping before the file
	// changes; a failure below leaves g to map it again.
	if err := g.dropMapping(); err != nil {
		return fmt.Errorf("stream %d: accept loss: %w", s.id, err)
	}
	cut, err := segment.Untruncate(s.cfg.FS, g.path, g.damage.err.Offset, quarantine)
	if err != nil {
		return fmt.Errorf("stream %d: accept loss: %w", s.id, err)
	}
	ts, filled, err := segment.FillDamage(s.cfg.FS, g.path, quarantine)
	if err != nil {
		return fmt.Errorf("stream %d: accept loss: %w", s.id, err)
	}
	if ts, filled, err = s.placeWALKeptLocked(g, ts, filled, quarantine, rep); err != nil {
		return fmt.Errorf("stream %d: accept loss: %w", s.id, err)
	}
	rep.Filled, rep.Records, rep.DroppedBytes = filled, ts.Count, cut+ts.Dropped()
	h := segment.Header{StreamID: s.id, SegmentID: g.id, BaseOffset: g.baseOffset, BaseRecord: g.baseRecord, CreatedAt: g.createdAt}
	f, err := segment.SealScanned(s.cfg.FS, g.path, h, ts, segment.SealParams{SealedAt: s.sealedAt(ts.LastTS, g.createdAt), ExtID: ts.LastExt, CoordinatorWatermark: s.mu.watermark},
		!rep.Healed)
	if err == nil {
		err = s.writePointer(segment.Pointer{SegmentID: g.id, DurableBytes: f.DurableBytes, CoordinatorWatermark: f.CoordinatorWatermark})
	}
	if err == nil {
		err = s.journal.SegmentSealed(ctx, h, f)
	}
	if err != nil {
		return fmt.Errorf("stream %d: accept loss: seal segment %d: %w", s.id, g.id, err)
	}
	name, _ := segment.ParseFileName(filepath.Base(g.path))
	info, err := segment.Inspect(s.cfg.FS, g.path, name, s.id)
	if err != nil {
		return fmt.Errorf("stream %d: accept loss: %w", s.id, err)
	}
	segs := slices.Clone(s.cat.Load().segs)
	segs[len(segs)-1] = newSealedSeg(info)
	s.setCatalogLocked(&catalog{segs: segs})
	return nil
}
