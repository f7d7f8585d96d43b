package core

import (
	"errors"
	"fmt"

	"github.com/aof2/aof2/core/types"
)

// ErrNotReplayed: Publish or RewindDamagedTail on a store whose records do
// not come from a caller's log (Config.TailReplayed off, or the node WAL's
// streams): nothing would give back what they rely on it for.
var ErrNotReplayed = errors.New("aof2: the store's records are not replayed from a caller's log (Config.TailReplayed)")

// Publish makes every record appended so far readable, as a sync would,
// without waiting for one. It is for a caller whose own log already holds
// the records durably and gives them back after a crash (a Raft state
// machine: Config.TailReplayed): readers and tailers see them at once, and
// the engine's syncs go on in the background under the sync policy.
// Durability as Flush, Info and the durable mark report it is unchanged.
func (s *Stream) Publish() error {
	if !s.cfg.TailReplayed || s.cfg.nodeWAL {
		return fmt.Errorf("stream %d: %w", s.id, ErrNotReplayed)
	}
	s.mu.Lock()
	if err := s.usableLocked(); err != nil {
		s.mu.Unlock()
		return err
	}
	var mark uint64
	if g := s.mu.sealing; g != nil {
		// Pushed whole when it stopped being active; its writer belongs
		// to the seal in progress now.
		mark = uint64(types.MakeRecordID(g.id, uint32(g.visible.Load())))
	}
	if a := s.mu.active; a != nil && a.w.Count() > 0 {
		if err := a.w.Push(); err != nil {
			err = s.failLocked(fmt.Errorf("push %s: %w", a.path, err))
			s.mu.Unlock()
			return err
		}
		a.publish()
		mark = uint64(types.MakeRecordID(a.id, uint32(a.w.End())))
	}
	s.mu.Unlock()
	for {
		old := s.publishedMark.Load()
		if mark <= old || s.publishedMark.CompareAndSwap(old, mark) {
			break
		}
	}
	s.durableN.broadcast() // tailers wait on it
	return nil
}
