package core

import (
	"fmt"
	"path/filepath"
	"time"

	"github.com/aof2/aof2/core/segment"
	"github.com/aof2/aof2/core/types"
)

// The durable mark (core/segment/mark.go) is what recovery knows for sure
// about the active segment and the segment ids in use:
//
//   - how far the newest segment is durable: a record that fails its
//     checksum before that offset is damage, never a torn write, and is
//     never dropped. Sync rounds refresh it at most every
//     Config.DurableMarkInterval, and at once when the newest segment
//     changes (so a mark naming a segment also proves its directory entry
//     durable);
//   - the highest segment id that may have taken records: the preparer
//     records an id before its segment can be activated, so a crash that
//     loses a segment file never lets its ids (durable or not) be handed
//     out again;
//   - whether the stream was closed cleanly: only then are the ids past the
//     tail's last record certain never to have been handed out, and only
//     then does the stream go on appending to its tail segment instead of
//     sealing it and starting the next one.

func (s *Stream) markPath() string { return filepath.Join(s.segDir, segment.MarkFile) }

// openMark opens the mark file for writing, continuing after last.
func (s *Stream) openMark(last *segment.Mark) error {
	w, err := segment.OpenMarkWriter(s.cfg.FS, s.markPath(), last)
	if err != nil {
		return fmt.Errorf("stream %d: %w", s.id, err)
	}
	s.markMu.Lock()
	defer s.markMu.Unlock()
	s.mark.w = w
	if last != nil {
		s.mark.state = *last
		s.mark.state.Flags &^= segment.MarkClean
	}
	return nil
}

// writeMarkLocked writes the current state; s.markMu is held.
func (s *Stream) writeMarkLocked() error {
	if s.mark.w == nil {
		return nil
	}
	if err := s.mark.w.Write(s.mark.state); err != nil {
		return fmt.Errorf("stream %d: durable mark: %w", s.id, err)
	}
	s.mark.at = time.Now()
	return nil
}

// markDurable records that records [0, end) (records of them) of segment
// id are durable, when the newest segment changed or the interval passed.
// The mark is a proof for recovery, not data: a failed write (a full disk,
// an I/O error on the mark file) leaves the previous, smaller proof in
// place and is retried by the next round; the records stay durable.
func (s *Stream) markDurable(id types.SegmentID, end int64, records uint64) {
	s.markMu.Lock()
	st := &s.mark.state
	changed := st.SegmentID != id || s.mark.failing // a failed write is retried at once
	if !changed && (uint64(end) == st.DurableBytes || time.Since(s.mark.at) < s.cfg.DurableMarkInterval) {
		s.markMu.Unlock()
		return
	}
	prevID, prevBytes, prevRecs := st.SegmentID, st.DurableBytes, st.Records
	st.SegmentID, st.DurableBytes, st.Records = id, uint64(end), records
	st.Reserved = max(st.Reserved, id)
	err := s.writeMarkLocked()
	if err != nil {
		// Keep the proof last written (a reservation or the clean mark
		// writes this state too: it must never prove less than the file
		// does); s.mark.failing has the next round try again.
		st.SegmentID, st.DurableBytes, st.Records = prevID, prevBytes, prevRecs
		if !s.mark.failing {
			s.log.Warn("could not write the durable mark; recovery proves less until it is written again", "error", err)
		}
	} else if s.mark.failing {
		s.log.Info("durable mark written again")
	}
	s.mark.failing = err != nil
	s.markMu.Unlock()
}

// reserve records that segment id may take records, before it can.
func (s *Stream) reserve(id types.SegmentID) error {
	s.markMu.Lock()
	defer s.markMu.Unlock()
	if s.mark.state.Reserved >= id {
		return nil
	}
	prev := s.mark.state.Reserved
	s.mark.state.Reserved = id
	if err := s.writeMarkLocked(); err != nil {
		// Not durable: the next attempt must write it again.
		s.mark.state.Reserved = prev
		return err
	}
	return nil
}

// markClosed writes the clean mark of Close: the newest segment's records
// are all durable and nothing past them was handed out. newest is the
// stream's last segment (nil: none).
func (s *Stream) markClosed(newest *seg) error {
	s.markMu.Lock()
	defer s.markMu.Unlock()
	if s.mark.w == nil {
		return nil
	}
	st := &s.mark.state
	if newest != nil {
		st.SegmentID, st.DurableBytes, st.Records = newest.id, uint64(newest.visible.Load()), newest.count.Load()
		st.Reserved = newest.id // a prepared next segment was discarded, never activated
	}
	st.Flags |= segment.MarkClean
	err := s.writeMarkLocked()
	st.Flags &^= segment.MarkClean
	return err
}

func (s *Stream) closeMark() error {
	s.markMu.Lock()
	defer s.markMu.Unlock()
	if s.mark.w == nil {
		return nil
	}
	err := s.mark.w.Close()
	s.mark.w = nil
	return err
}
