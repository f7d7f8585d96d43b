package core

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/aof2/aof2/core/segment"
)

// The node WAL (Config.NodeWAL, docs/adr-node-wal.md) makes a record
// durable once for every stream: appends are written to their stream's
// segment as always and, under the stream's writer lock, queued for the
// WAL; one committer appends each queue to the WAL's own stream (an
// internal stream in the segment format, directory <store>/wal) and syncs
// it once, which acknowledges the records of every stream in the round.
// Segments are synced only at seal, at a checkpoint and past
// MaxUnflushedBytes; after a crash the WAL gives back what they lost, at
// the ids the appends returned (walreplay.go).
//
// The WAL's stream is not a user stream: it is not listed, served or
// tiered, and its id (walStreamID) only names it in its own headers.
const walStreamID StreamID = 1<<64 - 1

// walDirName is the WAL's directory inside the store's.
const walDirName = "wal"

// DefaultWALCheckpointBytes is Config.WALCheckpointBytes' default.
const DefaultWALCheckpointBytes = 64 << 20

// walItem is one queued entry, encoded at enc[start:end] of its queue, and
// what its stream learns once it is durable.
type walItem struct {
	s          *Stream
	start, end int
	mark       uint64 // RecordID-shaped end of the record
	pos        uint64 // stream position after it
	recs       uint64 // stream record count after it
}

// maxSpareQueue bounds the encoded-entries buffer a round keeps for the
// next one.
const maxSpareQueue = 4 << 20

// maxWALQueue bounds the bytes queued for the WAL: past it appends get
// WouldBlock(Flush) until the committer has taken the queue (appends that
// do not wait for durability could otherwise queue without bound while
// the disk is slower than they are).
const maxWALQueue = 64 << 20

// walQueue is what the appenders fill and the committer drains: entries
// encoded back to back, so a round hands them to the WAL's stream without
// copying them again.
type walQueue struct {
	items []walItem
	enc   []byte
}

// nodeWAL owns the WAL's stream and its committer goroutine (started by
// start, stopped by stop).
type nodeWAL struct {
	st     *Store
	s      *Stream
	cpPath string
	log    hclog.Logger
	m      *walMetrics

	mu struct {
		sync.Mutex
		queue walQueue
		// blocked says why checkpoints stop (a replay that could not be
		// finished, a stream whose segments could not be synced): the WAL
		// then keeps everything.
		blocked error
		// held are the streams damaged in their own segments whose entries
		// the replay kept for their accepted loss (Stream.AcceptLoss places
		// them): checkpoints stop while any is held, and resume once none
		// is and nothing blocks them.
		held map[*Stream]error
	}
	failedErr atomic.Pointer[error]
	// stall is the WouldBlock(Admission) the WAL's own stream answers
	// while it cannot take entries (its next segment file cannot be
	// prepared: a full disk, EIO): appends see it, and durable waiters
	// get it instead of waiting for a commit that cannot happen yet.
	stall atomic.Pointer[error]
	// queued is the queue's size in bytes; full is set when an append was
	// refused for it, so that the round that takes the queue wakes every
	// stream's appenders.
	queued atomic.Int64
	full   atomic.Bool
	kick   chan struct{}
	// cpKick wakes the checkpointer for the WAL record in cpEnd: a
	// checkpoint syncs every stream's segments, which no round should wait
	// for.
	cpKick chan struct{}
	cpEnd  atomic.Uint64
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	// waiters counts the callers in waitWAL: one alone commits inline.
	waiters atomic.Int32
	// roundMu serialises rounds: the committer's and an inline one's. It
	// guards the fields below (replay uses them before the committer
	// starts).
	roundMu         sync.Mutex
	spare           walQueue
	payloads        [][]byte
	last            RecordID // the WAL's newest record
	sinceCheckpoint int64

	// refused holds the streams the replay refused appends to, and why
	// (the open's goroutine only, before the committer starts): an
	// accepted loss lifts exactly those refusals.
	refused map[*Stream]error
}

func (w *nodeWAL) err() error {
	if e := w.failedErr.Load(); e != nil {
		return *e
	}
	return nil
}

// add queues a record the stream s has just appended; s.mu is held.
func (w *nodeWAL) add(s *Stream, id RecordID, capacity int64, p []byte, ts int64, ext uint64) {
	e := walEntry{stream: s.id, id: id, capacity: capacity, ts: ts, ext: ext, payload: p}
	it := walItem{s: s, mark: uint64(id) + uint64(segment.RecordSpan(len(p))), pos: s.mu.written, recs: s.mu.records}
	w.mu.Lock()
	q := &w.mu.queue
	it.start = len(q.enc)
	q.enc = e.appendEncoded(q.enc)
	it.end = len(q.enc)
	q.items = append(q.items, it)
	w.queued.Store(int64(len(q.enc)))
	w.mu.Unlock()
	kick(w.kick)
}

// admit refuses an append while the queue is over maxWALQueue.
func (w *nodeWAL) admit() *WouldBlock {
	if w.queued.Load() < maxWALQueue {
		return nil
	}
	w.full.Store(true)
	kick(w.kick)
	return &WouldBlock{Kind: Flush, Cause: errWALQueueFull}
}

var errWALQueueFull = errors.New("node WAL: queue full (the disk is slower than the appends)")

func (w *nodeWAL) start() {
	w.ctx, w.cancel = context.WithCancel(context.Background())
	w.wg.Add(2)
	go w.run()
	go w.runCheckpoints()
}

// stop ends the committer. What it had not written yet is made durable by
// the streams' own close, which syncs their segments.
func (w *nodeWAL) stop() {
	if w.cancel == nil {
		return
	}
	w.cancel()
	w.wg.Wait()
	w.roundMu.Lock() // an inline round ends with the cancel too: wait for it
	defer w.roundMu.Unlock()
}

func (w *nodeWAL) run() {
	defer w.wg.Done()
	for {
		select {
		case <-w.kick:
		case <-w.ctx.Done():
			return
		}
		// As the stream syncer does: let appenders that are runnable queue
		// their records, so that a round carries a wave, not one record.
		runtime.Gosched()
		w.roundMu.Lock()
		err := w.round(true)
		w.roundMu.Unlock()
		if err != nil {
			if w.ctx.Err() != nil {
				return
			}
			w.fail(err)
			return
		}
	}
}

// commitInline runs a round on the caller's goroutine when none is
// running and the caller is the only one in the store waiting for the WAL:
// handing the round to the committer and back costs two goroutine
// wake-ups, most of a lone durable append's CPU (as for a stream's own
// sync round, syncInline). With several waiters the committer gathers
// them into one round. It reports whether it ran a round.
func (w *nodeWAL) commitInline() bool {
	if w.waiters.Load() > 1 || !w.roundMu.TryLock() {
		return false
	}
	defer w.roundMu.Unlock()
	if w.ctx.Err() != nil {
		return false // closing: the streams' close syncs their segments
	}
	if err := w.round(false); err != nil && w.ctx.Err() == nil {
		w.fail(err)
	}
	return true
}

// round writes the queue to the WAL, syncs it and acknowledges every
// record in it. With wait false (an inline round) it does not wait out a
// WAL that cannot take entries now: what it could not write goes back to
// the front of the queue, for the committer.
func (w *nodeWAL) round(wait bool) error {
	w.mu.Lock()
	q := w.mu.queue
	w.mu.queue = walQueue{items: w.spare.items[:0], enc: w.spare.enc[:0]}
	w.queued.Store(0)
	w.mu.Unlock()
	// The spare now backs the queue: forget it, so that a round that ends
	// early (a failed write) cannot hand the same buffers out twice — the
	// next round would read the queue's array while appenders fill it
	// (a data race TestPowerLossNodeWAL found under -race).
	w.spare = walQueue{}
	if w.full.Swap(false) {
		for _, s := range w.st.openStreams() {
			s.durableN.broadcast() // appenders refused by admit wait on it
		}
	}
	batch := q.items
	if len(batch) == 0 {
		w.spare = q
		return nil
	}
	w.payloads = w.payloads[:0]
	for i := range batch {
		w.payloads = append(w.payloads, q.enc[batch[i].start:batch[i].end])
	}
	start := time.Now()
	n, err := w.write(w.payloads, wait)
	if err != nil {
		return err
	}
	if n < len(batch) {
		w.requeue(q, n)
		batch = batch[:n]
	}
	size := 0
	if n > 0 {
		size = batch[n-1].end
		w.m.commitLatency.Observe(time.Since(start).Seconds())
		w.m.commits.Inc()
		w.m.records.Add(float64(n))
		w.m.bytes.Add(float64(size))
	}
	// Later items of a stream cover its earlier ones.
	for i := len(batch) - 1; i >= 0; i-- {
		it := &batch[i]
		if it.s.walMark.Load() < it.mark {
			it.s.walAck(it.mark, it.pos, it.recs)
		}
	}
	w.sinceCheckpoint += int64(size)
	clear(q.items) // no stream pointers kept past the round
	w.spare = walQueue{items: q.items[:0], enc: q.enc[:0]}
	if cap(q.enc) > maxSpareQueue {
		w.spare.enc = nil // a burst's buffer is not kept for good
	}
	if w.sinceCheckpoint >= w.st.cfg.WALCheckpointBytes {
		w.sinceCheckpoint = 0
		w.cpEnd.Store(uint64(w.last))
		kick(w.cpKick)
	}
	return nil
}

// requeue puts the items of q from index from back at the front of the
// queue, before what was queued since, and wakes the committer.
func (w *nodeWAL) requeue(q walQueue, from int) {
	rest := q.items[from:]
	w.mu.Lock()
	cur := w.mu.queue
	nq := walQueue{items: make([]walItem, 0, len(rest)+len(cur.items)),
		enc: make([]byte, 0, len(q.enc)-rest[0].start+len(cur.enc))}
	for _, part := range []walQueue{{items: rest, enc: q.enc}, cur} {
		for _, it := range part.items {
			n := len(nq.enc)
			nq.enc = append(nq.enc, part.enc[it.start:it.end]...)
			it.start, it.end = n, len(nq.enc)
			nq.items = append(nq.items, it)
		}
	}
	w.mu.queue = nq
	w.queued.Store(int64(len(nq.enc)))
	w.mu.Unlock()
	kick(w.kick)
}

// write appends encoded entries to the WAL's stream, in order, and syncs
// what it appended; it returns how many it appended. While the WAL's
// stream cannot take them it waits (the committer), or returns with what
// it has (wait false).
func (w *nodeWAL) write(payloads [][]byte, wait bool) (int, error) {
	n := 0
	for n < len(payloads) {
		state := w.s.stateN.wait()
		ids, err := w.s.AppendBatch(payloads[n:], AppendOptions{})
		if len(ids) > 0 {
			w.last = ids[len(ids)-1]
		}
		n += len(ids)
		if err == nil {
			break
		}
		if !errors.Is(err, ErrWouldBlock) {
			return n, fmt.Errorf("node WAL: append: %w", err)
		}
		if KindOf(err) == Admission {
			w.setStall(fmt.Errorf("node WAL: %w", err))
		}
		if !wait {
			break
		}
		select {
		case <-state:
		case <-time.After(prepRetry):
		case <-w.ctx.Done():
			return n, fmt.Errorf("node WAL: append: %w", w.ctx.Err())
		}
	}
	if n == len(payloads) {
		w.setStall(nil)
	}
	if n == 0 {
		return 0, nil
	}
	if err := w.s.FlushAll(w.ctx); err != nil {
		return n, fmt.Errorf("node WAL: sync: %w", err)
	}
	return n, nil
}

func (w *nodeWAL) stalled() error {
	if e := w.stall.Load(); e != nil {
		return *e
	}
	return nil
}

// setStall sets or clears the stall and wakes the streams' appenders and
// waiters, who check it.
func (w *nodeWAL) setStall(err error) {
	var old *error
	if err == nil {
		if old = w.stall.Swap(nil); old == nil {
			return
		}
	} else {
		w.stall.Store(&err)
		w.log.Warn("node WAL cannot take entries; appends wait", "error", err)
	}
	for _, s := range w.st.openStreams() {
		s.durableN.broadcast()
		s.stateN.broadcast()
	}
}

// fail stops the WAL for good (until the store is reopened): appends to
// every stream fail, and their waiters are woken.
func (w *nodeWAL) fail(err error) {
	err = fmt.Errorf("%w: %w", ErrStreamFailed, err)
	if !w.failedErr.CompareAndSwap(nil, &err) {
		return
	}
	w.m.failures.Inc()
	w.log.Error("node WAL stopped after a durability failure; reopen the store to recover from disk", "error", err)
	for _, s := range w.st.openStreams() {
		s.durableN.broadcast()
		s.stateN.broadcast() // appenders waiting out a stall (WouldBlock(Admission)) wait on it
	}
}

// refuse makes s refuse appends because of the WAL's replay. Its close
// then writes no clean mark: a clean mark would say that no id past its
// tail was handed out, and the WAL may have handed some out and lost them
// (an accepted loss reserves them only if the mark still does).
func (w *nodeWAL) refuse(s *Stream, err error) {
	if w.refused == nil {
		w.refused = map[*Stream]error{}
	}
	s.mu.Lock()
	s.mu.abandoned = true
	s.mu.Unlock()
	if _, ok := w.refused[s]; !ok && s.refuseAppendsWith(err) {
		w.refused[s] = err
	}
}

// blockedErr says why checkpoints stopped, or nil.
func (w *nodeWAL) blockedErr() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.blockedLocked()
}

func (w *nodeWAL) blockedLocked() error {
	if w.mu.blocked != nil {
		return w.mu.blocked
	}
	for _, err := range w.mu.held {
		return err
	}
	return nil
}

// hold stops checkpoints until s's entries, kept for its accepted loss,
// are placed (release).
func (w *nodeWAL) hold(s *Stream, err error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.mu.held == nil {
		w.mu.held = map[*Stream]error{}
	}
	if _, ok := w.mu.held[s]; !ok {
		w.mu.held[s] = err
		w.m.blocked.Set(1)
		w.log.Error("node WAL checkpoints stopped: it keeps a damaged stream's entries for its accepted loss", "stream_id", uint64(s.id), "error", err)
	}
}

// release lets checkpoints go on once s's kept entries are placed.
func (w *nodeWAL) release(s *Stream) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if _, ok := w.mu.held[s]; !ok {
		return
	}
	delete(w.mu.held, s)
	if w.blockedLocked() == nil {
		w.m.blocked.Set(0)
		w.log.Info("node WAL checkpoints resume: the damaged stream's entries are in its segment", "stream_id", uint64(s.id))
	}
}

// block stops checkpoints: the WAL keeps every entry until the store is
// reopened.
func (w *nodeWAL) block(err error) {
	w.mu.Lock()
	first := w.mu.blocked == nil
	if first {
		w.mu.blocked = err
	}
	w.mu.Unlock()
	if first {
		w.m.blocked.Set(1)
		w.log.Error("node WAL checkpoints stopped: the WAL keeps every entry until the store is reopened", "error", err)
	}
}
