package tier0

import "container/heap"

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
	key     Key
	bytes   int64
	state   state
	pins    int
	inTier1 bool
	inTier2 bool
	tick    uint64 // last use; larger is more recent
	gidx    int    // index in Budget.mu.elig, -1 when absent
	sidx    int    // index in streamState.elig, -1 when absent
}

// lruHeap is a min-heap on tick of the segments that are eviction
// candidates right now (sealed, unpinned, safe per policy). Keeping only
// eligible segments in it means choosing victims costs O(k log n) for k
// victims however many segments are active, pinned or not yet uploaded,
// and a touch is one O(log n) fix. Every eligible entry sits in two heaps:
// the global one and its stream's; idx selects which index field this heap
// maintains.
type lruHeap struct {
	items  []*entry
	global bool
	bytes  int64 // sum of the items' bytes
}

func (h *lruHeap) idx(e *entry) *int {
	if h.global {
		return &e.gidx
	}
	return &e.sidx
}

func (h *lruHeap) Len() int           { return len(h.items) }
func (h *lruHeap) Less(i, j int) bool { return h.items[i].tick < h.items[j].tick }
func (h *lruHeap) Swap(i, j int) {
	h.items[i], h.items[j] = h.items[j], h.items[i]
	*h.idx(h.items[i]) = i
	*h.idx(h.items[j]) = j
}

// Push and Pop implement heap.Interface; use add and remove instead.
func (h *lruHeap) Push(x any) {
	e := x.(*entry)
	*h.idx(e) = len(h.items)
	h.items = append(h.items, e)
}

func (h *lruHeap) Pop() any {
	n := len(h.items) - 1
	e := h.items[n]
	h.items[n] = nil
	h.items = h.items[:n]
	*h.idx(e) = -1
	return e
}

func (h *lruHeap) add(e *entry) {
	heap.Push(h, e)
	h.bytes += e.bytes
}

func (h *lruHeap) remove(e *entry) {
	heap.Remove(h, *h.idx(e))
	h.bytes -= e.bytes
}

func (h *lruHeap) fix(e *entry) { heap.Fix(h, *h.idx(e)) }

// oldest returns the least recently used eligible entry, or nil.
func (h *lruHeap) oldest() *entry {
	if len(h.items) == 0 {
		return nil
	}
	return h.items[0]
}
