package budget

import (
	"fmt"
	"slices"
	"sync"

	"github.com/hashicorp/go-hclog"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/aof2/aof2/core/types"
)

// streamState is one stream's share of the budget.
type streamState struct {
	id       types.StreamID
	used     int64 // counted bytes (active + sealed, not evicting)
	limit    int64 // override; meaningful when hasLimit
	hasLimit bool
	entries  int // entries of any state
	lru      lruHeap
	elig     int64 // bytes of eligible entries
	keep     int64 // bytes of active entries not asked to seal (pressure.go)
	gauge    prometheus.Gauge
	// waiters of this stream blocked only by the stream's own cap, by
	// priority (see queue.go).
	capBlocked [numPriorities]int
}

// Budget is tier 0's residency accounting: a byte budget across streams
// with per-stream caps, an LRU of sealed segments, the eviction-safety
// policy and a priority queue of pending activations. It never touches a
// file: it tells the caller what to evict and when a segment may be
// created. All methods are safe for concurrent use; it runs no goroutines.
type Budget struct {
	cfg Config
	log hclog.Logger
	m   *metrics

	mu struct {
		sync.Mutex
		maxBytes      int64
		streamMax     int64
		entries       map[types.SegmentKey]*entry
		streams       map[types.StreamID]*streamState
		lru           lruHeap // all streams
		elig          int64   // bytes of eligible entries
		keep          int64   // bytes of active entries not asked to seal (pressure.go)
		actives       map[types.SegmentKey]*entry
		used          int64 // counted bytes
		evictingBytes int64
		tick          uint64
		q             queue
		closed        bool
	}
}

// New returns a Budget configured by cfg.
func New(cfg Config) (*Budget, error) {
	if err := cfg.validate(); err != nil {
		return nil, fmt.Errorf("tier0: %w", err)
	}
	m, err := newMetrics(cfg.Registerer)
	if err != nil {
		return nil, err
	}
	b := &Budget{cfg: cfg, log: cfg.Logger, m: m}
	if b.log == nil {
		b.log = hclog.NewNullLogger()
	}
	b.mu.maxBytes = cfg.MaxBytes
	b.mu.streamMax = cfg.StreamMaxBytes
	b.mu.entries = make(map[types.SegmentKey]*entry)
	b.mu.actives = make(map[types.SegmentKey]*entry)
	b.mu.streams = make(map[types.StreamID]*streamState)
	b.mu.lru.global = true
	b.mu.q.init()
	for id, v := range cfg.StreamLimits {
		st := b.streamLocked(id)
		st.limit, st.hasLimit = v, true
	}
	m.budget.Set(float64(cfg.MaxBytes))
	return b, nil
}

// Close fails every pending activation with ErrClosed and unregisters the
// metrics. Later admissions fail with ErrClosed; the accounting calls
// (Seal, Removed, ...) keep working so a caller can wind down.
func (b *Budget) Close() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.mu.closed {
		return nil
	}
	b.mu.closed = true
	b.failAllLocked(ErrClosed)
	b.m.unregister()
	return nil
}

// streamLocked returns (creating) the stream's state.
func (b *Budget) streamLocked(id types.StreamID) *streamState {
	st, ok := b.mu.streams[id]
	if !ok {
		st = &streamState{id: id, gauge: b.m.streamUsed(id)}
		b.mu.streams[id] = st
	}
	return st
}

// maybeForgetLocked drops an empty stream's state so that stream churn does
// not grow the maps or the metric's label set.
func (b *Budget) maybeForgetLocked(st *streamState) {
	if st.entries > 0 || st.hasLimit {
		return
	}
	for _, n := range st.capBlocked {
		if n > 0 {
			return
		}
	}
	delete(b.mu.streams, st.id)
	b.m.forgetStream(st.id)
}

// capLocked is the stream's effective cap (0 = none).
func (b *Budget) capLocked(st *streamState) int64 {
	if st.hasLimit {
		return st.limit
	}
	return b.mu.streamMax
}

func (b *Budget) nextTick() uint64 {
	b.mu.tick++
	return b.mu.tick
}

func (b *Budget) lookupLocked(k types.SegmentKey) (*entry, error) {
	e, ok := b.mu.entries[k]
	if !ok {
		return nil, ErrUnknownSegment
	}
	return e, nil
}

// safe reports whether the segment's local copy may go, per policy.
func (b *Budget) safe(e *entry) bool {
	if b.cfg.Policy == PolicyTier2 {
		return e.inTier2
	}
	return e.inTier1 || e.inTier2
}

func (b *Budget) eligible(e *entry) bool {
	return e.state == stateSealed && e.pins == 0 && b.safe(e)
}

// syncEligLocked updates e's eligibility and the eligible byte sums, and
// (re)places it in the LRU heaps when it becomes eligible. Leaving
// eligibility does not touch the heaps (see lruHeap).
func (b *Budget) syncEligLocked(e *entry) {
	want := b.eligible(e)
	if want == e.elig {
		return
	}
	e.elig = want
	st := b.mu.streams[e.key.Stream]
	delta := e.bytes
	if !want {
		delta = -delta
	}
	b.mu.elig += delta
	st.elig += delta
	if want && e.gidx < 0 {
		b.mu.lru.push(e)
		st.lru.push(e)
	}
}

// unheapLocked takes e out of both LRU heaps.
func (b *Budget) unheapLocked(e *entry) {
	if e.gidx >= 0 {
		b.mu.lru.remove(e)
		b.mu.streams[e.key.Stream].lru.remove(e)
	}
}

// oldestLocked returns the least recently used eligible entry of h (the
// global heap or a stream's), repairing stale slots on the way; nil when
// there is none.
func (b *Budget) oldestLocked(h *lruHeap) *entry {
	for h.len() > 0 {
		top := &h.items[0]
		e := top.e
		switch {
		case !e.elig:
			b.unheapLocked(e)
		case top.tick != e.tick:
			top.tick = e.tick
			h.down(0)
		default:
			return e
		}
	}
	return nil
}

// countLocked adds delta to the counted bytes of e's stream and the total.
func (b *Budget) countLocked(st *streamState, delta int64) {
	st.used += delta
	b.mu.used += delta
	st.gauge.Set(float64(st.used))
}

// insertLocked accounts for a new entry.
func (b *Budget) insertLocked(e *entry) {
	st := b.streamLocked(e.key.Stream)
	e.gidx, e.sidx = -1, -1
	e.tick = b.nextTick()
	b.mu.entries[e.key] = e
	st.entries++
	b.countLocked(st, e.bytes)
	b.syncEligLocked(e)
	if e.state == stateActive {
		b.enterActiveLocked(e)
	}
}

// Segment describes an existing segment for Register.
type Segment struct {
	Key              types.SegmentKey
	Bytes            int64
	Active           bool
	InTier1, InTier2 bool
}

// Register accounts for a segment already on disk (at start-up, after
// recovery and manifest replay). It always succeeds, even over budget:
// the files exist. Call Reclaim afterwards to get back under budget.
func (b *Budget) Register(s Segment) error {
	if s.Bytes <= 0 {
		return fmt.Errorf("tier0: register %s: segment size %d must be positive", s.Key, s.Bytes)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if _, ok := b.mu.entries[s.Key]; ok {
		return fmt.Errorf("tier0: register %s: %w", s.Key, ErrExists)
	}
	st := stateSealed
	if s.Active {
		st = stateActive
	}
	b.insertLocked(&entry{key: s.Key, bytes: s.Bytes, state: st, inTier1: s.InTier1, inTier2: s.InTier2})
	return nil
}

// Seal turns an active segment into a sealed one: it enters the LRU as the
// most recently used and becomes evictable once it is safe.
func (b *Budget) Seal(k types.SegmentKey) error {
	return b.mutate(k, "seal", func(e *entry) error {
		if e.state != stateActive {
			return nil // idempotent
		}
		b.leaveActiveLocked(e)
		e.state = stateSealed
		e.tick = b.nextTick()
		return nil
	})
}

// Shrink lowers a sealed segment's charge to bytes: what its file
// occupies once the seal gave back its unused room
// (segment.SealedFootprint). It never raises a charge and leaves active
// and evicting segments alone; the room freed goes to waiting activations
// at once.
func (b *Budget) Shrink(k types.SegmentKey, bytes int64) error {
	return b.mutate(k, "shrink", func(e *entry) error {
		if e.state != stateSealed || bytes <= 0 || bytes >= e.bytes {
			return nil
		}
		st := b.mu.streams[e.key.Stream]
		delta := bytes - e.bytes
		if e.elig {
			b.mu.elig += delta
			st.elig += delta
		}
		b.countLocked(st, delta)
		e.bytes = bytes
		return nil
	})
}

// MarkInTier1 records that tier 1 holds the segment.
func (b *Budget) MarkInTier1(k types.SegmentKey) error {
	return b.mutate(k, "mark in tier 1", func(e *entry) error { e.inTier1 = true; return nil })
}

// UnmarkInTier1 records that tier 1 no longer holds the segment (its
// artifact was evicted or removed).
func (b *Budget) UnmarkInTier1(k types.SegmentKey) error {
	return b.mutate(k, "unmark in tier 1", func(e *entry) error { e.inTier1 = false; return nil })
}

// MarkInTier2 records that tier 2 holds the segment (the upload is
// verified and journaled).
func (b *Budget) MarkInTier2(k types.SegmentKey) error {
	return b.mutate(k, "mark in tier 2", func(e *entry) error { e.inTier2 = true; return nil })
}

// Pin keeps the segment from eviction until a matching Unpin (an open
// reader). Pins nest. A pin also counts as a use.
func (b *Budget) Pin(k types.SegmentKey) error {
	return b.mutate(k, "pin", func(e *entry) error {
		e.pins++
		b.touchLocked(e)
		return nil
	})
}

// Unpin releases one Pin.
func (b *Budget) Unpin(k types.SegmentKey) error {
	return b.mutate(k, "unpin", func(e *entry) error {
		if e.pins == 0 {
			return ErrNotPinned
		}
		e.pins--
		return nil
	})
}

// mutate runs f on the entry (refusing evicting ones), resyncs its LRU
// membership and lets waiting activations proceed.
func (b *Budget) mutate(k types.SegmentKey, op string, f func(*entry) error) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	e, err := b.lookupLocked(k)
	if err != nil {
		return fmt.Errorf("tier0: %s %s: %w", op, k, err)
	}
	if e.state == stateEvicting {
		return fmt.Errorf("tier0: %s %s: %w", op, k, ErrEvicting)
	}
	if err := f(e); err != nil {
		return fmt.Errorf("tier0: %s %s: %w", op, k, err)
	}
	b.syncEligLocked(e)
	b.drainLocked()
	return nil
}

// Touch marks the segment as used now (a read): it moves to the recent end
// of the LRU.
func (b *Budget) Touch(k types.SegmentKey) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	e, err := b.lookupLocked(k)
	if err != nil {
		return fmt.Errorf("tier0: touch %s: %w", k, err)
	}
	if e.state == stateEvicting {
		return fmt.Errorf("tier0: touch %s: %w", k, ErrEvicting)
	}
	b.touchLocked(e)
	return nil
}

func (b *Budget) touchLocked(e *entry) {
	e.tick = b.nextTick() // the heaps catch up lazily (see lruHeap)
}

// Removed tells the budget the segment's local copy is gone: an eviction
// candidate that was deleted, or a sealed segment dropped for another
// reason (retention). Active and pinned segments are refused. The freed
// space goes to waiting activations at once.
func (b *Budget) Removed(k types.SegmentKey) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	e, err := b.lookupLocked(k)
	if err != nil {
		return fmt.Errorf("tier0: removed %s: %w", k, err)
	}
	switch {
	case e.state == stateActive:
		return fmt.Errorf("tier0: removed %s: %w", k, ErrActive)
	case e.pins > 0:
		return fmt.Errorf("tier0: removed %s: %w (%d pins)", k, ErrPinned, e.pins)
	}
	b.dropLocked(e)
	b.drainLocked()
	return nil
}

// dropLocked forgets e entirely.
func (b *Budget) dropLocked(e *entry) {
	st := b.mu.streams[e.key.Stream]
	wasSealed := e.state != stateActive
	if e.state == stateActive {
		b.leaveActiveLocked(e)
	}
	if e.state == stateEvicting {
		b.mu.evictingBytes -= e.bytes
		b.m.evicting.Set(float64(b.mu.evictingBytes))
	} else {
		b.countLocked(st, -e.bytes)
	}
	e.state = stateEvicting // not eligible any more
	b.syncEligLocked(e)
	b.unheapLocked(e)
	delete(b.mu.entries, e.key)
	st.entries--
	b.m.dropped.Inc()
	b.log.Debug("tier0_segment_dropped", "stream_id", e.key.Stream, "segment_id", e.key.Segment,
		"bytes", e.bytes, "was_sealed", wasSealed)
	b.maybeForgetLocked(st)
}

// Restore takes back an eviction candidate whose eviction was abandoned
// (the delete failed, or the coordinator changed its mind): the segment
// counts against the budget again, in its old LRU position, and may push
// the budget over its limit until Reclaim or the next admission evicts.
func (b *Budget) Restore(k types.SegmentKey) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	e, err := b.lookupLocked(k)
	if err != nil {
		return fmt.Errorf("tier0: restore %s: %w", k, err)
	}
	if e.state != stateEvicting {
		return fmt.Errorf("tier0: restore %s: %w", k, ErrNotEvicting)
	}
	b.restoreLocked(e)
	b.drainLocked()
	return nil
}

func (b *Budget) restoreLocked(e *entry) {
	e.state = stateSealed
	b.mu.evictingBytes -= e.bytes
	b.m.evicting.Set(float64(b.mu.evictingBytes))
	b.countLocked(b.mu.streams[e.key.Stream], e.bytes)
	b.syncEligLocked(e)
}

// evictLocked turns an eligible entry into an eviction candidate.
func (b *Budget) evictLocked(e *entry) Candidate {
	st := b.mu.streams[e.key.Stream]
	e.state = stateEvicting
	b.syncEligLocked(e)
	b.unheapLocked(e)
	b.countLocked(st, -e.bytes)
	b.mu.evictingBytes += e.bytes
	b.m.evicting.Set(float64(b.mu.evictingBytes))
	b.m.evictions.Inc()
	b.m.evictedBytes.Add(float64(e.bytes))
	b.log.Debug("tier0_eviction_scheduled", "stream_id", e.key.Stream, "segment_id", e.key.Segment, "bytes", e.bytes)
	return Candidate{Key: e.key, Bytes: e.bytes}
}

// Reclaim hands out eviction candidates, oldest first, until every stream
// is within its cap and the total within MaxBytes, or nothing more is
// evictable. Use it after Register, Restore or a lowered limit; admissions
// evict by themselves.
func (b *Budget) Reclaim() []Candidate {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []Candidate
	ids := make([]types.StreamID, 0, len(b.mu.streams))
	for id := range b.mu.streams {
		ids = append(ids, id)
	}
	slices.Sort(ids) // deterministic: streams in id order, then the global LRU
	for _, id := range ids {
		st := b.mu.streams[id]
		limit := b.capLocked(st)
		for limit > 0 && st.used > limit && st.elig > 0 {
			out = append(out, b.evictLocked(b.oldestLocked(&st.lru)))
		}
	}
	for b.mu.maxBytes > 0 && b.mu.used > b.mu.maxBytes && b.mu.elig > 0 {
		out = append(out, b.evictLocked(b.oldestLocked(&b.mu.lru)))
	}
	return out
}

// SetMaxBytes changes the global budget (0 = unlimited). Lowering it evicts
// nothing by itself: call Reclaim.
func (b *Budget) SetMaxBytes(n int64) error {
	if n < 0 {
		return fmt.Errorf("tier0: %w", &types.ConfigError{Key: "tier0.max_bytes", Reason: fmt.Sprintf("negative (%d)", n)})
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.mu.maxBytes = n
	b.m.budget.Set(float64(n))
	b.drainLocked()
	return nil
}

// SetStreamMaxBytes changes the cap of every stream without an override
// of its own (tier0.stream_max_bytes; 0 = none). Lowering it evicts
// nothing by itself: call Reclaim.
func (b *Budget) SetStreamMaxBytes(n int64) error {
	if n < 0 {
		return fmt.Errorf("tier0: %w", &types.ConfigError{Key: "tier0.stream_max_bytes", Reason: fmt.Sprintf("negative (%d)", n)})
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.mu.streamMax = n
	b.drainLocked()
	return nil
}

// StreamLimits returns the per-stream overrides (SetStreamLimit).
func (b *Budget) StreamLimits() map[types.StreamID]int64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := map[types.StreamID]int64{}
	for id, st := range b.mu.streams {
		if st.hasLimit {
			out[id] = st.limit
		}
	}
	return out
}

// SetStreamLimit overrides one stream's cap (0 = no cap for this stream).
func (b *Budget) SetStreamLimit(id types.StreamID, n int64) error {
	if n < 0 {
		return fmt.Errorf("tier0: %w", &types.ConfigError{Key: fmt.Sprintf("tier0.streams.%d.max_bytes", id),
			Reason: fmt.Sprintf("negative (%d)", n)})
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	st := b.streamLocked(id)
	st.limit, st.hasLimit = n, true
	b.drainLocked()
	return nil
}

// ClearStreamLimit removes a stream's override; Config.StreamMaxBytes
// applies again.
func (b *Budget) ClearStreamLimit(id types.StreamID) {
	b.mu.Lock()
	defer b.mu.Unlock()
	st, ok := b.mu.streams[id]
	if !ok {
		return
	}
	st.hasLimit = false
	b.drainLocked()
	b.maybeForgetLocked(st)
}

// Over reports whether the budget, or stream id's cap, counts more bytes
// than it allows (segments admitted over it with Register, or a lowered
// limit): what a writer that must not add more checks first.
func (b *Budget) Over(id types.StreamID) (used, limit int64, over bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.mu.maxBytes > 0 && b.mu.used > b.mu.maxBytes {
		return b.mu.used, b.mu.maxBytes, true
	}
	if st, ok := b.mu.streams[id]; ok {
		if c := b.capLocked(st); c > 0 && st.used > c {
			return st.used, c, true
		}
	}
	return 0, 0, false
}
