package core

import (
	"fmt"
	"runtime"
	"time"

	"github.com/aof2/aof2/core/types"
)

// syncLoop is the stream's syncer: it runs sync rounds (group commit) and
// seals. Durability work of a stream is serialised by roundMu, in order, so
// a later segment is never durable before an earlier one; it runs on this
// goroutine, except that a Flush that waits alone may run the round itself
// (see syncInline). The syncer is started by kickSync when
// there is work and exits once it has had none for Config.syncLinger (see
// stopSyncer): an idle stream has no goroutine and no ticker, a busy one
// keeps its syncer and its staging buffer.
func (s *Stream) syncLoop() {
	defer s.wg.Done()
	var tick <-chan time.Time
	if s.cfg.Sync == SyncInterval {
		t := time.NewTicker(s.cfg.FlushInterval)
		defer t.Stop()
		tick = t.C
	}
	linger := time.NewTimer(s.cfg.syncLinger)
	defer linger.Stop()
	var retry <-chan time.Time
	for {
		select {
		case <-s.syncKick:
		case <-tick:
		case <-retry:
		case <-linger.C:
			if s.syncIdle() && s.stopSyncer() {
				return
			}
			linger.Reset(s.cfg.syncLinger)
			continue
		case <-s.done:
			return
		}
		retry = nil
		// Let appenders that are already runnable (typically the waiters
		// the previous round just woke) append before this round captures
		// its end: rounds then carry a whole wave of records instead of the
		// first one, at the cost of one scheduler yield.
		runtime.Gosched()
		s.roundMu.Lock()
		before := s.durableMark.Load()
		blocked := s.syncRound() == nil && s.sealPending() == errSealBlocked
		s.roundMu.Unlock()
		if blocked {
			retry = time.After(prepRetry)
		}
		if blocked || s.durableMark.Load() != before {
			linger.Reset(s.cfg.syncLinger) // it had work: not idle
		}
	}
}

// defaultSyncLinger is how long a syncer with nothing to do waits for work
// before it exits (Config.syncLinger).
const defaultSyncLinger = 500 * time.Millisecond

// kickSync wakes the syncer, starting it if it is not running.
func (s *Stream) kickSync() {
	kick(s.syncKick)
	if !s.syncRunning.Load() {
		s.startSyncer()
	}
}

// startSyncer starts the syncer unless it runs or the stream is closing.
func (s *Stream) startSyncer() {
	s.runMu.Lock()
	defer s.runMu.Unlock()
	if s.stopping || !s.syncRunning.CompareAndSwap(false, true) {
		return
	}
	s.wg.Add(1)
	go s.syncLoop()
}

// syncIdle reports whether the syncer has nothing to do until the next
// kick: no seal pending and, under SyncInterval, no bytes left for a tick
// to sync. An idle active segment drops its pwrite staging buffer (an
// append allocates a new one).
func (s *Stream) syncIdle() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.mu.failed != nil {
		return true
	}
	if s.mu.sealing != nil || (s.cfg.Sync == SyncInterval && s.mu.written > s.durablePos.Load()) {
		return false
	}
	if a := s.mu.active; a != nil {
		a.w.ReleaseBuffer()
	}
	return true
}

// stopSyncer marks the syncer stopped and reports whether it may exit. A
// kick (or, under SyncInterval, an append) that came in meanwhile either
// saw it still running, and is caught by the checks after the mark, or saw
// it stopped and started a new one: then this one exits.
func (s *Stream) stopSyncer() bool {
	s.syncRunning.Store(false)
	if len(s.syncKick) == 0 && s.syncIdle() {
		return true
	}
	return !s.syncRunning.CompareAndSwap(false, true)
}

// syncRound makes everything appended before it started durable: first the
// rest of the sealing segment, then the active one. Waiters are woken once
// the round is done; appends continue meanwhile.
func (s *Stream) syncRound() error {
	s.mu.Lock()
	if s.mu.failed != nil {
		s.mu.Unlock()
		return s.mu.failed
	}
	sealing, active := s.mu.sealing, s.mu.active
	if active != nil {
		if err := active.w.Push(); err != nil {
			err = s.failLocked(fmt.Errorf("push %s: %w", active.path, err))
			s.mu.Unlock()
			return err
		}
		active.publish()
	}
	pos, recs := s.mu.written, s.mu.records
	// Ends are read under the lock: the active one moves with every append.
	type target struct {
		g       *seg
		end     int64
		records uint64
	}
	var targets []target
	for _, g := range []*seg{sealing, active} {
		if g != nil {
			targets = append(targets, target{g, g.w.End(), g.w.Count()})
		}
	}
	s.mu.Unlock()
	if len(targets) == 0 {
		return nil
	}
	// The durable mark after this round: the end of the newest segment.
	newest := targets[len(targets)-1]
	mark := uint64(types.MakeRecordID(newest.g.id, uint32(newest.end)))
	if mark <= s.durableMark.Load() && (sealing == nil || sealing.w.Synced() == targets[0].end) {
		return nil
	}
	start := time.Now()
	before := s.durablePos.Load()
	for _, t := range targets {
		if err := s.syncSegment(t.g, t.end); err != nil {
			s.m.flushFailures.Inc()
			return s.fail(err)
		}
	}
	s.durablePos.Store(pos)
	s.durableRecs.Store(recs)
	s.durableMark.Store(mark)
	s.durableN.broadcast()
	s.m.flushes.Inc()
	s.m.flushBytes.Add(float64(pos - before))
	s.m.flushLatency.Observe(time.Since(start).Seconds())
	for _, t := range targets {
		t.g.w.CatchUpCRC()
	}
	s.markDurable(newest.g.id, newest.end, newest.records)
	return nil
}

// syncSegment makes [0,end) of g durable, and its directory entry with it
// the first time.
func (s *Stream) syncSegment(g *seg, end int64) error {
	if end > g.w.Synced() {
		if err := g.w.SyncTo(end); err != nil {
			return err
		}
	}
	if !g.dirSynced {
		if err := s.cfg.FS.SyncDir(s.segDir); err != nil {
			return fmt.Errorf("sync directory %s: %w", s.segDir, err)
		}
		g.dirSynced = true
	}
	return nil
}

// syncInline runs a sync round on the caller's goroutine when no round is
// in progress and nobody else waits for durability: handing the round to
// the syncer and back costs two goroutine wake-ups per flush, which is most
// of a durable append's CPU when each stream has one writer (64 streams
// with one appender each: 10–11 k durable rec/s through the syncer, 19–20 k
// inline; docs/adr-write-path.md). Under SyncAlways, when several callers
// wait, the syncer gathers them into one round (group commit) and is left
// to it: an inline round would capture only the records appended before
// its caller got there. It reports whether it ran a round; errors surface
// through Err.
func (s *Stream) syncInline() bool {
	if (s.cfg.Sync == SyncAlways && s.waiters.Load() > 1) || !s.roundMu.TryLock() {
		return false
	}
	defer s.roundMu.Unlock()
	s.mu.Lock()
	closed := s.mu.closed
	s.mu.Unlock()
	if closed {
		return false // Close runs the last round
	}
	_ = s.syncRound()
	return true
}
