package core

import (
	"fmt"

	"github.com/aof2/aof2/core/segment"
)

// Group commit of idempotent requests. A request's entry must be durable
// in the producer log before its records are stored, and a stream's
// records are stored in id order, so the fdatasync is taken with the
// stream's writer lock held. Requests arriving together share it: they
// queue, and one of their callers (the leader) runs rounds — under the
// writer lock, place every queued request, write all their entries with
// one fdatasync, store all their records — until its own request is done,
// then hands the lead to the next one queued. A round does not wait for
// anything but the disk, so callers wait for their request without a
// context: the answer comes within a round or two.

// producerReq is one request in the group commit.
type producerReq struct {
	e    producerEntry
	have []RecordID    // ids taken by an earlier attempt (a crash cut it short)
	recs []BatchRecord // the records still to append
	done chan struct{} // closed when ids or err is set
	lead chan struct{} // the previous leader hands the lead over
	ids  []RecordID    // every id of the request, have included
	err  error
}

// reset readies the request for an attempt.
func (r *producerReq) reset() {
	r.done, r.lead, r.ids, r.err = make(chan struct{}), make(chan struct{}, 1), nil, nil
}

func (r *producerReq) finished() bool {
	select {
	case <-r.done:
		return true
	default:
		return false
	}
}

// submitProducer queues r and returns once it is done, leading rounds
// when no one else does or when the lead is handed to it.
func (s *Stream) submitProducer(r *producerReq) {
	p := &s.prod
	p.mu.Lock()
	p.queue = append(p.queue, r)
	lead := !p.leading
	p.leading = true
	p.mu.Unlock()
	for {
		if lead {
			s.leadProducerRounds(r)
			return
		}
		select {
		case <-r.done:
			return
		case <-r.lead:
			lead = true
		}
	}
}

// leadProducerRounds runs rounds until own is done, then hands the lead
// to the first request still queued, or gives it up.
func (s *Stream) leadProducerRounds(own *producerReq) {
	p := &s.prod
	for {
		p.mu.Lock()
		batch := p.queue
		p.queue = nil
		p.mu.Unlock()
		if len(batch) > 0 {
			s.producerRound(batch)
		}
		p.mu.Lock()
		if own.finished() {
			if len(p.queue) > 0 {
				p.queue[0].lead <- struct{}{}
			} else {
				p.leading = false
			}
			p.mu.Unlock()
			return
		}
		p.mu.Unlock()
	}
}

// producerRound places batch's requests in order in the active segment
// and commits them together; requests after one that needs a new segment
// go back to the front of the queue for the next round (which rolls over
// first), so a round's records are all in one segment.
func (s *Stream) producerRound(batch []*producerReq) {
	var placed, failed []*producerReq
	var entries []producerEntry
	s.mu.Lock()
	var a *seg
	var end int64      // where the next placed request's records start
	var roundBytes int // the placed requests' entries, framed
	for i, r := range batch {
		if err := s.admitLocked(); err != nil {
			r.err = err
			failed = append(failed, r)
			continue
		}
		span := recordsSpan(r.recs)
		if a == nil {
			if a = s.mu.active; a != nil {
				end = a.w.End()
			}
		}
		if a == nil || s.needsRolloverAtLocked(a, end, len(placed) > 0, span) {
			if len(placed) > 0 {
				s.requeueProducers(batch[i:])
				break
			}
			if err := s.rolloverLocked(r.recs[0].Timestamp, r.recs[0].ExtID, int(span-segment.RecordHeaderSize)); err != nil {
				r.err = err
				failed = append(failed, r)
				a = nil
				continue
			}
			a, end = s.mu.active, s.mu.active.w.End()
			if s.needsRolloverAtLocked(a, end, false, span) {
				r.err = fmt.Errorf("stream %d: a %d-byte batch does not fit a new segment: %w", s.id, span, ErrBatchTooLarge)
				failed = append(failed, r)
				continue
			}
		}
		ids := append(append(make([]RecordID, 0, int(r.e.records)), r.have...), predictIDs(a.id, end, r.recs)...)
		e := r.e
		e.ids = ids
		size := producerEntrySize(e)
		if len(placed) > 0 && roundBytes+size > maxProducerRoundBytes {
			// The producer log's round is full: the rest go in the next one.
			s.requeueProducers(batch[i:])
			break
		}
		roundBytes += size
		r.ids = ids
		end += span
		entries = append(entries, e)
		placed = append(placed, r)
	}
	if len(placed) > 0 {
		if err := s.writeProducersLocked(entries); err != nil {
			for _, r := range placed {
				r.err, r.ids = err, nil
			}
		} else {
			s.storeProducersLocked(a, placed)
		}
	}
	s.mu.Unlock()
	s.finishProducers(placed, failed)
}

// storeProducersLocked stores the placed requests' records where their
// entries said. A store that fails fails the stream; the log's ids past
// the end are dropped at the next open.
func (s *Stream) storeProducersLocked(a *seg, placed []*producerReq) {
	var failed error // the stream failed: nothing after it is stored
	for _, r := range placed {
		for i, rec := range r.recs {
			if failed != nil {
				break
			}
			want := r.ids[len(r.have)+i]
			id, err := s.storeLocked(a, rec.Payload, rec.Timestamp, rec.ExtID)
			switch {
			case err != nil:
				failed = err
			case id != want:
				failed = s.failLocked(fmt.Errorf("stream %d: record stored at %s, the producer log says %s", s.id, id, want))
			default:
				s.mu.appended.records++
				s.mu.appended.bytes += uint64(len(rec.Payload))
			}
		}
		if failed != nil {
			r.err, r.ids = failed, nil
		}
	}
}

// finishProducers records the requests that went in and wakes every
// caller of placed and failed.
func (s *Stream) finishProducers(placed, failed []*producerReq) {
	p := &s.prod
	p.mu.Lock()
	for _, r := range placed {
		if r.err == nil {
			p.clock++
			e := r.e
			e.ids = r.ids
			p.byID[e.producer] = &producerState{entry: e, used: p.clock}
		}
	}
	p.forgetOldest()
	p.mu.Unlock()
	for _, r := range placed {
		if r.err == nil {
			s.afterAppend()
		}
		close(r.done)
	}
	for _, r := range failed {
		close(r.done)
	}
}

// requeueProducers puts rs back at the front of the queue.
func (s *Stream) requeueProducers(rs []*producerReq) {
	p := &s.prod
	p.mu.Lock()
	p.queue = append(append([]*producerReq(nil), rs...), p.queue...)
	p.mu.Unlock()
}

// needsRolloverAtLocked is needsRolloverLocked for records starting at
// end of a (some already placed there when placedAny).
func (s *Stream) needsRolloverAtLocked(a *seg, end int64, placedAny bool, span int64) bool {
	return end+span > segment.DataEnd(a.capacity) ||
		(s.cfg.SegmentTargetBytes > 0 && (a.w.Count() > 0 || placedAny) && end-segment.HeaderSize >= s.cfg.SegmentTargetBytes)
}

func recordsSpan(recs []BatchRecord) int64 {
	var n int64
	for _, r := range recs {
		n += segment.RecordSpan(len(r.Payload))
	}
	return n
}
