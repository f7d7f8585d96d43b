package core

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"time"

	"github.com/aof2/aof2/core/segment"
	"github.com/aof2/aof2/core/types"
	"github.com/aof2/aof2/core/vfs"
)

// ErrWALContradiction: the node WAL and a stream's segments disagree about
// a record (docs/adr-node-wal.md#recovery). The stream refuses appends;
// nothing is dropped or renumbered.
var ErrWALContradiction = fmt.Errorf("%w: the node WAL and the stream's segments disagree", ErrDamaged)

// walReplayTimeout bounds the waits of the replay (a segment file that
// cannot be prepared, a seal that cannot finish): the stream concerned
// then refuses appends instead of holding the open forever.
const walReplayTimeout = time.Minute

// openWAL opens the node WAL once every stream has recovered, replays
// into the streams what their segments lost, and starts the committer.
// The WAL's own recovery failing fails the open: without it acknowledged
// records may be missing from every stream.
func (st *Store) openWAL() error {
	walDir, cpPath := walPaths(st.dir)
	fsys := st.cfg.FS
	if err := vfs.MkdirAllSync(fsys, filepath.Join(walDir, "segments")); err != nil {
		return fmt.Errorf("node WAL: %w", err)
	}
	ws := newStream(walStreamID, walDir, &st.walCfg, newMetrics(nil))
	w := &nodeWAL{st: st, s: ws, cpPath: cpPath, log: st.walCfg.Logger, kick: make(chan struct{}, 1), cpKick: make(chan struct{}, 1), m: newWALMetrics()}
	rep, err := ws.recover()
	if err == nil && len(ws.recovered.suspects) > 0 {
		err = ws.recovered.suspects[0].err
	}
	if err == nil {
		_, err = ws.openManifest(context.Background())
	}
	if err == nil {
		err = ws.settleIDs(&rep)
	}
	if err == nil {
		err = ws.start()
	}
	if err != nil {
		_ = ws.close()
		err = fmt.Errorf("node WAL: recover %s: %w", walDir, err)
		if st.acceptingWALLoss() {
			return st.acceptWALLoss(err.Error(), nil, nil)
		}
		return err
	}
	setReplaying(st.openStreams(), true)
	var damage error
	if rep.Damage != nil {
		damage = rep.Damage
	}
	if err := st.replayWAL(w); err != nil && damage == nil {
		damage = err
	}
	var pastDamage map[StreamID]uint64
	if damage != nil {
		if rep.Damage != nil && st.acceptingWALLoss() {
			pastDamage = st.replayPastWALDamage(w)
		}
		// What the WAL holds past the damage is unknown: no stream may take
		// an id the WAL might have given.
		err := walDamageError(damage)
		for _, s := range st.openStreams() {
			w.refuse(s, err)
		}
		w.block(err)
	}
	// A stream held for its own damage is not the WAL's loss: its accepted
	// loss places the entries the WAL keeps for it.
	w.mu.Lock()
	blocked := w.mu.blocked
	w.mu.Unlock()
	if blocked != nil && st.acceptingWALLoss() {
		if err := ws.close(); err != nil {
			return fmt.Errorf("node WAL: close before accepting its loss: %w", err)
		}
		cause := blocked.Error()
		if damage != nil {
			cause = walDamageText(damage)
		}
		return st.acceptWALLoss(cause, w.refused, pastDamage)
	}
	ctx, cancel := context.WithTimeout(context.Background(), walReplayTimeout)
	defer cancel()
	for _, s := range st.openStreams() {
		if err := s.healFromWAL(ctx, w); err != nil {
			s.log.Error("could not heal the stream from the node WAL; it refuses appends until its loss is accepted", "error", err)
		}
	}
	for _, s := range st.openStreams() {
		if _, err := s.settleAfterReplay(ctx, false); err != nil {
			w.block(err)
			s.RefuseAppendsWith(err)
		}
	}
	if err := w.checkpoint(w.last); err != nil {
		w.block(err)
	}
	if err := ws.Err(); err != nil {
		_ = ws.close()
		return fmt.Errorf("node WAL: %w", err)
	}
	w.m.register(st.cfg.Registerer)
	st.mu.Lock()
	st.wal = w // streams created from here on append through it
	for _, s := range st.mu.streams {
		s.mu.Lock()
		s.wal, s.mu.replaying = w, false
		s.mu.Unlock()
	}
	st.mu.Unlock()
	w.start()
	return nil
}

// walDamageError is what every stream refuses appends with while the node
// WAL is damaged. The damage is named in words, not wrapped: a wrapped
// DamageError would name the WAL's internal stream as the damaged one, and
// its advice (repair that stream) does not apply.
func walDamageError(damage error) error {
	return fmt.Errorf("%w: %s; every stream refuses appends until an operator accepts the loss of what the WAL holds past the damage "+
		"(offline: aof2-host repair -node-wal -accept-loss, docs/adr-node-wal.md)", ErrDamaged, walDamageText(damage))
}

// walDamageText describes damage of the node WAL.
func walDamageText(damage error) string {
	var d *DamageError
	if errors.As(damage, &d) && d.Stream == walStreamID {
		return fmt.Sprintf("node WAL: segment %d damaged at offset %d: %s", d.Segment, d.Offset, d.Reason)
	}
	return "node WAL: " + damage.Error()
}

func setReplaying(streams []*Stream, on bool) {
	for _, s := range streams {
		s.mu.Lock()
		s.mu.replaying = on
		s.mu.Unlock()
	}
}

// replayWAL gives every stream the WAL's records after the checkpoint. A
// stream that cannot take them refuses appends (the WAL then keeps
// everything); an error is damage of the WAL itself.
func (st *Store) replayWAL(w *nodeWAL) error {
	ctx, cancel := context.WithTimeout(context.Background(), walReplayTimeout)
	defer cancel()
	pos, skip := AtStart(), RecordID(0)
	b, err := vfs.ReadFile(st.cfg.FS, w.cpPath)
	switch {
	case err == nil:
		cp, err := decodeWALCheckpoint(b)
		if err != nil {
			// Replaying from the start is always right, only slower: the
			// records the checkpoint covered are checked and skipped.
			w.log.Warn("node WAL checkpoint unreadable; replaying the whole WAL", "error", err)
		} else if first := w.s.SegmentList(); len(first) > 0 && first[0].ID <= cp.Segment() {
			pos, skip = AtID(cp), cp
		}
	case !vfs.IsNotExist(err):
		return err
	}
	r, err := w.s.NewReader(pos)
	if err != nil {
		return err
	}
	defer r.Close()
	failed := map[StreamID]bool{}
	n := 0
	for {
		rec, err := r.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
		w.last = rec.ID
		if rec.ID <= skip {
			continue
		}
		e, err := decodeWALEntry(rec.Payload)
		if err != nil {
			return fmt.Errorf("WAL record %s: %w", rec.ID, err)
		}
		if failed[e.stream] {
			continue
		}
		s, err := st.stream(e.stream, false)
		if err == nil && s.keepForLoss(e) {
			w.hold(s, fmt.Errorf("stream %d is damaged: the node WAL keeps its entries from %s for the accepted loss, which places them "+
				"(aof2-host repair -stream %d -accept-loss)", e.stream, e.id, e.stream))
			continue
		}
		if err == nil {
			err = s.replayWAL(ctx, e, false)
		}
		if err != nil {
			failed[e.stream] = true
			err = fmt.Errorf("stream %d: replay of node WAL record %s: %w; the stream refuses appends and the WAL keeps every entry "+
				"until an operator accepts the loss of what it holds for the stream (offline: aof2-host repair -node-wal -accept-loss, docs/adr-node-wal.md)",
				e.stream, rec.ID, err)
			w.log.Error("node WAL replay stopped for a stream; it refuses appends", "stream_id", uint64(e.stream), "error", err)
			w.block(err)
			if s != nil {
				w.refuse(s, err)
			}
			continue
		}
		n++
	}
	if n > 0 {
		w.m.replayed.Add(float64(n))
		w.log.Info("node WAL replayed", "records", n)
	}
	return nil
}

// replayPastWALDamage gives the streams, once an operator accepts the
// WAL's loss, the intact entries the WAL's tail holds after its damage
// that continue a stream exactly (strict replayWAL): a stream whose next
// record the damage took, or that the replay refused, gets none of its
// entries from there on, since a hole cannot be left in a segment. It
// returns how many records each stream got that its segments did not
// hold.
func (st *Store) replayPastWALDamage(w *nodeWAL) map[StreamID]uint64 {
	ctx, cancel := context.WithTimeout(context.Background(), walReplayTimeout)
	defer cancel()
	g := w.s.cat.Load().last()
	if g == nil || g.damage == nil || g.damage.lost {
		return nil
	}
	got, stopped := map[StreamID]uint64{}, map[StreamID]bool{}
	for _, off := range g.damage.after {
		rec, err := w.s.readAfterDamage(g, types.MakeRecordID(g.id, off))
		if err != nil {
			w.log.Warn("node WAL: an entry past the damage could not be read; the entries after it are not replayed", "id", types.MakeRecordID(g.id, off).String(), "error", err)
			break
		}
		e, err := decodeWALEntry(rec.Payload)
		if err != nil {
			w.log.Warn("node WAL: an entry past the damage could not be decoded; the entries after it are not replayed", "id", rec.ID.String(), "error", err)
			break
		}
		if stopped[e.stream] {
			continue
		}
		s, err := st.stream(e.stream, false)
		var before uint64
		if err == nil {
			before = s.Info().Records
			err = s.replayWAL(ctx, e, true)
		}
		if err != nil {
			stopped[e.stream] = true
			w.log.Info("node WAL: a stream's entries past the damage do not continue it; they are not replayed", "stream_id", uint64(e.stream), "first", e.id.String(), "error", err)
			continue
		}
		if s.Info().Records > before {
			got[e.stream]++ // appended, not one its segment held already
		}
	}
	return got
}

// keepForLoss keeps e for the accepted loss of the stream's own damage
// when the stream refuses appends for it: the replay cannot put e in a
// damaged tail, and AcceptLoss places it after the damage is filled.
func (s *Stream) keepForLoss(e walEntry) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	var d *DamageError
	if !errors.As(s.mu.refused, &d) || d.Stream != s.id {
		return false
	}
	e.payload = bytes.Clone(e.payload) // the reader's buffer is reused
	s.mu.walKept = append(s.mu.walKept, e)
	return true
}

// replayWAL puts e into the stream at the id the WAL says it had: a record
// already there is checked against it; the next one is appended, after
// sealing the active segment when the WAL says the record opened the next.
// strict (entries past the WAL's damage) takes only the record at the
// stream's next id: the record that opens the next segment may follow
// records the damage took at the end of this one.
func (s *Stream) replayWAL(ctx context.Context, e walEntry, strict bool) error {
	s.mu.Lock()
	var next RecordID
	var cur SegmentID
	fits, empty := false, false
	a := s.mu.active
	if a != nil {
		cur, next = a.id, types.MakeRecordID(a.id, uint32(a.w.End()))
		// The WAL's ids say where its segments ended, not the target
		// size: an idempotent batch goes past it in one segment, and the
		// target may have been lowered since (needsRolloverLocked).
		fits = a.w.Fits(len(e.payload))
		empty = a.w.Count() == 0
	} else {
		cur = s.nextIDLocked() - 1
		next = types.MakeRecordID(cur+1, segment.HeaderSize)
	}
	s.mu.Unlock()
	contradiction := func(why string) error {
		return fmt.Errorf("%w: record %s: %s", ErrWALContradiction, e.id, why)
	}
	switch {
	case e.id < next:
		return s.replayCheck(ctx, e)
	case e.id == next && (a == nil || fits):
	case !strict && a != nil && !empty && e.id.Segment() == cur+1 && e.id.Offset() == segment.HeaderSize:
		if err := s.Seal(ctx); err != nil {
			return err
		}
	default:
		why := fmt.Sprintf("the stream's next record is %s", next)
		if a != nil {
			why += fmt.Sprintf(" in a segment of %d bytes that cannot take %d more", a.capacity, len(e.payload))
		}
		return contradiction(why)
	}
	if e.id.Offset() == segment.HeaderSize {
		// The record opens a segment: one at least as large as the one it
		// went into, so that every record the WAL put there fits again.
		s.mu.Lock()
		s.mu.need = max(s.mu.need, int(segment.MaxRecordSize(e.capacity)))
		s.mu.Unlock()
	}
	// The record fitted the segment it was written into, whatever the
	// configured segment size is now (nextCapacityLocked honours the
	// capacity asked for above).
	max := max(s.cfg.maxRecordSize(), segment.MaxRecordSize(e.capacity))
	var id RecordID
	err := s.retryBlocked(ctx, func() (err error) {
		id, err = s.appendMax(e.payload, AppendOptions{Timestamp: e.ts, ExtID: e.ext}, max)
		return err
	})
	if err != nil {
		return err
	}
	if id != e.id {
		return contradiction(fmt.Sprintf("the stream put it at %s", id))
	}
	return nil
}

// replayCheck checks a record the stream already holds against the WAL's
// copy. A mismatch is damage of one of them; which one is not guessed.
func (s *Stream) replayCheck(ctx context.Context, e walEntry) error {
	cat := s.cat.Load()
	if len(cat.segs) > 0 && e.id.Segment() < cat.segs[0].id {
		return nil // dropped by retention, which takes only sealed (synced) segments
	}
	g, _ := cat.byID(e.id.Segment())
	if g == nil || int64(e.id.Offset()) >= g.visible.Load() {
		return fmt.Errorf("%w: record %s: the stream has no record there", ErrWALContradiction, e.id)
	}
	if !g.resident.Load() {
		return nil // sealed and in tier 1/2, whose checksums cover it
	}
	rec, err := s.ReadAt(ctx, e.id)
	if err != nil {
		return fmt.Errorf("%w: record %s: %w", ErrWALContradiction, e.id, err)
	}
	if !bytes.Equal(rec.Payload, e.payload) || rec.Timestamp != e.ts || rec.ExtID != e.ext {
		return fmt.Errorf("%w: record %s differs from the WAL's copy", ErrWALContradiction, e.id)
	}
	return nil
}

// settleAfterReplay makes sure no id handed out before an unclean shutdown
// and lost with it goes to another payload: the tail the WAL replayed into
// is sealed, and the segment ids the durable mark reserved get
// placeholders, as recovery does without the WAL (docs/tiering.md#recovery).
// force seals the tail whatever the shutdown was (an accepted loss of the
// WAL: ids it handed out may be lost). It returns the segment it sealed,
// or 0.
func (s *Stream) settleAfterReplay(ctx context.Context, force bool) (SegmentID, error) {
	s.mu.Lock()
	m := s.recovered.mark
	unclean := force || s.recovered.unclean || m == nil || !m.Clean()
	s.recovered.unclean = false
	if s.mu.refused != nil || s.mu.failed != nil {
		s.mu.Unlock()
		return 0, nil
	}
	var target *seg
	if a := s.mu.active; unclean && a != nil {
		if err := s.startSealLocked(a); err != nil {
			s.mu.Unlock()
			return 0, err
		}
		target = a
	}
	s.mu.Unlock()
	var sealed SegmentID
	if target != nil {
		if err := s.waitSealed(ctx, target); err != nil {
			return 0, fmt.Errorf("stream %d: seal the tail after the node WAL's replay: %w", s.id, err)
		}
		sealed = target.id
	}
	s.mu.Lock()
	// The placeholders are prepared like segment files: not while the
	// stream's own preparer (started by the replay's rollovers and the
	// seal) works on the same file.
	for s.mu.prepRunning {
		if err := s.mu.prepErr; err != nil {
			s.mu.Unlock()
			return sealed, fmt.Errorf("stream %d: prepare a segment after the node WAL's replay: %w", s.id, err)
		}
		s.mu.Unlock()
		select {
		case <-time.After(time.Millisecond):
		case <-ctx.Done():
			return sealed, fmt.Errorf("stream %d: after the node WAL's replay: %w", s.id, ctx.Err())
		}
		s.mu.Lock()
	}
	ph, err := s.reserveLocked()
	s.mu.Unlock()
	if len(ph) > 0 {
		s.log.Info("segment ids reserved before an unclean shutdown became placeholders", "segments", ph)
	}
	if err != nil && !errors.Is(err, ErrClosed) {
		return sealed, err
	}
	return sealed, nil
}
