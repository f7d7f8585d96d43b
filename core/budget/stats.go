package budget

import (
	"sort"

	"github.com/aof2/aof2/core/types"
)

// EntryInfo is a snapshot of one accounted segment.
type EntryInfo struct {
	Key      types.SegmentKey
	Bytes    int64
	State    string // "active", "sealed" or "evicting"
	Pins     int
	InTier1  bool
	InTier2  bool
	Eligible bool   // an eviction candidate right now
	LastUse  uint64 // logical clock; larger is more recent
}

// StreamStats is one stream's share of the budget.
type StreamStats struct {
	Used      int64 // counted bytes
	Limit     int64 // effective cap, 0 = none
	Segments  int   // accounted segments, including evicting ones
	Evictable int64 // bytes that could be evicted now
}

// Stats is a snapshot of the budget for observability.
type Stats struct {
	MaxBytes       int64
	Used           int64 // counted bytes: active + sealed, not evicting
	Evicting       int64 // bytes handed out for eviction, not yet Removed
	Evictable      int64 // bytes of eligible sealed segments
	Segments       int
	Active         int
	Sealed         int
	Pinned         int
	Unsafe         int // sealed segments not yet safe to evict per policy
	Queued         [numPriorities]int
	QueueDepth     int
	Streams        map[types.StreamID]StreamStats
	WaitingStreams int // streams with an activation blocked on their own cap
}

// Stats returns a snapshot of the budget.
func (b *Budget) Stats() Stats {
	b.mu.Lock()
	defer b.mu.Unlock()
	s := Stats{MaxBytes: b.mu.maxBytes, Used: b.mu.used, Evicting: b.mu.evictingBytes, Evictable: b.mu.elig,
		Segments: len(b.mu.entries), QueueDepth: b.mu.q.len(), Streams: make(map[types.StreamID]StreamStats, len(b.mu.streams))}
	for p := range s.Queued {
		s.Queued[p] = b.mu.q.fifo[p].Len()
	}
	for _, e := range b.mu.entries {
		switch e.state {
		case stateActive:
			s.Active++
		case stateSealed:
			s.Sealed++
			if !b.safe(e) {
				s.Unsafe++
			}
		}
		if e.pins > 0 {
			s.Pinned++
		}
	}
	for id, st := range b.mu.streams {
		s.Streams[id] = StreamStats{Used: st.used, Limit: b.capLocked(st), Segments: st.entries, Evictable: st.elig}
		for _, n := range st.capBlocked {
			if n > 0 {
				s.WaitingStreams++
				break
			}
		}
	}
	return s
}

// Entry returns a snapshot of k's accounting.
func (b *Budget) Entry(k types.SegmentKey) (EntryInfo, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	e, ok := b.mu.entries[k]
	if !ok {
		return EntryInfo{}, false
	}
	return b.infoLocked(e), true
}

// Entries returns every accounted segment, least recently used first.
func (b *Budget) Entries() []EntryInfo {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := make([]EntryInfo, 0, len(b.mu.entries))
	for _, e := range b.mu.entries {
		out = append(out, b.infoLocked(e))
	}
	sort.Slice(out, func(i, j int) bool { return out[i].LastUse < out[j].LastUse })
	return out
}

func (b *Budget) infoLocked(e *entry) EntryInfo {
	return EntryInfo{Key: e.key, Bytes: e.bytes, State: e.state.String(), Pins: e.pins, InTier1: e.inTier1,
		InTier2: e.inTier2, Eligible: e.elig, LastUse: e.tick}
}
