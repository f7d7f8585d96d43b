package budget

import "github.com/aof2/aof2/core/types"

// state is where a segment is in its tier-0 life.
type state uint8

const (
	stateActive   state = iota + 1 // being written; counted, never evicted
	stateSealed                    // read-only; counted, in the LRU
	stateEvicting                  // handed out as a candidate; not counted
)

func (s state) String() string {
	switch s {
	case stateActive:
		return "active"
	case stateSealed:
		return "sealed"
	case stateEvicting:
		return "evicting"
	}
	return "unknown"
}

// entry is one segment the budget accounts for.
type entry struct {
	key     types.SegmentKey
	bytes   int64
	state   state
	pins    int
	inTier1 bool
	inTier2 bool
	elig    bool   // an eviction candidate now (sealed, unpinned, safe)
	sealReq bool   // active, and asked to seal (RequestSeals): counts as freed
	tick    uint64 // last use; larger is more recent
	gidx    int    // index in Budget.mu.lru, -1 when absent
	sidx    int    // index in streamState.lru, -1 when absent
}

// slot is a heap element. It carries the tick the entry had when it was
// last placed, so comparisons stay inside the (contiguous) heap array.
type slot struct {
	tick uint64
	e    *entry
}

// lruHeap is a lazy min-heap on last use, holding every eligible entry
// and possibly some that stopped being eligible or were touched since they
// were placed:
//
//   - Touch only bumps entry.tick (O(1)); a slot's tick is never newer than
//     its entry's, so when the top's ticks differ the top is re-placed with
//     the new tick and the heap is consulted again.
//   - Pin and the like only clear entry.elig (O(1)); an ineligible top is
//     dropped when victims are chosen, and re-added when it becomes eligible
//     again.
//
// Each stale slot is repaired at most once per touch or state change, so
// choosing k victims costs O((k + repairs) log n), whatever the number of
// active, pinned or not-yet-safe segments. Every entry in a heap is in
// two: the global one and its stream's; global selects the index field.
type lruHeap struct {
	items  []slot
	global bool
}

func (h *lruHeap) idx(e *entry) *int {
	if h.global {
		return &e.gidx
	}
	return &e.sidx
}

func (h *lruHeap) len() int { return len(h.items) }

func (h *lruHeap) swap(i, j int) {
	h.items[i], h.items[j] = h.items[j], h.items[i]
	*h.idx(h.items[i].e) = i
	*h.idx(h.items[j].e) = j
}

func (h *lruHeap) up(i int) {
	for i > 0 {
		p := (i - 1) / 2
		if h.items[p].tick <= h.items[i].tick {
			return
		}
		h.swap(i, p)
		i = p
	}
}

func (h *lruHeap) down(i int) {
	n := len(h.items)
	for {
		l := 2*i + 1
		if l >= n {
			return
		}
		m := l
		if r := l + 1; r < n && h.items[r].tick < h.items[l].tick {
			m = r
		}
		if h.items[i].tick <= h.items[m].tick {
			return
		}
		h.swap(i, m)
		i = m
	}
}

func (h *lruHeap) push(e *entry) {
	*h.idx(e) = len(h.items)
	h.items = append(h.items, slot{tick: e.tick, e: e})
	h.up(len(h.items) - 1)
}

func (h *lruHeap) remove(e *entry) {
	i := *h.idx(e)
	last := len(h.items) - 1
	if i != last {
		h.swap(i, last)
	}
	h.items[last] = slot{}
	h.items = h.items[:last]
	*h.idx(e) = -1
	if i != last {
		h.down(i)
		h.up(i)
	}
}
