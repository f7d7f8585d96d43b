package core

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/aof2/aof2/core/segment"
	"github.com/aof2/aof2/core/vfs"
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
	}
	failedErr atomic.Pointer[error]
	// stall is the WouldBlock(Admission) the WAL's own stream answers
	// while it cannot take entries (its next segment file cannot be
	// prepared: a full disk, EIO): appends see it, and durable waiters
	// get it instead of waiting for a commit that cannot happen yet.
	stall atomic.Pointer[error]
	kick  chan struct{}
	// cpKick wakes the checkpointer for the WAL record in cpEnd: a
	// checkpoint syncs every stream's segments, which no round should wait
	// for.
	cpKick chan struct{}
	cpEnd  atomic.Uint64
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	// Owned by the committer goroutine (and by replay, before it starts).
	spare           walQueue
	payloads        [][]byte
	last            RecordID // the WAL's newest record
	sinceCheckpoint int64
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
	w.mu.Unlock()
	kick(w.kick)
}

func (w *nodeWAL) start() {
	w.ctx, w.cancel = context.WithCancel(context.Background())
	w.wg.Add(2)
	go w.run()
	go w.runCheckpoints()
}

// runCheckpoints is the checkpointer goroutine, stopped by stop.
func (w *nodeWAL) runCheckpoints() {
	defer w.wg.Done()
	for {
		select {
		case <-w.cpKick:
			if err := w.checkpoint(RecordID(w.cpEnd.Load())); err != nil {
				w.block(err)
			}
		case <-w.ctx.Done():
			return
		}
	}
}

// stop ends the committer. What it had not written yet is made durable by
// the streams' own close, which syncs their segments.
func (w *nodeWAL) stop() {
	if w.cancel == nil {
		return
	}
	w.cancel()
	w.wg.Wait()
}

// close closes the WAL's stream after the user streams closed. When they
// all closed cleanly their segments hold everything the WAL does, and the
// WAL's files are removed: a WAL on disk then always means records the
// segments may lack (checkNoWAL).
func (w *nodeWAL) close(clean bool) error {
	w.mu.Lock()
	blocked := w.mu.blocked
	w.mu.Unlock()
	err := w.s.close()
	if err != nil {
		return fmt.Errorf("node WAL: close: %w", err)
	}
	if clean && blocked == nil && w.err() == nil {
		if err := removeWAL(w.st.cfg.FS, w.st.dir); err != nil {
			return fmt.Errorf("node WAL: remove after a clean close: %w", err)
		}
	}
	return nil
}

// removeWAL deletes the WAL's checkpoint, then its durable mark and
// pointer, then its segment files oldest first: a crash in between leaves
// the newest segments and no checkpoint, which replays them whole (every
// record checked against the segments and skipped), and never a mark that
// names a segment whose file is gone (which would read as damage).
func removeWAL(fsys vfs.FS, dir string) error {
	walDir, cpPath := walPaths(dir)
	if err := fsys.Remove(cpPath); err != nil && !vfs.IsNotExist(err) {
		return err
	}
	if err := fsys.SyncDir(walDir); err != nil {
		return err
	}
	segDir := filepath.Join(walDir, "segments")
	names, err := fsys.List(segDir)
	if err != nil {
		return err
	}
	slices.SortStableFunc(names, func(a, b string) int {
		_, segA := segment.ParseFileName(a)
		_, segB := segment.ParseFileName(b)
		switch {
		case segA == segB:
			return strings.Compare(a, b)
		case segB:
			return -1 // everything else goes first
		}
		return 1
	})
	for _, n := range names {
		if err := fsys.Remove(filepath.Join(segDir, n)); err != nil && !vfs.IsNotExist(err) {
			return err
		}
	}
	return fsys.SyncDir(segDir)
}

// ErrWALPresent: the store holds a node WAL that may have records its
// streams' segments lack, and it is opened without Config.NodeWAL.
var ErrWALPresent = errors.New("the store's node WAL may hold acknowledged records its segments lack: open it with the node WAL on (node_wal = true) once, which replays them; a clean close then removes the WAL")

// checkNoWAL refuses to open without the node WAL a store whose WAL was
// not removed by a clean close.
func checkNoWAL(fsys vfs.FS, dir string) error {
	walDir, _ := walPaths(dir)
	names, err := fsys.List(filepath.Join(walDir, "segments"))
	if vfs.IsNotExist(err) {
		return nil
	}
	if err != nil {
		return err
	}
	for _, n := range names {
		if _, ok := segment.ParseFileName(n); ok {
			return fmt.Errorf("%w (%s)", ErrWALPresent, walDir)
		}
	}
	return nil
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
		if err := w.round(); err != nil {
			if w.ctx.Err() != nil {
				return
			}
			w.fail(err)
			return
		}
	}
}

// round writes the queue to the WAL, syncs it and acknowledges every
// record in it.
func (w *nodeWAL) round() error {
	w.mu.Lock()
	q := w.mu.queue
	w.mu.queue = walQueue{items: w.spare.items[:0], enc: w.spare.enc[:0]}
	w.mu.Unlock()
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
	if err := w.write(w.payloads); err != nil {
		return err
	}
	size := len(q.enc)
	w.m.commitLatency.Observe(time.Since(start).Seconds())
	w.m.commits.Inc()
	w.m.records.Add(float64(len(batch)))
	w.m.bytes.Add(float64(size))
	// Later items of a stream cover its earlier ones.
	for i := len(batch) - 1; i >= 0; i-- {
		it := &batch[i]
		if it.s.walMark.Load() < it.mark {
			it.s.walAck(it.mark, it.pos, it.recs)
		}
	}
	w.sinceCheckpoint += int64(size)
	clear(batch) // no stream pointers kept past the round
	w.spare = walQueue{items: batch[:0], enc: q.enc[:0]}
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

// write appends encoded entries to the WAL's stream, in order, and syncs
// it.
func (w *nodeWAL) write(payloads [][]byte) error {
	for len(payloads) > 0 {
		state := w.s.stateN.wait()
		ids, err := w.s.AppendBatch(payloads, AppendOptions{})
		if len(ids) > 0 {
			w.last = ids[len(ids)-1]
		}
		payloads = payloads[len(ids):]
		if err == nil {
			break
		}
		if !errors.Is(err, ErrWouldBlock) {
			return fmt.Errorf("node WAL: append: %w", err)
		}
		if KindOf(err) == Admission {
			w.setStall(fmt.Errorf("node WAL: %w", err))
		}
		select {
		case <-state:
		case <-time.After(prepRetry):
		case <-w.ctx.Done():
			return fmt.Errorf("node WAL: append: %w", w.ctx.Err())
		}
	}
	w.setStall(nil)
	if err := w.s.FlushAll(w.ctx); err != nil {
		return fmt.Errorf("node WAL: sync: %w", err)
	}
	return nil
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

// checkpoint makes every stream's segments hold what the WAL holds up to
// its record end (durable), records that in the checkpoint file (replay
// starts after it), and drops the WAL's segments wholly before it.
func (w *nodeWAL) checkpoint(end RecordID) error {
	w.mu.Lock()
	blocked := w.mu.blocked
	w.mu.Unlock()
	if blocked != nil || end == 0 {
		return nil
	}
	// Every record whose entry is at or before end was appended to its
	// segment before the entry was queued: syncing each segment to its
	// end now covers it.
	for _, s := range w.st.openStreams() {
		if err := s.syncSegments(); err != nil {
			return fmt.Errorf("node WAL checkpoint: %w", err)
		}
	}
	if err := vfs.WriteFileAtomic(w.st.cfg.FS, w.cpPath, encodeWALCheckpoint(end)); err != nil {
		return fmt.Errorf("node WAL checkpoint: %w", err)
	}
	w.m.checkpoints.Inc()
	for {
		segs := w.s.SegmentList()
		if len(segs) < 2 || segs[0].ID >= end.Segment() {
			return nil
		}
		if err := w.s.DropHead(segs[0].ID); err != nil {
			w.log.Warn("node WAL: could not drop a segment before the checkpoint", "segment_id", uint64(segs[0].ID), "error", err)
			return nil
		}
	}
}

// walAck records that the stream's records before mark are durable in
// the WAL and makes them readable.
func (s *Stream) walAck(mark, pos, recs uint64) {
	s.mu.Lock()
	if s.mu.failed == nil && !s.mu.closed {
		if a := s.mu.active; a != nil && a.id == RecordID(mark).Segment() {
			// Readers read the file: staged bytes go out first. (A segment
			// that stopped being active was pushed whole then.)
			if err := a.w.Push(); err != nil {
				_ = s.failLocked(fmt.Errorf("push %s: %w", a.path, err))
				s.mu.Unlock()
				return
			}
			a.publish()
		}
	}
	s.mu.Unlock()
	casMax(&s.publishedMark, mark)
	casMax(&s.walPos, pos)
	casMax(&s.walRecs, recs)
	casMax(&s.walMark, mark)
	s.durableN.broadcast()
}

func casMax(a *atomic.Uint64, v uint64) {
	for {
		old := a.Load()
		if v <= old || a.CompareAndSwap(old, v) {
			return
		}
	}
}

// waitWAL is waitDurable under the node WAL: the committer acknowledges.
func (s *Stream) waitWAL(ctx context.Context, mark uint64) error {
	for {
		ch := s.durableN.wait()
		if max(s.durableMark.Load(), s.walMark.Load()) > mark {
			return nil
		}
		if err := s.Err(); err != nil {
			return err
		}
		if err := s.wal.err(); err != nil {
			return fmt.Errorf("stream %d: %w", s.id, err)
		}
		if err := s.wal.stalled(); err != nil {
			return fmt.Errorf("stream %d: flush: %w", s.id, err)
		}
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

// syncSegments makes everything appended to the stream durable in its
// segments (a WAL checkpoint). A closed stream synced itself.
func (s *Stream) syncSegments() error {
	s.roundMu.Lock()
	defer s.roundMu.Unlock()
	s.mu.Lock()
	closed := s.mu.closed
	s.mu.Unlock()
	if closed {
		return nil
	}
	return s.syncRound()
}

// openStreams lists the store's open streams.
func (st *Store) openStreams() []*Stream {
	st.mu.Lock()
	defer st.mu.Unlock()
	out := make([]*Stream, 0, len(st.mu.streams))
	for _, s := range st.mu.streams {
		out = append(out, s)
	}
	return out
}

// walConfigs derives, from the store's configuration, the one its user
// streams run with under the node WAL (segments synced at seal, checkpoint
// and MaxUnflushedBytes; tails resumed after a crash for the replay) and
// the WAL stream's own (sync always, fixed-size segments, no manifest, no
// tiering).
func walConfigs(c Config) (streams, wal Config) {
	streams, wal = c, c
	streams.Sync, streams.TailReplayed, streams.nodeWAL = SyncNone, true, true
	// Only the committer's FlushAll syncs, on its own goroutine: no
	// syncer round races it for the same bytes.
	wal.NodeWAL, wal.Sync = false, SyncNone
	wal.InitialSegmentSize = c.SegmentSize
	wal.SegmentTargetBytes = 0
	wal.MaxUnflushedBytes = -1
	wal.NoManifest, wal.Tiering, wal.Registerer = true, nil, nil
	wal.Logger = c.Logger.Named("wal")
	return streams, wal
}

func walPaths(dir string) (walDir, cpPath string) {
	walDir = filepath.Join(dir, walDirName)
	return walDir, filepath.Join(walDir, walCheckpointFile)
}
