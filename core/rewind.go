package core

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"slices"

	"github.com/aof2/aof2/core/manifest"
	"github.com/aof2/aof2/core/segment"
	"github.com/aof2/aof2/core/vfs"
)

// Rewinding a damaged tail: under Config.TailReplayed the records of the
// tail segment come from the caller's log (a Raft log: ext_id is the
// entry's index), and the caller gives back whatever the store lacks after
// its last record, at the same ids, as after an unclean shutdown. Damage
// in the tail (a flipped bit, a lost write) is then not a loss when the
// caller's log still holds the entries from the last intact record before
// it: the tail goes back to that record and the log replays the rest. The
// caller decides whether its log reaches that far (LastExtID in Info is
// that record's ext_id while the stream is damaged); the store only
// rewinds. An accepted loss (AcceptLoss) would instead put fillers where
// the records were, and a replica whose segments are byte-identical to its
// peers' would no longer be.

// RewindReport says what RewindDamagedTail did.
type RewindReport struct {
	Stream  StreamID  `json:"stream_id"`
	Segment SegmentID `json:"segment_id"`
	// Offset is where the intact records before the damage end: appends go
	// on there. Records is how many records the segment keeps, LastExtID
	// the ext_id of the last of them (0: none).
	Offset    int64  `json:"offset"`
	Records   uint64 `json:"records"`
	LastExtID uint64 `json:"last_ext_id"`
	// Dropped is how many bytes from Offset on were dropped (their
	// original bytes are in Quarantine, beside the segment), of which
	// IntactAfter records past the damage were intact.
	Dropped     int64  `json:"dropped_bytes"`
	IntactAfter int    `json:"intact_after"`
	Quarantine  string `json:"quarantine,omitempty"`
	Reason      string `json:"reason"`
}

// RewindDamagedTail takes a stream whose tail segment is damaged back to
// the last intact record before the damage, for the caller's log to
// replay the rest (Config.TailReplayed only): the bytes from there to the
// end of what was written are saved in a quarantine file beside the
// segment (<segment file>.damaged-<offset>) and zeroed, the durable mark
// proves no more than what is kept, the segment takes appends again from
// that record on, and the rewind is recorded in the stream's manifest.
// Damage elsewhere (a sealed segment, a lost file) is not rewound.
func (s *Stream) RewindDamagedTail(ctx context.Context) (RewindReport, error) {
	if !s.cfg.TailReplayed || s.cfg.nodeWAL {
		return RewindReport{}, fmt.Errorf("stream %d: rewind: %w", s.id, ErrNotReplayed)
	}
	// Readers are kept off while the tail's file changes under them.
	s.readMu.Lock()
	defer s.readMu.Unlock()
	s.mu.Lock()
	defer s.mu.Unlock()
	var dmg *DamageError
	if !errors.As(s.mu.refused, &dmg) {
		return RewindReport{}, fmt.Errorf("stream %d: rewind: %w", s.id, ErrNotDamaged)
	}
	cat := s.cat.Load()
	g, i := cat.byID(dmg.Segment)
	if g == nil || g.damage == nil || g.damage.lost || i != len(cat.segs)-1 {
		return RewindReport{}, fmt.Errorf("stream %d: rewind: the damage is not in the tail segment's file (segment %d): %w", s.id, dmg.Segment, dmg)
	}
	rep := RewindReport{Stream: s.id, Segment: g.id, Offset: dmg.Offset, Records: g.count.Load(), LastExtID: g.damage.lastExt,
		IntactAfter: len(g.damage.after), Reason: dmg.Reason}
	// The dropped bytes are saved first, the rewind recorded, and only then
	// are they zeroed: a crash in between finds the same damage at the next
	// open and rewinds again.
	if err := s.rewindSave(g, &rep); err != nil {
		return rep, fmt.Errorf("stream %d: rewind segment %d: %w", s.id, g.id, err)
	}
	if blob, err := json.Marshal(rep); err == nil && s.TierLog() != nil {
		if err := s.TierLog().Record(ctx, manifest.CustomEvent{Header: manifest.Header{SegmentID: g.id}, SchemaID: manifest.SchemaTailRewound, Blob: blob}); err != nil {
			return rep, fmt.Errorf("stream %d: rewind: record it: %w", s.id, err)
		}
	}
	w, err := s.rewindReopen(g, &rep)
	if err != nil {
		return rep, fmt.Errorf("stream %d: rewind segment %d: %w", s.id, g.id, err)
	}
	s.markMu.Lock()
	st := &s.mark.state
	st.SegmentID, st.DurableBytes, st.Records = g.id, uint64(w.End()), w.Count()
	err = s.writeMarkLocked()
	s.markMu.Unlock()
	if err != nil {
		// The mark still proves the dropped bytes: the next open would
		// find the tail damaged again, which is where it started.
		_ = w.Close()
		return rep, fmt.Errorf("stream %d: rewind: %w", s.id, err)
	}
	segs := slices.Clone(cat.segs)
	segs[i] = newActiveSeg(w)
	segs[i].dirSynced = true
	s.installLocked(&catalog{segs: segs}, w)
	if s.mu.refused = s.remainingDamageLocked(); s.mu.refused == nil {
		s.m.damaged.Set(0)
	}
	s.log.Warn("damaged tail rewound to its last intact record; the caller's log replays the rest",
		"segment_id", uint64(g.id), "offset", rep.Offset, "records_kept", rep.Records, "last_ext_id", rep.LastExtID,
		"dropped_bytes", rep.Dropped, "intact_after", rep.IntactAfter, "quarantine", rep.Quarantine)
	s.stateN.broadcast()
	return rep, nil
}

// rewindSave checks that the tail's file can be rewound and saves its
// bytes past the intact records in a quarantine file; s.readMu and s.mu
// are held.
func (s *Stream) rewindSave(g *seg, rep *RewindReport) error {
	b, err := vfs.ReadFile(s.cfg.FS, g.path)
	if err != nil {
		return err
	}
	if size := int64(len(b)); !segment.ValidCapacity(size) {
		// Where the replayed records roll over depends on the capacity,
		// which only the file's size said: extended to another, the
		// records would come back at other ids than on the other members.
		return fmt.Errorf("the file is cut short (%d bytes): the capacity it had, which decides the ids the log's records get, is not known; "+
			"wipe the member and let it rejoin (docs/adr-replication.md#a-damaged-member)", size)
	}
	if err := g.dropMapping(); err != nil {
		return err
	}
	ts := segment.ScanTail(b)
	if ts.End != rep.Offset || ts.Count != rep.Records {
		return fmt.Errorf("the intact records end at %d (%d records), recovery found %d (%d)", ts.End, ts.Count, rep.Offset, rep.Records)
	}
	rep.Dropped = ts.Dropped()
	if ts.DirtyEnd > ts.End {
		quarantine := s.quarantiner(g, func(name string) { rep.Quarantine = name })
		return quarantine(ts.End, b[ts.End:ts.DirtyEnd])
	}
	return nil
}

// rewindReopen reopens the tail for appends after its intact records,
// zeroing the bytes past them; s.readMu and s.mu are held.
func (s *Stream) rewindReopen(g *seg, rep *RewindReport) (*segment.Writer, error) {
	name, ok := segment.ParseFileName(filepath.Base(g.path))
	if !ok {
		return nil, fmt.Errorf("%s: not a segment file name", g.path)
	}
	info, err := segment.Inspect(s.cfg.FS, g.path, name, s.id)
	if err != nil {
		return nil, err
	}
	// Nothing is proven past the kept records now: the reopen zeroes the
	// rest and syncs it.
	w, _, _, err := segment.OpenTail(s.cfg.FS, info, s.cfg.WriteMode, segment.TailProof{Durable: -1})
	if err != nil {
		return nil, err
	}
	if w.End() != rep.Offset {
		_ = w.Close()
		return nil, fmt.Errorf("reopened at %d, not at %d", w.End(), rep.Offset)
	}
	return w, nil
}
