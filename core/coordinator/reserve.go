package coordinator

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/aof2/aof2/core"
	"github.com/aof2/aof2/core/tier2"
	"github.com/aof2/aof2/core/types"
	"github.com/aof2/aof2/internal/logthrottle"
)

// Segment-id reservations (docs/adr-restore.md, "Never reuse an id the
// lost node handed out"; docs/tiering.md#segment-id-reservations). The
// engine activates a segment only once AdmitSegment admits it, and with a
// tier 2 AdmitSegment admits an id only once tier 2 holds a reservation
// object through it (tier2.Store.Reserve). A restore from tier 2 alone
// then knows every id this node may have handed out records in.
//
//   - An id beyond the highest reservation known is refused with
//     WouldBlock(Admission) wrapping ErrReservationPending, and a
//     reservation through id + ReserveSegments - 1 is started; the stream
//     is woken once it is stored.
//   - Once an admitted id is in the upper half of the reservation, the
//     next one (reserved + ReserveSegments) is made in the background, so
//     a stream writing steadily never waits for one.
//   - A reservation is a tier-2 mutation: it waits for the store
//     descriptor's gate (storeid.go). A failed one (or one that met the
//     gate shut) is started again by the next scan, not by the writers'
//     retries, so a tier 2 that is down sees one attempt per stream per
//     scan.
//   - Creating a reservation is safe whatever tier 2 already holds
//     (reservations only grow, and an existing one is success), so no
//     listing is awaited: reconciliation at start raises what is known to
//     the highest reservation listed and deletes the ones below it, and a
//     stored reservation deletes the one it supersedes.
//
// Each reservation runs on a goroutine of its own (at most one per
// stream) that the coordinator owns: started only while it is not closed,
// counted in c.wg, on c.ctx, so Close cancels and waits for it.

// ErrReservationPending is the cause of a WouldBlock(Admission): the new
// segment's id is not covered by a segment-id reservation in tier 2 yet.
// The writer is woken once the reservation is stored.
var ErrReservationPending = errors.New("coordinator: segment id not reserved in tier 2 yet")

// errStoreUnchecked: a reservation met the store-descriptor gate shut.
var errStoreUnchecked = errors.New("the tier 2 store descriptor is not checked yet")

// reservationFailed is the (rate-limited) event of a failed reservation.
const reservationFailed = "segment-id reservation in tier 2 failed; new segments of the stream wait for it (the scan retries)"

// supersededFailed is the (rate-limited) event of a superseded
// reservation that could not be deleted (harmless: the next start retries).
const supersededFailed = "superseded segment-id reservation not deleted; the next start retries"

// reservations is what the coordinator knows of each stream's
// reservations. Lock order: mu before c.mu (spawn), never the reverse.
type reservations struct {
	mu sync.Mutex
	// m is guarded by mu, and so is every field of its values.
	m map[types.StreamID]*streamReservation
}

// streamReservation is one stream's; every field is guarded by
// reservations.mu.
type streamReservation struct {
	// reserved is the highest segment id known reserved in tier 2 (0: none
	// known). Raised by stored reservations and by reconciliation, never
	// lowered.
	reserved types.SegmentID
	// want is the highest id a reservation was asked through; one is
	// pending while want > reserved.
	want types.SegmentID
	// running: a reservation of the stream is being stored.
	running bool
	// atScan: the last attempt failed or met the gate shut; the next scan
	// starts it again (admissions do not).
	atScan bool
}

// get returns the stream's state, creating it; mu is held.
func (r *reservations) get(id types.StreamID) *streamReservation {
	st := r.m[id]
	if st == nil {
		st = &streamReservation{}
		r.m[id] = st
	}
	return st
}

// capID bounds an id to the largest usable one.
func capID(id types.SegmentID) types.SegmentID { return min(id, types.MaxSegmentID) }

// admitReserved is AdmitSegment's reservation check: nil when tier 2
// holds a reservation through k.Segment (starting the next one in the
// background once the current one is half used), else a
// WouldBlock(Admission) wrapping ErrReservationPending, with the
// reservation started. It does not block.
func (c *Coordinator) admitReserved(k types.SegmentKey) error {
	if c.remote == nil || c.cfg.Cluster != nil { // the Raft log decides a cluster's ids
		return nil
	}
	r := types.SegmentID(c.cfg.ReserveSegments)
	c.rsv.mu.Lock()
	defer c.rsv.mu.Unlock()
	st := c.rsv.get(k.Stream)
	if k.Segment > st.reserved {
		st.want = max(st.want, capID(k.Segment+r-1))
		c.startReservationLocked(k.Stream, st, false)
		known := "none is known"
		if st.reserved > 0 {
			known = fmt.Sprintf("the highest known is through %d", st.reserved)
		}
		return &types.WouldBlock{Kind: types.Admission,
			Cause: fmt.Errorf("%w: stream %d, segment %d (%s)", ErrReservationPending, k.Stream, k.Segment, known)}
	}
	if k.Segment+r/2 > st.reserved {
		st.want = max(st.want, capID(st.reserved+r))
		c.startReservationLocked(k.Stream, st, false)
	}
	return nil
}

// startReservationLocked starts storing the stream's pending reservation
// unless one is running, none is pending, or (unless fromScan) the last
// attempt failed. c.rsv.mu is held.
func (c *Coordinator) startReservationLocked(id types.StreamID, st *streamReservation, fromScan bool) {
	if st.running || st.want <= st.reserved || st.atScan && !fromScan {
		return
	}
	upto := st.want
	if c.spawn(func() { c.reserveIDs(id, upto) }) {
		st.running, st.atScan = true, false
	}
}

// spawn runs fn on a goroutine the coordinator owns (Close waits for it),
// unless the coordinator is closed.
func (c *Coordinator) spawn(fn func()) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.mu.closed {
		return false
	}
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		fn()
	}()
	return true
}

// retryReservations starts, at a scan, the pending reservations that are
// not running: those that failed or met the gate shut.
func (c *Coordinator) retryReservations() {
	if c.remote == nil {
		return
	}
	c.rsv.mu.Lock()
	defer c.rsv.mu.Unlock()
	for id, st := range c.rsv.m {
		c.startReservationLocked(id, st, true)
	}
}

// reserveIDs stores a reservation of the stream's ids through upto in
// tier 2, once the store descriptor checked out. Stored, it raises what
// is known reserved, wakes the stream's writers, starts the next
// reservation if one was asked for meanwhile and deletes the reservation
// it supersedes.
func (c *Coordinator) reserveIDs(id types.StreamID, upto types.SegmentID) {
	ctx, cancel := context.WithTimeout(c.ctx, c.cfg.JobTimeout)
	err := c.mayMutate(ctx) // the gate of tier-2 mutations (writer.go)
	if errors.Is(err, errNotWriter) {
		err = errStoreUnchecked
	} else if err == nil {
		_, err = c.remote.Reserve(ctx, id, upto, c.cfg.ReserveSegments)
	}
	cancel()
	c.rsv.mu.Lock()
	st := c.rsv.get(id)
	st.running = false
	var superseded types.SegmentID
	if err == nil {
		if upto > st.reserved {
			superseded, st.reserved = st.reserved, upto
		}
		c.startReservationLocked(id, st, false)
	} else {
		st.atScan = true
	}
	c.rsv.mu.Unlock()
	switch {
	case errors.Is(err, errStoreUnchecked):
		return // the scan retries; storeid.go logs why the gate is shut
	case err != nil:
		if c.ctx.Err() == nil { // not a Close
			c.m.reservations.WithLabelValues("failed").Inc()
			c.logs.Fail(logthrottle.Failure{Msg: reservationFailed, Reason: tier2.Reason(err), Recovered: "segment-id reservations recovered",
				Args: []any{"stream_id", uint64(id), "upto_segment_id", uint64(upto), "error", err}})
		}
		return
	}
	c.m.reservations.WithLabelValues("ok").Inc()
	c.logs.Succeed(reservationFailed, "")
	if s, err := c.stream(id); err == nil {
		s.Wake() // writers refused admission look again
	}
	if superseded > 0 {
		c.deleteReservations(id, []types.SegmentID{superseded})
	}
}

// deleteReservations deletes superseded reservations of a stream (a higher
// one is stored), best effort: what is left is deleted at the next start.
// Only past the store-descriptor gate.
func (c *Coordinator) deleteReservations(id types.StreamID, ids []types.SegmentID) {
	for _, upto := range ids {
		ctx, cancel := context.WithTimeout(c.ctx, c.cfg.JobTimeout)
		err := c.mayMutate(ctx)
		if errors.Is(err, errNotWriter) || errors.Is(err, types.ErrFenced) {
			cancel()
			return
		}
		if err == nil {
			err = c.remote.Delete(ctx, c.remote.Layout().ReservationKey(id, upto))
		}
		cancel()
		if err != nil {
			if c.ctx.Err() == nil {
				c.logs.Fail(logthrottle.Failure{Msg: supersededFailed, Reason: tier2.Reason(err), Recovered: "superseded segment-id reservations deleted again",
					Args: []any{"stream_id", uint64(id), "upto_segment_id", uint64(upto), "error", err}})
			}
			return // tier 2 is likely down: the rest waits for the next start
		}
		c.logs.Succeed(supersededFailed, "")
	}
}

// learnReserved is reconciliation's part (reconcile.go): what the stream's
// listing holds is known reserved (waking writers waiting for it), and
// the reservations below the highest are deleted.
func (c *Coordinator) learnReserved(s *core.Stream, l tier2.Listing) types.SegmentID {
	top := l.Reserved()
	if top == 0 {
		return 0
	}
	c.rsv.mu.Lock()
	st := c.rsv.get(s.ID())
	st.reserved = max(st.reserved, top)
	c.rsv.mu.Unlock()
	s.Wake()
	superseded := make([]types.SegmentID, 0, len(l.Reservations)-1)
	for _, o := range l.Reservations[:len(l.Reservations)-1] {
		superseded = append(superseded, types.SegmentID(o.Ref.ID))
	}
	c.deleteReservations(s.ID(), superseded)
	return top
}
