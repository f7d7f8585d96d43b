package core

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"slices"

	"github.com/aof2/aof2/core/manifest"
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
	// Records is how many records the stream holds after the loss.
	Records uint64 `json:"records"`
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
// refusal is lifted. A crash part way leaves the WAL where it was: the
// next open finds the same damage, and accepting it again seals new
// (empty) tails and records the decision again.
func (st *Store) acceptWALLoss(cause string, refused map[*Stream]error) error {
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
		ls := WALLossStream{Stream: s.id, Sealed: sealed, Records: info.Records}
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
