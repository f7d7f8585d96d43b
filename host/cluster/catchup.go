package cluster

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/aof2/aof2/core"
)

// ErrDiverged is returned when a record copied from a peer gets another
// id here than it has there: the two stores disagree on what precedes
// it. The copy stops; nothing is skipped or overwritten.
var ErrDiverged = errors.New("cluster: a copied record lands at another id than on the peer")

// PeerRecord is one record as another member serves it.
type PeerRecord struct {
	ID        core.RecordID
	Ordinal   uint64
	Timestamp int64
	ExtID     uint64
	Payload   []byte
}

// PeerReader reads a stream's records, from ordinal from on, at most
// limit, from another member's client API (the host's client). A node
// that a Raft snapshot finds behind copies what it lacks with it
// (catchUp).
type PeerReader interface {
	ReadRecords(ctx context.Context, at APIAddr, stream core.StreamID, from uint64, limit int) ([]PeerRecord, error)
	// Applied is the index of the last entry that member's store
	// applied (ClusterStatus.AppliedIndex).
	Applied(ctx context.Context, at APIAddr) (uint64, error)
}

// copyBatch bounds the records asked of a peer per read, copyTimeout
// each read.
const (
	copyBatch   = 1000
	copyTimeout = 30 * time.Second
)

// errPeerBehind: the peer serves no record past this node's last one.
var errPeerBehind = errors.New("the peer holds no record past this node's")

// errLocalRead: this node could not read its own last record to compare
// it with the peer's; no other peer would do better.
var errLocalRead = errors.New("read this node's own record")

// catchUp brings stream p.Stream up to the snapshot's position by
// copying the records the store lacks from another member, in order,
// with the timestamps and ext_ids they carry there, sealing where the
// peer's ids say a segment ended: the result is the segments the log
// would have built. Every copied record must get the id it has on the
// peer (ErrDiverged otherwise). Members are tried in turn; a member that
// has not applied as far is passed for the next.
func (f *fsm) catchUp(p streamPosition, members map[string]APIAddr, unreachable map[string]bool) (copied int64, err error) {
	if f.peers == nil {
		return 0, errNoPeers
	}
	s, err := f.store.Stream(p.Stream)
	if err != nil {
		return 0, err
	}
	ids := make([]string, 0, len(members))
	for id := range members {
		if id != f.self && !unreachable[id] {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	var errs []error
	for _, id := range ids {
		n, err := f.copyFrom(members[id], s, p.HeadRecord, p.Records)
		copied += n
		if err == nil {
			return copied, nil
		}
		if errors.Is(err, ErrDiverged) || errors.Is(err, errLocalRead) || f.ctx.Err() != nil {
			return copied, err
		}
		if !errors.Is(err, errPeerBehind) && n == 0 {
			unreachable[id] = true // not asked again for the other streams
		}
		errs = append(errs, fmt.Errorf("from %s: %w", id, err))
	}
	if len(errs) == 0 {
		return copied, errNoPeers
	}
	return copied, errors.Join(errs...)
}

var errNoPeers = errors.New("no other member to copy the records from")

// copyFrom copies records from the member at addr until s holds upTo.
// Records below head, the ordinal the cluster's oldest segment starts at,
// are dropped on every member: none is compared.
func (f *fsm) copyFrom(addr APIAddr, s *core.Stream, head, upTo uint64) (copied int64, err error) {
	checked := false // the record before the first copied one is the peer's
	for {
		have := s.Info().Records
		if have >= upTo {
			return copied, nil
		}
		// The last record here, if a segment in tier 0 holds it (active
		// or sealed), is asked for too: the next record's offset follows
		// from it, or, after a seal, the records before it are what the
		// copied ones follow; either way it must be the peer's. (Records
		// copied after it are checked by their ids; an evicted segment's
		// bytes are tier 2's, which the log's TierMove vouched for.)
		from, prev := have, !checked && have > head && residentHolds(s, have)
		if prev {
			from--
		}
		ctx, cancel := context.WithTimeout(f.ctx, copyTimeout)
		recs, err := f.peers.ReadRecords(ctx, addr, s.ID(), from, int(min(upTo-from, copyBatch)))
		cancel()
		if err != nil {
			return copied, err
		}
		if prev && len(recs) > 0 {
			if err := sameRecord(s, from, recs[0]); err != nil {
				return copied, err
			}
			if recs = recs[1:]; len(recs) == 0 {
				// The reply held that record alone (the peer's byte or
				// read-budget limit): read on from the next.
				checked = true
				continue
			}
		}
		checked = true
		if len(recs) == 0 {
			return copied, errPeerBehind
		}
		n, err := f.copyRecords(s, have, recs)
		copied += n
		// Readers see what went in, whether or not the rest did.
		if perr := s.Publish(); err == nil {
			err = perr
		}
		if err != nil {
			return copied, err
		}
	}
}

// copyRecords appends recs, the first at ordinal at, a run at a time.
func (f *fsm) copyRecords(s *core.Stream, at uint64, recs []PeerRecord) (copied int64, err error) {
	err = forRuns(recs, sameRun, func(run []PeerRecord) error {
		n, err := f.copyRun(s, at, run)
		copied, at = copied+n, at+uint64(len(run))
		return err
	})
	return copied, err
}

// sameRun: b may be appended in one batch with a (same segment, same
// timestamp and ext_id).
func sameRun(a, b PeerRecord) bool {
	return a.ID.Segment() == b.ID.Segment() && a.Timestamp == b.Timestamp && a.ExtID == b.ExtID
}

// copyRun appends recs, one run (sameRun), the first at ordinal at.
func (f *fsm) copyRun(s *core.Stream, at uint64, recs []PeerRecord) (copied int64, err error) {
	if recs[0].Ordinal != at {
		return 0, fmt.Errorf("the peer returned ordinal %d for %d", recs[0].Ordinal, at)
	}
	seg := recs[0].ID.Segment()
	if active, _, ok := s.ActiveSince(); ok && active != seg {
		if err := s.Seal(f.ctx); err != nil {
			return 0, fmt.Errorf("seal segment %d before the peer's segment %d: %w", active, seg, err)
		}
	}
	if next, known := nextSegment(s); known && next != seg {
		return 0, fmt.Errorf("%w: stream %d ordinal %d: the peer holds it in segment %d, the next here is %d", ErrDiverged, s.ID(), at, seg, next)
	}
	opts := core.AppendOptions{Timestamp: recs[0].Timestamp, ExtID: recs[0].ExtID}
	payloads := make([][]byte, len(recs))
	for i := range recs {
		payloads[i] = recs[i].Payload
		copied += int64(len(recs[i].Payload))
	}
	got, err := appendAll(f.ctx, s, payloads, opts)
	for i, id := range got {
		if id != recs[i].ID {
			return copied, fmt.Errorf("%w: stream %d ordinal %d: %v here, %v on the peer", ErrDiverged, s.ID(), at+uint64(i), id, recs[i].ID)
		}
	}
	return copied, err
}

// residentHolds reports whether s's newest segment is in tier 0 and
// holds the record at ordinal have-1 (its last).
func residentHolds(s *core.Stream, have uint64) bool {
	segs := s.SegmentList()
	if len(segs) == 0 || have == 0 {
		return false
	}
	last := segs[len(segs)-1]
	return (last.Footer == nil || last.Resident) && last.BaseRecord < have
}

// sameRecord checks that the record at ordinal at here is p: the same
// id, timestamp, ext_id and payload (ErrDiverged otherwise).
func sameRecord(s *core.Stream, at uint64, p PeerRecord) error {
	r, err := s.NewReader(core.AtOrdinal(at))
	if err != nil {
		return fmt.Errorf("%w: stream %d ordinal %d: %w", errLocalRead, s.ID(), at, err)
	}
	defer r.Close()
	rec, err := r.Next()
	if err != nil {
		return fmt.Errorf("%w: stream %d ordinal %d: %w", errLocalRead, s.ID(), at, err)
	}
	if p.Ordinal != at || rec.ID != p.ID || rec.Timestamp != p.Timestamp || rec.ExtID != p.ExtID || !bytes.Equal(rec.Payload, p.Payload) {
		return fmt.Errorf("%w: stream %d ordinal %d: the last record here (%v, ext_id %d) is not the peer's (%v, ext_id %d)",
			ErrDiverged, s.ID(), at, rec.ID, rec.ExtID, p.ID, p.ExtID)
	}
	return nil
}

// nextSegment is the segment the stream's next record goes to, unless it
// fills it: the active one, or the one after the newest (known false: the
// stream has no segment yet).
func nextSegment(s *core.Stream) (id core.SegmentID, known bool) {
	segs := s.SegmentList()
	if len(segs) == 0 {
		return 0, false
	}
	last := segs[len(segs)-1]
	if last.Footer == nil {
		return last.ID, true
	}
	return last.ID + 1, true
}

// appendAll appends payloads with opts, waiting out backpressure (the
// apply loop cannot refuse an entry): the ids of those appended, and
// why it stopped before the end.
func appendAll(ctx context.Context, s *core.Stream, payloads [][]byte, opts core.AppendOptions) ([]core.RecordID, error) {
	var ids []core.RecordID
	for len(payloads) > 0 {
		got, err := s.AppendBatch(payloads, opts)
		ids, payloads = append(ids, got...), payloads[len(got):]
		if err == nil {
			continue
		}
		if !errors.Is(err, core.ErrWouldBlock) {
			return ids, err
		}
		id, err := s.AppendCtx(ctx, payloads[0], opts)
		if err != nil {
			return ids, err
		}
		ids, payloads = append(ids, id), payloads[1:]
	}
	return ids, nil
}
