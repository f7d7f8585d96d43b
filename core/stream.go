package core

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	"go.opentelemetry.io/otel/trace"

	"github.com/aof2/aof2/core/internal/tracing"
	"github.com/aof2/aof2/core/segment"
	"github.com/aof2/aof2/core/types"
)

// AppendOptions are per-record options.
type AppendOptions struct {
	// Timestamp in unix nanoseconds; zero means now.
	Timestamp int64
	// ExtID is an external cohort or sequence id (e.g. a Raft index),
	// stamped into the record header, the segment header and footer.
	ExtID uint64
}

// Stream is one append-only log. Appends from several goroutines are
// serialised; readers run concurrently with them.
//
// # Locks
//
// Lock order: roundMu before mu; readMu before mu. roundMu and readMu are
// never held together. evictMu (shared) comes before mu and readMu in
// EvictRecorded; close takes it exclusively with no other lock held.
//
//   - mu (the writer lock) guards the fields in mu and is the only lock
//     under which cat is replaced (setCatalogLocked).
//   - cat is loaded without a lock by readers, Flush and the coordinator.
//   - readMu, held exclusively, changes a segment's residency and mapping
//     (eviction, hydration, retention, Close) and readersClosed; readers
//     hold it shared while they use a mapping or move their pin.
//   - roundMu serialises sync rounds and seals (syncRound, sealPending):
//     the syncer's, an inline Flush's and Close's.
//   - The durable* atomics are written only by the holder of roundMu.
type Stream struct {
	id      StreamID
	cfg     *Config
	log     hclog.Logger
	m       *streamMetrics
	counts  *appendCounts // the store's; serves mu.appended at scrape time
	segDir  string
	ptrPath string
	journal Journal // set before start; the manifest log unless NoManifest

	mu struct {
		sync.Mutex
		active  *seg
		sealing *seg
		next    *segment.Prepared
		nextID  SegmentID
		prepErr error
		sealErr error // the pending seal is waiting for space
		failed  error
		refused error // appends are refused: the stream needs a restore
		// retired are catalog entries whose file a repair replaced: readers
		// may still hold their mappings, closed with the stream.
		retired []*seg
		// undropped are segments DropHead took out of the catalog whose
		// files it could not remove yet: DropHead(id) retries (a file left
		// behind would bring the segment back at the next open).
		undropped map[SegmentID]*droppedSeg
		closed    bool
		// replaying: the node WAL replays into the stream at open. Its
		// rollovers skip tier-0 admission: the coordinator cannot answer
		// before it starts, and the replayed segments were admitted before
		// the crash (the coordinator takes them in at start, as it does
		// recovered tails).
		replaying bool
		// walKept are the node WAL's entries for a stream refused for
		// damage of its own segments, in WAL order, kept by the replay
		// for its accepted loss or a heal at open (both write them back
		// over and after the damage of its tail); the WAL keeps them too
		// until then.
		walKept []walEntry
		// abandoned: the store gave up opening (Open failed after the
		// streams recovered), or the node WAL's replay refused the stream
		// (ids it handed out past the tail may be lost with the WAL):
		// close writes no clean mark, so the next open still knows the
		// last shutdown was not clean and keeps the ids the mark reserved.
		abandoned bool
		written   uint64   // stream position after the last appended record
		records   uint64   // records appended
		appended  appended // what appends through this Stream added (appendCounts)
		watermark uint64   // coordinator watermark for the next seal

		// filledFast: the segment before the active one filled within
		// Config.fastFill of its activation (nextCapacityLocked).
		filledFast  bool
		need        int  // payload bytes the next segment must hold (0: any)
		prepRunning bool // a preparer goroutine runs (kickPrepLocked)
		prepAgain   bool // the preparer must look again before it exits
	}
	cat atomic.Pointer[catalog] // replaced under mu only
	// failedErr mirrors mu.failed for lock-free checks on the wait paths.
	failedErr atomic.Pointer[error]

	// Durability, published by the holder of roundMu. durableMark is
	// RecordID-shaped: records before (segment, offset) are durable.
	durablePos  atomic.Uint64
	durableMark atomic.Uint64
	durableRecs atomic.Uint64
	// publishedMark is RecordID-shaped like durableMark: with
	// Config.TailReplayed, records before it are readable though not yet
	// synced (Publish). It only grows.
	publishedMark atomic.Uint64

	roundMu sync.Mutex
	// waiters counts the callers in waitDurable: one alone may run its
	// round inline (syncInline).
	waiters atomic.Int32

	durableN *notifier // durable advanced, or the stream failed/closed
	stateN   *notifier // rollover, preparation or seal progressed

	syncKick chan struct{} // wakes the syncer
	// The syncer runs only while there is work. syncRunning says whether
	// one runs (set by startSyncer, cleared by stopSyncer, both with
	// CompareAndSwap); stopping, guarded by runMu, is set by close so that
	// no syncer starts after it.
	syncRunning atomic.Bool
	runMu       sync.Mutex
	stopping    bool          // guarded by runMu
	done        chan struct{} // closed to stop the syncer and preparer
	closed      chan struct{} // closed once the final flush of Close is done
	wg          sync.WaitGroup

	readMu        sync.RWMutex
	readersClosed bool // guarded by readMu

	// evictMu is held (read) by EvictRecorded from before the file goes
	// until its record is in the manifest; close takes it (write) before
	// closing the manifest, so a clean stop never leaves an eviction the
	// manifest does not know. It guards no field.
	evictMu sync.RWMutex

	// markMu guards mark: the durable mark's writer and what its next
	// write records (core/mark.go). It is taken last, never held while
	// taking another lock.
	markMu sync.Mutex
	mark   struct {
		w       *segment.MarkWriter
		state   segment.Mark
		at      time.Time // when the last mark was written
		failing bool      // the last write failed (logged once)
	}
	// recovered is what recovery learned for start (set before start).
	recovered recoveredState

	// wal is the node WAL (Config.NodeWAL), set before the stream is
	// handed out; nil without it and while the WAL replays. walMark,
	// walPos and walRecs are what the WAL has made durable (as durableMark,
	// durablePos and durableRecs are for the segments), written by its
	// committer.
	wal     *nodeWAL
	walMark atomic.Uint64
	walPos  atomic.Uint64
	walRecs atomic.Uint64

	// prod is the idempotent-append state (core/producer.go).
	prod producers

	// tracer makes the stream's spans; appendSample and flushSample pick
	// the durable appends and the flushes that get one.
	tracer       trace.Tracer
	appendSample *tracing.Sampler
	flushSample  *tracing.Sampler
}

func newStream(id StreamID, dir string, cfg *Config, m *metrics) *Stream {
	s := &Stream{
		id: id, cfg: cfg, m: m.forStream(id), counts: m.appended,
		log:      cfg.Logger.With("stream_id", uint64(id)),
		segDir:   filepath.Join(dir, "segments"),
		durableN: newNotifier(), stateN: newNotifier(),
		syncKick: make(chan struct{}, 1),
		done:     make(chan struct{}), closed: make(chan struct{}),
		tracer:       tracing.Tracer(cfg.TracerProvider, tracing.ScopeCore),
		appendSample: tracing.NewSampler(cfg.TraceAppendEvery),
		flushSample:  tracing.NewSampler(cfg.TraceAppendEvery),
	}
	s.ptrPath = filepath.Join(s.segDir, segment.PointerFile)
	s.cat.Store(&catalog{})
	return s
}

// ID returns the stream's id.
func (s *Stream) ID() StreamID { return s.id }

// MaxRecordSize is the largest payload the stream accepts.
func (s *Stream) MaxRecordSize() int { return int(s.cfg.maxRecordSize()) }

// Append appends one record and returns its id. It never waits for the
// disk; it returns a WouldBlock error when the stream cannot take the
// record now (see AppendCtx for the waiting variant).
func (s *Stream) Append(payload []byte, o AppendOptions) (RecordID, error) {
	return s.appendMax(payload, o, s.cfg.maxRecordSize())
}

// appendMax is Append for payloads up to max bytes: the configured
// maximum, or for a record the node WAL replays the one of the segment it
// was written into (replayWAL).
func (s *Stream) appendMax(payload []byte, o AppendOptions, max int64) (RecordID, error) {
	if err := s.checkPayloadMax(payload, max); err != nil {
		return 0, err
	}
	ts := o.Timestamp
	if ts == 0 {
		ts = s.cfg.nowNanos()
	}
	s.mu.Lock()
	id, err := s.appendLocked(payload, ts, o.ExtID)
	if err == nil {
		s.mu.appended.records++
		s.mu.appended.bytes += uint64(len(payload))
	}
	s.mu.Unlock()
	if err != nil {
		return 0, err
	}
	s.afterAppend()
	return id, nil
}

// AppendBatch appends records in order under one lock acquisition. On an
// error the records whose ids were returned were appended; the rest were
// not.
func (s *Stream) AppendBatch(payloads [][]byte, o AppendOptions) ([]RecordID, error) {
	for _, p := range payloads {
		if err := s.checkPayload(p); err != nil {
			return nil, err
		}
	}
	ts := o.Timestamp
	if ts == 0 {
		ts = s.cfg.nowNanos()
	}
	ids := make([]RecordID, 0, len(payloads))
	n := 0
	s.mu.Lock()
	var err error
	for _, p := range payloads {
		var id RecordID
		if id, err = s.appendLocked(p, ts, o.ExtID); err != nil {
			break
		}
		ids = append(ids, id)
		n += len(p)
	}
	s.mu.appended.records += uint64(len(ids))
	s.mu.appended.bytes += uint64(n)
	s.mu.Unlock()
	if len(ids) > 0 {
		s.afterAppend()
	}
	return ids, err
}

func (s *Stream) checkPayload(p []byte) error {
	return s.checkPayloadMax(p, s.cfg.maxRecordSize())
}

func (s *Stream) checkPayloadMax(p []byte, max int64) error {
	if len(p) == 0 {
		return fmt.Errorf("stream %d: %w", s.id, ErrEmptyRecord)
	}
	if int64(len(p)) > max {
		return fmt.Errorf("stream %d: payload of %d bytes exceeds the maximum %d: %w", s.id, len(p), max, ErrRecordTooLarge)
	}
	return nil
}

func (s *Stream) afterAppend() {
	switch s.cfg.Sync {
	case SyncAlways:
		s.kickSync()
	case SyncInterval:
		if s.unflushed() >= uint64(s.cfg.FlushBytes) {
			s.kickSync()
		} else if !s.syncRunning.Load() {
			s.startSyncer() // its ticker syncs these bytes
		}
	}
}

func (s *Stream) unflushed() uint64 {
	s.mu.Lock()
	w := s.mu.written
	s.mu.Unlock()
	return w - s.durablePos.Load()
}

func (s *Stream) appendLocked(p []byte, ts int64, ext uint64) (RecordID, error) {
	if err := s.admitLocked(); err != nil {
		return 0, err
	}
	if ext == 0 && s.cfg.RequireExtID {
		return 0, fmt.Errorf("stream %d: %w", s.id, ErrExtIDRequired)
	}
	a := s.mu.active
	if s.needsRolloverLocked(a, segment.RecordSpan(len(p))) {
		if err := s.rolloverLocked(ts, ext, len(p)); err != nil {
			return 0, err
		}
		a = s.mu.active
	}
	return s.storeLocked(a, p, ts, ext)
}

// admitLocked returns why the stream cannot take a record now, if it
// cannot: it failed or was closed, the node WAL refuses, or too many bytes
// wait for a sync.
func (s *Stream) admitLocked() error {
	if err := s.usableLocked(); err != nil {
		return err
	}
	if s.wal != nil {
		if err := s.wal.err(); err != nil {
			return fmt.Errorf("stream %d: %w", s.id, err)
		}
		if err := s.wal.stalled(); err != nil {
			return s.m.blocked(&WouldBlock{Kind: Admission, Cause: err, RetryAfter: prepRetry})
		}
		if wb := s.wal.admit(); wb != nil {
			return s.m.blocked(wb)
		}
	}
	if max := s.cfg.MaxUnflushedBytes; max > 0 && s.mu.written-s.durablePos.Load() >= uint64(max) {
		s.kickSync()
		return s.m.blocked(&WouldBlock{Kind: Flush})
	}
	return nil
}

// needsRolloverLocked reports whether span bytes of records must go into
// a new segment: there is no active one, they do not fit, or the active
// one reached its target size — except while the node WAL replays, whose
// records go back where they were (replayWAL).
func (s *Stream) needsRolloverLocked(a *seg, span int64) bool {
	return a == nil || a.w.End()+span > segment.DataEnd(a.capacity) ||
		(!s.mu.replaying && s.cfg.SegmentTargetBytes > 0 && a.w.Count() > 0 && a.w.End()-segment.HeaderSize >= s.cfg.SegmentTargetBytes)
}

// storeLocked writes one record at the end of a, the active segment.
func (s *Stream) storeLocked(a *seg, p []byte, ts int64, ext uint64) (RecordID, error) {
	off, err := a.w.Append(p, ts, ext)
	if err != nil {
		// Stores into a mapping cannot fail; only a staged pwrite can.
		return 0, s.failLocked(fmt.Errorf("append to %s: %w", a.path, err))
	}
	a.publish()
	s.mu.written += uint64(segment.RecordSpan(len(p)))
	s.mu.records++
	s.prepareAheadLocked(a)
	id := types.MakeRecordID(a.id, uint32(off))
	if s.wal != nil {
		s.wal.add(s, id, a.capacity, p, ts, ext)
	}
	return id, nil
}

func (s *Stream) usableLocked() error {
	if s.mu.failed != nil {
		return s.mu.failed
	}
	if s.mu.refused != nil {
		return s.mu.refused
	}
	if s.cfg.Follower != nil {
		return s.cfg.Follower()
	}
	if s.mu.closed {
		return fmt.Errorf("stream %d: %w", s.id, ErrClosed)
	}
	return nil
}

// failLocked stops the stream for good (until the store is reopened).
func (s *Stream) failLocked(err error) error {
	if s.mu.failed == nil {
		s.mu.failed = fmt.Errorf("stream %d: %w: %w", s.id, ErrStreamFailed, err)
		failed := s.mu.failed
		s.failedErr.Store(&failed)
		s.log.Error("stream stopped after a durability failure; reopen the store to recover from disk", "error", err)
		s.durableN.broadcast()
		s.stateN.broadcast()
	}
	return s.mu.failed
}

func (s *Stream) fail(err error) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.failLocked(err)
}

// RefuseAppends marks the stream as needing a restore: tier 2 holds
// segments beyond the ones this node has (its data is older than the
// bucket's), so appending would reuse ids. Appends and seals then fail
// with a *NeedsRestoreError saying why; reads go on. The mark lasts until
// the store is reopened.
func (s *Stream) RefuseAppends(reason string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.mu.refused == nil {
		s.mu.refused = &types.NeedsRestoreError{Stream: s.id, Reason: reason}
		s.log.Error("appends refused: the stream needs a restore from tier 2", "reason", reason)
		s.stateN.broadcast()
	}
}

// RefuseAppendsWith refuses appends and seals with err (a *FencedError:
// another node writes the prefix now); reads go on. Like RefuseAppends,
// it lasts until the store is reopened.
func (s *Stream) RefuseAppendsWith(err error) { s.refuseAppendsWith(err) }

// refuseAppendsWith reports whether err became the refusal (a stream
// already refusing keeps its first reason).
func (s *Stream) refuseAppendsWith(err error) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.mu.refused != nil {
		return false
	}
	s.mu.refused = err
	s.stateN.broadcast()
	return true
}

// liftRefusal lets s take appends again if err is still why it refuses.
func (s *Stream) liftRefusal(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.mu.refused == err {
		s.mu.refused = nil
		s.stateN.broadcast()
	}
}

// Err returns the error that stopped the stream, or nil.
func (s *Stream) Err() error {
	if e := s.failedErr.Load(); e != nil {
		return *e
	}
	return nil
}

// AppendCtx appends one record, waiting out WouldBlock conditions until ctx
// is done.
func (s *Stream) AppendCtx(ctx context.Context, payload []byte, o AppendOptions) (RecordID, error) {
	if id, err := s.Append(payload, o); !errors.Is(err, ErrWouldBlock) {
		return id, err // the common case: no channels taken, no closure
	}
	return s.appendBlocked(ctx, payload, o)
}

func (s *Stream) appendBlocked(ctx context.Context, payload []byte, o AppendOptions) (RecordID, error) {
	var id RecordID
	err := s.retryBlocked(ctx, func() (err error) {
		id, err = s.Append(payload, o)
		return err
	})
	return id, err
}

// retryBlocked runs attempt until it fails with something other than
// WouldBlock, waiting between tries for what the WouldBlock waits on
// (durability for Flush, a state change otherwise) until ctx is done.
func (s *Stream) retryBlocked(ctx context.Context, attempt func() error) error {
	for {
		// Take the channels before trying again, so a wake-up between the
		// failed attempt and the wait is not lost.
		durable, state := s.durableN.wait(), s.stateN.wait()
		err := attempt()
		if !errors.Is(err, ErrWouldBlock) {
			return err
		}
		ch := state
		if KindOf(err) == Flush {
			ch = durable
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return fmt.Errorf("stream %d: append: %w (while blocked: %w)", s.id, ctx.Err(), err)
		}
	}
}

// AppendDurable appends one record and waits until it is durable.
func (s *Stream) AppendDurable(ctx context.Context, payload []byte, o AppendOptions) (id RecordID, err error) {
	start := time.Now()
	var span trace.Span
	if s.appendSample.Sample() {
		ctx, span = tracing.Start(ctx, s.tracer, tracing.SpanAppendDurable,
			tracing.StreamID(uint64(s.id)), tracing.Bytes(int64(len(payload))))
		defer func() { s.endRecordSpan(span, id, err) }()
	}
	if id, err = s.AppendCtx(ctx, payload, o); err != nil {
		return 0, err
	}
	if span != nil {
		span.AddEvent("appended") // the rest of the span is the durability wait
	}
	if err := s.waitDurable(ctx, uint64(id)); err != nil {
		return 0, err
	}
	s.m.durableLatency.Observe(time.Since(start).Seconds())
	return id, nil
}

// endRecordSpan ends a sampled append or flush span with the record it
// covered.
func (s *Stream) endRecordSpan(span trace.Span, id RecordID, err error) {
	if id != 0 && span.IsRecording() {
		span.SetAttributes(tracing.SegmentID(uint64(id.Segment())), tracing.KeyRecordID.String(id.String()))
	}
	tracing.End(span, err)
}

// Flush waits until the record id, and every record before it, is durable.
func (s *Stream) Flush(ctx context.Context, id RecordID) (err error) {
	if s.flushSample.Sample() {
		var span trace.Span
		ctx, span = tracing.Start(ctx, s.tracer, tracing.SpanFlush, tracing.StreamID(uint64(s.id)))
		defer func() { s.endRecordSpan(span, id, err) }()
	}
	g, _ := s.cat.Load().byID(id.Segment())
	if g == nil || int64(id.Offset()) >= g.visible.Load() {
		if err := s.flushVisible(g); err != nil {
			return err
		}
		if g == nil || int64(id.Offset()) >= g.visible.Load() {
			return fmt.Errorf("stream %d: flush %s: %w", s.id, id, ErrNotFound)
		}
	}
	start := time.Now()
	if err := s.waitDurable(ctx, uint64(id)); err != nil {
		return err
	}
	s.m.durableLatency.Observe(time.Since(start).Seconds())
	return nil
}

// FlushAll waits until every record appended before the call is durable.
func (s *Stream) FlushAll(ctx context.Context) (err error) {
	if s.flushSample.Sample() {
		var span trace.Span
		ctx, span = tracing.Start(ctx, s.tracer, tracing.SpanFlush, tracing.StreamID(uint64(s.id)), tracing.KeyAll.Bool(true))
		defer func() { tracing.End(span, err) }()
	}
	s.mu.Lock()
	if err := s.usableLocked(); err != nil {
		s.mu.Unlock()
		return err
	}
	var mark uint64
	if a := s.mu.active; a != nil && a.w.Count() > 0 {
		mark = uint64(types.MakeRecordID(a.id, uint32(a.w.End()-1)))
	} else if g := s.mu.sealing; g != nil && g.w.Count() > 0 {
		mark = uint64(types.MakeRecordID(g.id, uint32(g.w.End()-1)))
	}
	s.mu.Unlock()
	if mark == 0 {
		return nil
	}
	return s.waitDurable(ctx, mark)
}

// flushVisible pushes staged pwrite bytes so that records become visible.
func (s *Stream) flushVisible(g *seg) error {
	if s.cfg.WriteMode != segment.WritePwrite || g == nil {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if g != s.mu.active {
		return nil
	}
	if err := g.w.Push(); err != nil {
		return s.failLocked(fmt.Errorf("push %s: %w", g.path, err))
	}
	g.publish()
	return nil
}

// waitDurable waits until durableMark passes mark (a RecordID-shaped
// position inside the last record to cover).
func (s *Stream) waitDurable(ctx context.Context, mark uint64) error {
	if s.wal != nil {
		return s.waitWAL(ctx, mark)
	}
	s.waiters.Add(1)
	defer s.waiters.Add(-1)
	inlined := false
	for {
		ch := s.durableN.wait()
		if s.durableMark.Load() > mark {
			return nil
		}
		if err := s.Err(); err != nil {
			return err
		}
		if !inlined && s.syncInline() {
			inlined = true // once: then wait for the syncer like everyone else
			continue
		}
		s.kickSync()
		select {
		case <-ch:
		case <-s.closed:
			if s.durableMark.Load() > mark {
				return nil
			}
			return fmt.Errorf("stream %d: %w", s.id, ErrClosed)
		case <-ctx.Done():
			return fmt.Errorf("stream %d: flush: %w", s.id, ctx.Err())
		}
	}
}

// SetCoordinatorWatermark sets the coordinator watermark stamped into the
// stream's next seal (footer, current.sealed and the manifest's
// SealSegment record). A writer that drives the stream from an external log
// (a Raft log, say) records there how far it has got. The value is durable
// once that seal is: a restart resumes with the newest sealed segment's
// watermark, so a value set after the last seal is lost with a crash.
func (s *Stream) SetCoordinatorWatermark(w uint64) {
	s.mu.Lock()
	s.mu.watermark = w
	s.mu.Unlock()
}

// CoordinatorWatermark returns the watermark the next seal will carry.
func (s *Stream) CoordinatorWatermark() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.mu.watermark
}

// restoreWatermarkLocked takes the watermark of the newest sealed segment,
// local or cold: recovery resumes where the last durable seal left it.
func (s *Stream) restoreWatermarkLocked() {
	segs := s.cat.Load().segs
	for i := len(segs) - 1; i >= 0; i-- {
		if f := segs[i].footer.Load(); f != nil {
			s.mu.watermark = f.CoordinatorWatermark
			return
		}
	}
}
