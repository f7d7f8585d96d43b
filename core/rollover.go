package core

import (
	"context"
	"errors"
	"fmt"
	"math/bits"
	"path/filepath"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/aof2/aof2/core/internal/tracing"
	"github.com/aof2/aof2/core/segment"
	"github.com/aof2/aof2/core/types"
)

// nextIDLocked is the id of the segment after the newest one.
func (s *Stream) nextIDLocked() SegmentID {
	if last := s.cat.Load().last(); last != nil {
		return last.id + 1
	}
	return 1
}

// rolloverLocked activates the prepared next segment for a record with a
// need-byte payload. The old active segment moves to the sealing slot; the
// syncer seals it. At most two segments are unsealed at any time, so a
// rollover waits (WouldBlock) while the previous seal is in progress or
// the next file is not ready yet, or is too small for the record.
func (s *Stream) rolloverLocked(ts int64, ext uint64, need int) error {
	need = max(need, s.mu.need) // a larger file asked for before (replayWAL)
	if s.mu.sealing != nil {
		s.kickSync()
		if s.mu.sealErr != nil {
			return s.m.blocked(&WouldBlock{Kind: Admission, Cause: s.mu.sealErr, RetryAfter: prepRetry})
		}
		return s.m.blocked(&WouldBlock{Kind: Rollover})
	}
	id := s.nextIDLocked()
	if id > types.MaxSegmentID {
		return fmt.Errorf("stream %d: %w", s.id, ErrSegmentIDExhausted)
	}
	if s.mu.next == nil || s.mu.nextID != id || segment.MaxRecordSize(s.mu.next.Capacity()) < int64(need) {
		// The preparer replaces a file that does not fit the record.
		s.mu.need = max(s.mu.need, need)
		s.kickPrepLocked()
		if s.mu.prepErr != nil {
			return s.m.blocked(&WouldBlock{Kind: Admission, Cause: s.mu.prepErr, RetryAfter: prepRetry})
		}
		return s.m.blocked(&WouldBlock{Kind: Rollover})
	}
	if t := s.cfg.Tiering; t != nil && !s.mu.replaying {
		if err := t.AdmitSegment(SegmentKey{Stream: s.id, Segment: id}, s.mu.next.Capacity()); err != nil {
			if ferr := s.sealRefusedLocked(); ferr != nil { // see pressure.go
				return ferr
			}
			var wb *WouldBlock
			if errors.As(err, &wb) {
				return s.m.blocked(wb)
			}
			return s.m.blocked(&WouldBlock{Kind: Admission, Cause: err, RetryAfter: prepRetry})
		}
	}
	old := s.mu.active
	h := segment.Header{StreamID: s.id, SegmentID: id, BaseOffset: s.mu.written, BaseRecord: s.mu.records, CreatedAt: ts, ExtID: ext}
	w, err := s.mu.next.Activate(h)
	next := s.mu.next
	s.mu.next, s.mu.need = nil, 0
	if err != nil {
		_ = next.Discard()
		s.mu.prepErr = err
		s.kickPrepLocked()
		return s.m.blocked(&WouldBlock{Kind: Admission, Cause: err, RetryAfter: prepRetry})
	}
	if old != nil {
		if err := old.w.Push(); err != nil {
			return s.failLocked(fmt.Errorf("push %s: %w", old.path, err))
		}
		old.publish()
		s.mu.sealing = old
		s.kickSync()
	}
	if err := s.journal.SegmentOpened(w.Header()); err != nil {
		// The seal's commit will fail too and stop the stream; recovery
		// re-derives the record from the file.
		s.log.Warn("manifest: could not append SegmentOpened", "segment_id", uint64(id), "error", err)
	}
	if old != nil {
		s.mu.filledFast = s.filledFast(old)
	}
	g := newActiveSeg(w)
	g.activated = monoNow()
	s.mu.active = g
	s.setCatalogLocked(s.cat.Load().with(g))
	s.m.segments.Inc()
	s.m.bytes.Add(float64(g.capacity))
	s.stateN.broadcast()
	return nil
}

// prepRetry is how long the preparer waits after a failed preparation.
const prepRetry = 100 * time.Millisecond

// prepareAheadLocked asks for the next segment file once the active
// segment a is half full (of its capacity, or of SegmentTargetBytes), so
// that a stream that fills its segment rolls over without waiting, while
// one that does not never holds a second file.
func (s *Stream) prepareAheadLocked(a *seg) {
	if s.mu.next != nil || s.mu.prepRunning {
		return
	}
	room := segment.DataEnd(a.capacity) - segment.HeaderSize
	if t := s.cfg.SegmentTargetBytes; t > 0 && t < room {
		room = t
	}
	if 2*(a.w.End()-segment.HeaderSize) >= room {
		s.kickPrepLocked()
	}
}

// kickPrepLocked has the next segment file prepared off the writer lock,
// on a goroutine the stream owns that exits once the file is ready: an
// idle stream runs no preparer.
func (s *Stream) kickPrepLocked() {
	if s.mu.closed {
		return
	}
	if s.mu.prepRunning {
		s.mu.prepAgain = true
		return
	}
	s.mu.prepRunning = true
	s.wg.Add(1)
	go s.prepareLoop()
}

// prepareLoop prepares the next segment file, retrying every prepRetry
// while preparation fails (a full disk: writers see WouldBlock(Admission)
// meanwhile), and returns once a file is ready or the stream stops.
func (s *Stream) prepareLoop() {
	defer s.wg.Done()
	for {
		err := s.prepareNext()
		s.mu.Lock()
		again := s.mu.prepAgain
		s.mu.prepAgain = false
		if (err == nil && !again) || s.mu.closed || s.mu.failed != nil {
			s.mu.prepRunning = false
			s.mu.Unlock()
			return
		}
		s.mu.Unlock()
		if err != nil && !again {
			select {
			case <-time.After(prepRetry):
			case <-s.done:
				s.mu.Lock()
				s.mu.prepRunning = false
				s.mu.Unlock()
				return
			}
		}
	}
}

// prepareNext prepares the next segment file unless one that fits is
// ready. Its capacity is nextCapacityLocked's.
func (s *Stream) prepareNext() error {
	s.mu.Lock()
	if s.mu.closed || s.mu.failed != nil {
		s.mu.Unlock()
		return nil
	}
	id := s.nextIDLocked()
	old := s.mu.next
	capacity := s.nextCapacityLocked(s.mu.need)
	// A prepared file is kept when it takes the record and, with no active
	// segment (after a seal), is not larger than the stream now calls for:
	// one prepared while the stream filled fast is not kept by a stream
	// that went quiet.
	if old != nil && s.mu.nextID == id && segment.MaxRecordSize(old.Capacity()) >= int64(s.mu.need) &&
		(s.mu.active != nil || old.Capacity() <= capacity) {
		s.mu.Unlock()
		return nil
	}
	s.mu.next = nil
	s.mu.Unlock()
	if old != nil {
		if err := old.Discard(); err != nil {
			s.log.Warn("could not remove a prepared segment file that does not fit the next record", "error", err)
		}
	}
	if id > types.MaxSegmentID {
		return nil
	}
	p, err := segment.Prepare(s.cfg.FS, filepath.Join(s.segDir, segment.PrepName(id)), capacity, s.cfg.Preparation, s.cfg.WriteMode)
	if err == nil {
		// The id is recorded as possibly in use before the segment can take
		// a record (core/mark.go): a crash that loses its file then never
		// lets its ids be handed out again. Until that is durable the
		// segment is not offered (a full disk is backpressure here too).
		if err = s.reserve(id); err != nil {
			_ = p.Discard()
			err = segment.MarkNoSpace(err)
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	defer s.stateN.broadcast()
	if err != nil {
		if s.mu.prepErr == nil {
			s.log.Warn("segment preparation failed; writers get WouldBlock(admission) until it succeeds", "segment_id", uint64(id), "error", err)
		}
		s.mu.prepErr = err
		return err
	}
	s.mu.prepErr = nil
	if s.mu.closed || s.mu.failed != nil || s.mu.next != nil || s.nextIDLocked() != id {
		_ = p.Discard()
		return nil
	}
	s.mu.next, s.mu.nextID = p, id
	return nil
}

// dropStaleNextLocked discards a prepared segment whose id is no longer
// the next one (recovery or an accepted loss took that id); s.mu is held.
func (s *Stream) dropStaleNextLocked() {
	if s.mu.next != nil && s.mu.nextID != s.nextIDLocked() {
		_ = s.mu.next.Discard()
		s.mu.next = nil
	}
}

// Fast-filling streams skip sizes. Doubling from 64 KiB keeps what a
// stream holds within about three times its bytes, but a stream writing
// hundreds of MB/s then crosses ten segments, each sealed (about eleven
// fsyncs: footer, pointer, manifest, mark, view) before the next one's
// records can be made durable: a new stream wrote at 0.60 of a plain file
// where one starting at full size wrote at 0.81 (docs/performance.md). A
// stream whose previous segment filled within fastFill of its activation
// and whose active one is half full within fastFill gets a next segment
// fastGrowth times the active one: it writes at least capacity/fastFill
// bytes a second, so the room it holds is what it writes in about
// fastGrowth × fastFill. A stream that goes quiet keeps no oversized file:
// a seal that is not a rollover (Seal, segment.max_age) leaves no active
// segment, and the preparer then replaces a prepared file larger than the
// bytes the stream holds call for (prepareNext).
const (
	defaultFastFill = 100 * time.Millisecond
	fastGrowth      = 16
)

// filledFast reports whether g, which filled up, did so within fastFill of
// its activation. Never with TailReplayed: the nodes of a cluster apply
// one log at their own pace and must cut it into the same segments (the
// ids are positions in them), so sizes there depend on the records alone.
func (s *Stream) filledFast(g *seg) bool {
	return s.cfg.fastFill > 0 && !s.cfg.TailReplayed && g.activated != 0 && monoNow()-g.activated < int64(s.cfg.fastFill)
}

// nextCapacityLocked is the capacity of the next segment file, for a
// first record of need payload bytes (0: any):
//   - after an active segment (it is filling up): twice its capacity, or
//     fastGrowth times when the stream fills its segments fast (above);
//   - with no active segment (a new stream, or after a seal or a
//     restart): twice what the newest segment holds, rounded up to a
//     power of two;
//   - at least InitialSegmentSize, at most SegmentSize (or, with
//     SegmentTargetBytes, the smallest capacity that holds the target);
//   - and in any case large enough for the record: up to SegmentSize
//     (checkPayload bounds records by it), or beyond for a record the
//     node WAL replays into a segment as large as the one it was written
//     into before SegmentSize was lowered (replayWAL).
func (s *Stream) nextCapacityLocked(need int) int64 {
	limit := s.cfg.SegmentSize
	if t := s.cfg.SegmentTargetBytes; t > 0 {
		limit = min(limit, max(segment.MinFileCapacity, pow2Ceil(t+segment.HeaderSize+segment.FooterSize)))
	}
	c := s.cfg.InitialSegmentSize
	if a := s.mu.active; a != nil {
		grow := int64(2)
		if s.mu.filledFast && s.filledFast(a) {
			grow = fastGrowth
		}
		c = max(c, grow*a.capacity)
	} else if last := s.cat.Load().last(); last != nil {
		c = max(c, pow2Ceil(2*(last.visible.Load()-segment.HeaderSize)+segment.HeaderSize+segment.FooterSize))
	}
	c = min(c, limit)
	if need > 0 {
		c = max(c, segment.CapacityFor(need))
	}
	return min(c, max(s.cfg.SegmentSize, segment.CapacityFor(need)))
}

// pow2Ceil is the smallest power of two >= n (n > 0).
func pow2Ceil(n int64) int64 { return 1 << bits.Len64(uint64(n-1)) }

// Seal seals the active segment if it holds records and waits until the
// seal is durable (records, footer, pointer and journal record). It does
// not need room for a new segment: the next append activates one.
func (s *Stream) Seal(ctx context.Context) (err error) {
	ctx, span := tracing.Start(ctx, s.tracer, tracing.SpanStreamSeal, tracing.StreamID(uint64(s.id)))
	result := tracing.ResultOK
	defer func() {
		if err != nil {
			result = tracing.ResultError
		}
		tracing.EndResult(span, err, result)
	}()
	for {
		state := s.stateN.wait()
		s.mu.Lock()
		if err := s.usableLocked(); err != nil {
			s.mu.Unlock()
			return err
		}
		target, busy := s.mu.sealing, false
		if a := s.mu.active; a != nil && a.w.Count() > 0 {
			if busy = target != nil; !busy {
				if err := a.w.Push(); err != nil {
					err = s.failLocked(fmt.Errorf("push %s: %w", a.path, err))
					s.mu.Unlock()
					return err
				}
				a.publish()
				s.mu.sealing, s.mu.active, target = a, nil, a
				s.kickSync()
				// The next append needs a new segment: have it ready.
				s.kickPrepLocked()
			}
		}
		s.mu.Unlock()
		if !busy {
			if target == nil {
				result = tracing.ResultSkipped // nothing to seal
				return nil
			}
			span.SetAttributes(tracing.SegmentID(uint64(target.id)))
			return s.waitSealed(ctx, target)
		}
		// The previous seal is still in progress: wait for it, then retry.
		select {
		case <-state:
		case <-ctx.Done():
			return fmt.Errorf("stream %d: seal: %w", s.id, ctx.Err())
		}
	}
}

// WaitSealed returns once segment id is sealed: at once for a sealed
// one; after the background seal for one a rollover or Seal left
// sealing. The active segment, or one the stream does not have, is
// ErrNotSealing: nothing is sealing it.
func (s *Stream) WaitSealed(ctx context.Context, id SegmentID) error {
	g, _ := s.cat.Load().byID(id)
	if g == nil {
		return fmt.Errorf("stream %d: segment %d: %w", s.id, id, ErrNotSealing)
	}
	if g.footer.Load() != nil {
		return nil
	}
	s.mu.Lock()
	sealing := s.mu.sealing == g
	s.mu.Unlock()
	if !sealing && g.footer.Load() == nil {
		return fmt.Errorf("stream %d: segment %d: %w", s.id, id, ErrNotSealing)
	}
	return s.waitSealed(ctx, g)
}

// ErrNotSealing: WaitSealed named a segment nothing is sealing.
var ErrNotSealing = errors.New("aof2: the segment is neither sealed nor sealing")

func (s *Stream) waitSealed(ctx context.Context, g *seg) error {
	for {
		state := s.stateN.wait()
		if g.footer.Load() != nil {
			return nil
		}
		if err := s.Err(); err != nil {
			return err
		}
		s.kickSync()
		select {
		case <-state:
		case <-s.closed:
			if g.footer.Load() == nil {
				return fmt.Errorf("stream %d: seal: %w", s.id, ErrClosed)
			}
		case <-ctx.Done():
			return fmt.Errorf("stream %d: seal: %w", s.id, ctx.Err())
		}
	}
}

// sealPending seals the segment in the sealing slot: every record durable,
// footer written and synced, pointer replaced, journal record committed.
// Only then is the seal acknowledged and the slot freed. Runs on the
// syncer. A full disk while writing the metadata leaves the seal pending
// (writers see WouldBlock(Admission)) and errSealBlocked is returned so the
// syncer retries; any other failure stops the stream.
func (s *Stream) sealPending() (err error) {
	s.mu.Lock()
	g, wm := s.mu.sealing, s.mu.watermark
	s.mu.Unlock()
	if g == nil {
		return nil
	}
	// The syncer has no caller context: each seal attempt is a root span.
	ctx, span := tracing.Start(context.Background(), s.tracer, tracing.SpanSeal,
		tracing.StreamID(uint64(s.id)), tracing.SegmentID(uint64(g.id)))
	var blocked error // the disk-full error behind errSealBlocked
	defer func() { s.endSealSpan(span, g, err, blocked) }()
	// Seal may have moved g here after this iteration's sync round captured
	// it as the active segment: make the durable mark cover all of g before
	// sealing, or waiters on its last records would never be woken.
	if s.durableMark.Load() < uint64(types.MakeRecordID(g.id, uint32(g.w.End()))) {
		if err := s.syncRound(); err != nil {
			return err
		}
	}
	if g.sealed == nil {
		_, lastTS, ext := g.w.Last()
		f, err := g.w.Seal(segment.SealParams{SealedAt: s.sealedAt(lastTS, g.createdAt), ExtID: ext, CoordinatorWatermark: wm})
		if err != nil {
			s.m.flushFailures.Inc()
			return s.fail(fmt.Errorf("seal segment %d: %w", g.id, err))
		}
		g.sealed = &f
	}
	f := g.sealed
	err = s.writePointer(segment.Pointer{SegmentID: g.id, DurableBytes: f.DurableBytes, CoordinatorWatermark: f.CoordinatorWatermark})
	if err == nil {
		if err = s.journal.SegmentSealed(ctx, g.w.Header(), *f); err != nil {
			err = fmt.Errorf("journal: %w", err)
		}
	}
	if err != nil {
		err = fmt.Errorf("seal segment %d: %w", g.id, segment.MarkNoSpace(err))
		if errors.Is(err, ErrNoSpace) {
			s.mu.Lock()
			first := s.mu.sealErr == nil
			s.mu.sealErr = err
			s.mu.Unlock()
			if first {
				s.log.Warn("disk full while sealing; the seal stays pending and new segments wait", "segment_id", uint64(g.id), "error", err)
				s.stateN.broadcast()
			}
			blocked = err
			return errSealBlocked
		}
		return s.fail(err)
	}
	g.setSealed(f)
	s.mu.Lock()
	s.mu.sealing, s.mu.sealErr = nil, nil
	s.mu.Unlock()
	s.m.seals.Inc()
	s.log.Debug("segment sealed", "segment_id", uint64(g.id), "records", f.RecordCount, "durable_bytes", f.DurableBytes)
	s.stateN.broadcast()
	if t := s.cfg.Tiering; t != nil {
		t.SegmentSealed(s, g.info())
	}
	return nil
}

// endSealSpan ends a seal attempt's span with what the seal covered. A
// seal waiting for disk space ends with result blocked and the disk-full
// error.
func (s *Stream) endSealSpan(span trace.Span, g *seg, err, blocked error) {
	if f := g.sealed; f != nil && span.IsRecording() {
		span.SetAttributes(tracing.KeyRecords.Int64(int64(f.RecordCount)), tracing.Bytes(int64(f.DurableBytes)))
	}
	if blocked != nil {
		tracing.EndResult(span, blocked, tracing.ResultBlocked)
		return
	}
	tracing.End(span, err)
}

// errSealBlocked says a seal is waiting for disk space.
var errSealBlocked = errors.New("seal waiting for space")

// writePointer replaces current.sealed. Each attempt rewrites a fresh temp
// file in full, so retrying after a failed fsync of the temp file cannot
// acknowledge bytes the kernel dropped.
func (s *Stream) writePointer(p segment.Pointer) error {
	var err error
	for attempt := range 3 {
		if attempt > 0 {
			s.m.metaRetries.Inc()
			time.Sleep(time.Duration(attempt) * 10 * time.Millisecond)
		}
		if err = segment.WritePointer(s.cfg.FS, s.ptrPath, p); err == nil {
			return nil
		}
		if err = segment.MarkNoSpace(err); errors.Is(err, ErrNoSpace) {
			return err // retried later by the syncer, not in a loop here
		}
		s.log.Warn("writing current.sealed failed", "attempt", attempt+1, "error", err)
	}
	s.m.metaFailures.Inc()
	return fmt.Errorf("replace %s: %w", s.ptrPath, err)
}

// sealedAt is the time a seal stamps into a segment's footer: this node's
// clock, or with Config.TailReplayed the segment's last record's
// timestamp (its creation time, the first record's, when it holds none).
// The nodes of a cluster apply one log, and their segments must come out
// byte-identical: a follower hydrates the copy the leader uploaded, and
// checks it against its own footer.
func (s *Stream) sealedAt(lastTS, createdAt int64) int64 {
	switch {
	case !s.cfg.TailReplayed || s.cfg.nodeWAL:
		return s.cfg.Now().UnixNano()
	case lastTS != 0:
		return lastTS
	}
	return createdAt
}
