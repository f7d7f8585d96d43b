package core

import (
	"fmt"
	"time"

	"github.com/aof2/aof2/core/types"
)

// syncLoop is the stream's syncer: it runs sync rounds (group commit) and
// seals. All durability work of a stream happens on this goroutine, in
// order, so a later segment is never durable before an earlier one.
func (s *Stream) syncLoop() {
	defer s.wg.Done()
	var tick <-chan time.Time
	if s.cfg.Sync == SyncInterval {
		t := time.NewTicker(s.cfg.FlushInterval)
		defer t.Stop()
		tick = t.C
	}
	for {
		select {
		case <-s.syncKick:
		case <-tick:
		case <-s.done:
			return
		}
		if s.syncRound() == nil {
			_ = s.sealPending()
		}
	}
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
	var mark uint64
	var activeEnd int64
	if active != nil {
		activeEnd = active.w.End()
		mark = uint64(types.MakeRecordID(active.id, uint32(activeEnd)))
	}
	s.mu.Unlock()

	if mark <= s.durableMark.Load() && (sealing == nil || sealing.w.Synced() == sealing.w.End()) {
		return nil
	}
	start := time.Now()
	before := s.durablePos.Load()
	for _, g := range []*seg{sealing, active} {
		if g == nil {
			continue
		}
		end := g.w.End()
		if g == active {
			end = activeEnd
		}
		if err := s.syncSegment(g, end); err != nil {
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
