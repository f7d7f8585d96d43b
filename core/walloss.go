package core

import (
	"cmp"
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

// walLostPrefix names the directory a node WAL whose loss was accepted is
// moved to, beside the store's streams: wal.lost-<unix nanoseconds>.
const walLostPrefix = walDirName + ".lost-"

// WALLossReport says what Open did when it accepted the loss of what the
// node WAL held (Config.NodeWALAcceptLoss).
type WALLossReport struct {
	// Cause is why the WAL could not be replayed.
	Cause string `json:"cause"`
	// KeptIn is the directory, inside the store's, that holds the WAL's
	// files as they were: what they held past the damage is there, never
	// deleted by the store.
	KeptIn string `json:"kept_in"`
	// Streams lists every open stream and what settled it.
	Streams []WALLossStream `json:"streams"`
}

// WALLossStream is one stream's part of a WALLossReport.
type WALLossStream struct {
	Stream StreamID `json:"stream_id"`
	// Sealed is the tail sealed so that ids the WAL may have handed out
	// are never given again (0: the stream had no open tail).
	Sealed SegmentID `json:"sealed,omitempty"`
	// Records is how many records the stream holds after the loss;
	// PastDamage how many of them the WAL gave back from past its damage
	// (intact entries that continue the stream exactly).
	Records    uint64 `json:"records"`
	PastDamage uint64 `json:"past_damage,omitempty"`
	// Refused is set when the stream still refuses appends for damage of
	// its own segments, which its own accepted loss settles (Stream.AcceptLoss).
	Refused string `json:"refused,omitempty"`
}

// NodeWALLoss is what Open did to accept the node WAL's loss, or nil when
// it had nothing to accept.
func (st *Store) NodeWALLoss() *WALLossReport { return st.walLoss }

// acceptingWALLoss: the operator accepts the WAL's loss, and this open has
// not accepted one yet (the new WAL it starts holds nothing to lose).
func (st *Store) acceptingWALLoss() bool { return st.cfg.NodeWALAcceptLoss && st.walLoss == nil }

// acceptWALLoss settles the store after the operator accepted that what
// the node WAL holds and the replay could not give the streams is lost:
// every stream's tail is sealed (the ids the WAL handed out past what the
// streams hold must never be given again), the decision is recorded in
// each stream's manifest, the WAL's files are moved aside, and a new WAL
// opens. refused are the streams the replay refused, and why; their
// refusal is lifted. pastDamage counts the records each stream got from
// past the WAL's damage (replayPastWALDamage). A crash part way leaves the WAL where it was: the
// next open finds the same damage, and accepting it again seals new
// (empty) tails and records the decision again.
func (st *Store) acceptWALLoss(cause string, refused map[*Stream]error, pastDamage map[StreamID]uint64) error {
	ctx, cancel := context.WithTimeout(context.Background(), walReplayTimeout)
	defer cancel()
	walDir, _ := walPaths(st.dir)
	kept := fmt.Sprintf("%s%d", walLostPrefix, st.cfg.Now().UnixNano())
	rep := &WALLossReport{Cause: cause, KeptIn: kept}
	streams := st.openStreams()
	setReplaying(streams, true) // no tier-0 admission: the coordinator has not started
	slices.SortFunc(streams, func(a, b *Stream) int { return cmp.Compare(a.id, b.id) })
	for _, s := range streams {
		if err, ok := refused[s]; ok {
			s.liftRefusal(err)
		}
		sealed, err := s.settleAfterReplay(ctx, true)
		if err != nil {
			return fmt.Errorf("accept the node WAL's loss: %w", err)
		}
		s.mu.Lock()
		s.mu.abandoned = false // the tail is sealed and the reserved ids taken: a clean close says the truth again
		s.mu.Unlock()
		info := s.Info()
		ls := WALLossStream{Stream: s.id, Sealed: sealed, Records: info.Records, PastDamage: pastDamage[s.id]}
		if info.Refused != nil {
			ls.Refused = info.Refused.Error()
		}
		if err := s.recordWALLoss(ctx, sealed, rep); err != nil {
			return fmt.Errorf("accept the node WAL's loss: %w", err)
		}
		rep.Streams = append(rep.Streams, ls)
	}
	fsys := st.cfg.FS
	if err := fsys.Rename(walDir, filepath.Join(st.dir, kept)); err != nil {
		return fmt.Errorf("accept the node WAL's loss: move it aside: %w", err)
	}
	if err := fsys.SyncDir(st.dir); err != nil {
		return fmt.Errorf("accept the node WAL's loss: move it aside: %w", err)
	}
	st.walLoss = rep
	st.cfg.Logger.Warn("node WAL loss accepted by an operator: every stream's tail is sealed, appends go on in new segments; the WAL's files are kept",
		"cause", rep.Cause, "kept_in", filepath.Join(st.dir, kept), "streams", len(rep.Streams))
	return st.openWAL()
}

// recordWALLoss records the accepted loss in the stream's manifest.
func (s *Stream) recordWALLoss(ctx context.Context, sealed SegmentID, rep *WALLossReport) error {
	tl := s.TierLog()
	if tl == nil {
		return nil
	}
	blob, err := json.Marshal(LossReport{Stream: s.id, Segment: sealed, Quarantine: []string{rep.KeptIn}, NodeWAL: rep.Cause})
	if err != nil {
		return err
	}
	if err := tl.Record(ctx, manifest.CustomEvent{Header: manifest.Header{SegmentID: sealed}, SchemaID: manifest.SchemaLossAccepted, Blob: blob}); err != nil {
		return fmt.Errorf("stream %d: record it: %w", s.id, err)
	}
	return nil
}

// healFromWAL heals, at open, a stream refused for damage of its tail when
// the entries the WAL kept for it cover every damaged record and reach
// what its durable mark proves: nothing is lost, so no operator decides.
// It runs the accepted loss's steps (the damaged bytes quarantined, the
// WAL's records written in their place and after, the segment sealed, a
// record in the manifest with healed set), and lets the WAL checkpoint
// again. Anything short of a whole heal leaves the stream refused, for the
// operator's accepted loss.
func (s *Stream) healFromWAL(ctx context.Context, w *nodeWAL) error {
	s.mu.Lock()
	kept := s.mu.walKept
	var d *DamageError
	own := errors.As(s.mu.refused, &d) && d.Stream == s.id
	mark := s.recovered.mark
	s.mu.Unlock()
	if len(kept) == 0 || !own {
		return nil
	}
	cat := s.cat.Load()
	g, i := cat.byID(d.Segment)
	if g == nil || g.damage == nil || g.damage.lost || i != len(cat.segs)-1 || mark == nil || mark.SegmentID != g.id {
		return nil
	}
	b, err := vfs.ReadFile(s.cfg.FS, g.path)
	if err != nil {
		return nil // unreadable: the operator's decision
	}
	if !segment.ValidCapacity(int64(len(b))) {
		// Cut short: the heal first extends the file to its capacity, the
		// bytes past its intact records zeroed (segment.Untruncate).
		padded := make([]byte, segment.PaddedCapacity(int64(len(b))))
		copy(padded, b[:min(int64(len(b)), d.Offset)])
		b = padded
	}
	var recs []segment.Placed
	for _, e := range kept {
		switch {
		case e.id.Segment() > g.id:
			return nil // records past the damaged tail: not a case for healing
		case e.id.Segment() == g.id:
			recs = append(recs, segment.Placed{Offset: int64(e.id.Offset()), Payload: e.payload, TS: e.ts, Ext: e.ext})
		}
	}
	if !segment.HealsWhole(b, recs, int64(mark.DurableBytes)) {
		return nil
	}
	rep, err := s.acceptLoss(ctx, true)
	if err != nil {
		return fmt.Errorf("stream %d: heal from the node WAL: %w", s.id, err)
	}
	if rep.NodeWALKept == 0 {
		w.release(s)
	}
	s.log.Warn("damaged tail healed from the node WAL's copy: no record lost", "segment_id", uint64(rep.Segment),
		"records", rep.Records, "from_node_wal", rep.FromNodeWAL, "quarantine", rep.Quarantine)
	return nil
}
