package budget

import (
	"fmt"
	"slices"

	"github.com/aof2/aof2/core/types"
)

// Progress under pressure (docs/adr-tier0.md, "Progress: no request
// sequence needs an operator"). Active segments are never evicted, so a
// budget full of them would refuse every activation for good. Two rules
// keep every refused demand servable by background work alone:
//
//   - the engine seals the full segment of a rollover whose admission was
//     refused (so the requester's own active segments are about to be
//     sealed), and
//   - RequestSeals asks for seals of other active segments until the
//     active segments that stay active, plus the demand, fit in the budget.
//
// Everything else that counts (sealed, being sealed, asked to seal)
// becomes evictable once compressed or uploaded, so the demand then fits.

// enterActiveLocked accounts for a new active entry.
func (b *Budget) enterActiveLocked(e *entry) {
	b.mu.actives[e.key] = e
	if !e.sealReq {
		b.keepLocked(e, e.bytes)
	}
}

// leaveActiveLocked accounts for an active entry that is sealed or dropped.
func (b *Budget) leaveActiveLocked(e *entry) {
	delete(b.mu.actives, e.key)
	if !e.sealReq {
		b.keepLocked(e, -e.bytes)
	}
	e.sealReq = false
}

func (b *Budget) keepLocked(e *entry, delta int64) {
	b.mu.keep += delta
	b.mu.streams[e.key.Stream].keep += delta
}

// markSealLocked asks for e (active) to be sealed.
func (b *Budget) markSealLocked(e *entry) {
	if e.sealReq {
		return
	}
	e.sealReq = true
	b.keepLocked(e, -e.bytes)
	b.m.sealRequests.Inc()
	b.log.Debug("tier0_seal_requested", "stream_id", e.key.Stream, "segment_id", e.key.Segment, "bytes", e.bytes)
}

// oldestActiveLocked is the least recently activated or read active entry
// not yet asked to seal, of one stream (all when stream is nil); nil when
// there is none. Ties cannot happen: ticks are unique.
func (b *Budget) oldestActiveLocked(stream *types.StreamID) *entry {
	var best *entry
	for _, e := range b.mu.actives {
		if e.sealReq || (stream != nil && e.key.Stream != *stream) {
			continue
		}
		if best == nil || e.tick < best.tick {
			best = e
		}
	}
	return best
}

// RequestSeals is called for demands that were refused (a rollover or a
// new stream's first segment that TryAdmit refused), and without demands
// for the activations waiting in the queue. It asks for the seals that
// make every demand servable by background work alone and returns every
// active segment asked to seal that is still active (oldest first), new
// and earlier requests alike, so that a caller that lost a request runs it
// again. The caller seals each one (if it is still being written to, the
// writer's next append activates a new segment) and reports those it
// cannot seal with SealAbandoned.
//
// A refused active demand means the engine seals the requester's other
// active segments itself (a refused rollover seals its full segment), so
// they are marked first. Then, while the active segments not asked to seal
// plus the demands and the queued activations exceed tier0.max_bytes (or
// the stream's cap, for the demand's stream), the least recently activated
// or read active segment is asked to seal. Demands that can never fit
// (ErrExceedsBudget) or are already admitted are ignored.
func (b *Budget) RequestSeals(demands ...Request) []Candidate {
	b.mu.Lock()
	defer b.mu.Unlock()
	want := map[types.StreamID]int64{} // demanded bytes per stream
	var total int64
	add := func(r *Request) {
		if _, ok := b.mu.entries[r.Key]; ok || r.Bytes <= 0 {
			return
		}
		st, ok := b.mu.streams[r.Key.Stream]
		limit := b.mu.streamMax
		if ok {
			limit = b.capLocked(st)
		}
		if (b.mu.maxBytes > 0 && r.Bytes > b.mu.maxBytes) || (limit > 0 && r.Bytes > limit) {
			return
		}
		want[r.Key.Stream] += r.Bytes
		total += r.Bytes
	}
	for i := range demands {
		d := &demands[i]
		add(d)
		if d.Active {
			for _, e := range b.mu.actives {
				if e.key.Stream == d.Key.Stream && e.key != d.Key {
					b.markSealLocked(e)
				}
			}
		}
	}
	for p := range b.mu.q.fifo {
		for el := b.mu.q.fifo[p].Front(); el != nil; el = el.Next() {
			add(&el.Value.(*waiter).req)
		}
	}
	if max := b.mu.maxBytes; max > 0 {
		for b.mu.keep+total > max {
			e := b.oldestActiveLocked(nil)
			if e == nil {
				break
			}
			b.markSealLocked(e)
		}
	}
	ids := make([]types.StreamID, 0, len(want))
	for id := range want {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	for _, id := range ids {
		st, ok := b.mu.streams[id]
		if !ok {
			continue // nothing of it is resident
		}
		limit := b.capLocked(st)
		for limit > 0 && st.keep+want[id] > limit {
			e := b.oldestActiveLocked(&id)
			if e == nil {
				break
			}
			b.markSealLocked(e)
		}
	}
	var out []*entry
	for _, e := range b.mu.actives {
		if e.sealReq {
			out = append(out, e)
		}
	}
	slices.SortFunc(out, func(x, y *entry) int { return cmpTick(x.tick, y.tick) })
	var cands []Candidate
	for _, e := range out {
		cands = append(cands, Candidate{Key: e.key, Bytes: e.bytes})
	}
	return cands
}

func cmpTick(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// SealAbandoned withdraws a seal request that cannot be carried out (the
// stream failed or closed, or the segment holds no record): the segment
// counts as staying active again and moves to the recent end, so the next
// RequestSeals picks another one. A segment that is no longer active, or
// was not asked to seal, is left alone.
func (b *Budget) SealAbandoned(k types.SegmentKey) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	e, err := b.lookupLocked(k)
	if err != nil {
		return fmt.Errorf("tier0: seal abandoned %s: %w", k, err)
	}
	if e.state != stateActive || !e.sealReq {
		return nil
	}
	e.sealReq = false
	b.keepLocked(e, e.bytes)
	e.tick = b.nextTick()
	return nil
}

// ReclaimBytes hands out eviction candidates, least recently used first,
// until they add up to at least n bytes or nothing more is eligible,
// whatever tier0.max_bytes is: the disk is filling (a watermark or ENOSPC),
// and only segments another tier holds (per the policy) may go. The caller
// evicts them and reports Removed or Restore, as for Reclaim.
func (b *Budget) ReclaimBytes(n int64) []Candidate {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []Candidate
	for freed := int64(0); freed < n && b.mu.elig > 0; {
		c := b.evictLocked(b.oldestLocked(&b.mu.lru))
		freed += c.Bytes
		out = append(out, c)
	}
	b.m.pressureEvictions.Add(float64(len(out)))
	return out
}

// Evicting is the bytes handed out as eviction candidates and not yet
// Removed or Restored: space that is about to be freed.
func (b *Budget) Evicting() int64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.mu.evictingBytes
}
