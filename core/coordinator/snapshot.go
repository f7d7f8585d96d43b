package coordinator

import (
	"slices"
	"sync"
	"time"

	"github.com/aof2/aof2/core/budget"
	"github.com/aof2/aof2/core/manifest"
	"github.com/aof2/aof2/core/tier1"
	"github.com/aof2/aof2/core/tier2"
	"github.com/aof2/aof2/core/types"
)

// Snapshot is the one observability view of the tiers; the
// host's `dump` prints it.
type Snapshot struct {
	Tier0 budget.Stats
	Tier1 tier1.Stats
	// Tier2 is nil without a tier 2.
	Tier2 *tier2.Stats
	// Jobs queued or running, by kind.
	Queued map[string]int
	// Hydrations waiting for tier-0 room or in progress.
	Hydrating int
	// HydrationLatency percentiles over the recent hydrations.
	HydrationP50, HydrationP90, HydrationP99 time.Duration
	// Residency counts segments per manifest residency state, per stream.
	Residency map[types.StreamID]map[manifest.Residency]int
}

// Snapshot returns the current view.
func (c *Coordinator) Snapshot() Snapshot {
	snap := Snapshot{Tier0: c.budget.Stats(), Tier1: c.warm.Stats(), Queued: map[string]int{},
		Residency: map[types.StreamID]map[manifest.Residency]int{}}
	if c.remote != nil {
		st := c.remote.Stats()
		snap.Tier2 = &st
	}
	c.mu.Lock()
	for j := range c.mu.queued {
		snap.Queued[j.kind.String()]++
	}
	st := c.mu.store
	c.mu.Unlock()
	snap.Hydrating = int(c.hydrating.Load())
	snap.HydrationP50, snap.HydrationP90, snap.HydrationP99 = c.hydrationLat.percentiles()
	if st != nil {
		for _, id := range st.Streams() {
			s, err := st.Lookup(id)
			if err != nil || s.TierLog() == nil {
				continue
			}
			counts := map[manifest.Residency]int{}
			for _, ms := range s.TierLog().Segments() {
				counts[ms.Residency]++
			}
			snap.Residency[id] = counts
		}
	}
	return snap
}

// latencies keeps the most recent hydration latencies for percentiles.
type latencies struct {
	mu   sync.Mutex
	ring []time.Duration
	next int
}

const latencyWindow = 1024

func (l *latencies) add(d time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.ring) < latencyWindow {
		l.ring = append(l.ring, d)
		return
	}
	l.ring[l.next] = d
	l.next = (l.next + 1) % latencyWindow
}

func (l *latencies) percentiles() (p50, p90, p99 time.Duration) {
	l.mu.Lock()
	s := slices.Clone(l.ring)
	l.mu.Unlock()
	if len(s) == 0 {
		return 0, 0, 0
	}
	slices.Sort(s)
	at := func(q float64) time.Duration { return s[min(len(s)-1, int(q*float64(len(s))))] }
	return at(0.50), at(0.90), at(0.99)
}
