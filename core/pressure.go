package core

import (
	"errors"
	"fmt"
	"time"
)

// Progress under tier-0 pressure (docs/adr-tier0.md, "Progress: no request
// sequence needs an operator"). The tier-0 budget never evicts an active
// segment, so the engine must not keep segments active that could leave:
//
//   - a rollover whose admission is refused seals the full segment anyway
//     (sealRefusedLocked), so that it can be compressed, uploaded and
//     evicted and the next admission succeeds;
//   - the coordinator asks for the seal of an idle stream's active segment
//     when a refused activation needs its space (SealActive);
//   - a stream waiting for disk space says so (WaitingForSpace), so that
//     the coordinator evicts what other tiers hold.

// sealRefusedLocked moves the full active segment to the sealing slot
// after its successor's admission was refused. The syncer seals it; the
// writer's next attempt waits for that seal, then asks for admission
// again. An error is the stream's failure.
func (s *Stream) sealRefusedLocked() error {
	a := s.mu.active
	if a == nil || a.w.Count() == 0 || s.mu.sealing != nil {
		return nil
	}
	s.log.Debug("admission refused: sealing the full segment so that it can leave tier 0", "segment_id", uint64(a.id))
	return s.startSealLocked(a)
}

// startSealLocked hands the active segment a to the syncer to seal.
func (s *Stream) startSealLocked(a *seg) error {
	if err := a.w.Push(); err != nil {
		return s.failLocked(fmt.Errorf("push %s: %w", a.path, err))
	}
	a.publish()
	s.mu.sealing, s.mu.active = a, nil
	s.kickSync() // starts the syncer if it went idle: nothing else would
	s.stateN.broadcast()
	return nil
}

// ActiveSince reports the stream's active segment and when its first
// record was appended (or recovery found the segment holding records: an
// upper bound, on the clock of this process); ok is false while no active
// segment holds a record. The coordinator seals a segment this old
// (segment.max_age), bounding what a lost disk can cost
// (docs/tiering.md#recovery-point).
func (s *Stream) ActiveSince() (id SegmentID, since time.Time, ok bool) {
	s.mu.Lock()
	a := s.mu.active
	s.mu.Unlock()
	if a == nil {
		return 0, time.Time{}, false
	}
	at := a.firstAt.Load()
	if at == 0 {
		return 0, time.Time{}, false
	}
	return a.id, monoStart.Add(time.Duration(at - 1)), true
}

// ErrNothingToSeal: SealActive was asked for a segment that is the active
// one but holds no record (a seal needs one); the next append fills it.
var ErrNothingToSeal = errors.New("aof2: the active segment holds no record")

// SealActive seals segment id if it is still the stream's active segment,
// without waiting for the seal (the syncer runs it, as for Seal); the
// stream's next append activates a new segment. The coordinator calls it
// when a refused activation needs the tier-0 space of an idle stream. It
// returns nil when the segment is sealed, being sealed or no longer active;
// an error matching ErrSegmentBusy when another seal of the stream is
// still running (ask again later); ErrNothingToSeal for an empty segment;
// the stream's error when it failed, was closed or refuses appends.
func (s *Stream) SealActive(id SegmentID) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.usableLocked(); err != nil {
		return err
	}
	a := s.mu.active
	switch {
	case a == nil || a.id != id:
		return nil
	case a.w.Count() == 0:
		return fmt.Errorf("stream %d: seal segment %d: %w", s.id, id, ErrNothingToSeal)
	case s.mu.sealing != nil:
		s.kickSync()
		return fmt.Errorf("stream %d: seal segment %d: the previous seal is still running: %w", s.id, id, ErrSegmentBusy)
	}
	return s.startSealLocked(a)
}

// WaitingForSpace reports whether the stream is waiting for disk space —
// its next segment could not be prepared, or its pending seal could not
// write its metadata, because the file system is full (ErrNoSpace) — and
// how many bytes would let it go on (a segment's capacity for a
// preparation, a little for a seal). The coordinator then evicts segments
// other tiers hold (docs/tiering.md#disk-pressure).
func (s *Stream) WaitingForSpace() (need int64, waiting bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.mu.failed != nil || s.mu.closed {
		return 0, false
	}
	if errors.Is(s.mu.prepErr, ErrNoSpace) {
		need = s.cfg.SegmentSize
	}
	if errors.Is(s.mu.sealErr, ErrNoSpace) {
		need = max(need, 1)
	}
	return need, need > 0
}
