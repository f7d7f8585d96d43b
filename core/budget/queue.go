package budget

import (
	"container/list"
	"context"
	"errors"
	"fmt"

	"github.com/aof2/aof2/core/types"
)

// scope says what a waiting activation is blocked on.
type scope uint8

const (
	scopeNone   scope = iota
	scopeGlobal       // the global budget: nothing behind it at its priority or lower proceeds
	scopeStream       // only its stream's cap: other streams' activations go past it
)

// result is what a waiter receives.
type result struct {
	grant Grant
	err   error
}

// waiter is one pending activation (Admit).
type waiter struct {
	req   Request
	elem  *list.Element // nil once delivered or cancelled
	scope scope
	done  chan result // buffered 1; written once, under Budget.mu
}

// queue holds the pending activations: one FIFO per priority.
type queue struct {
	fifo          [numPriorities]*list.List
	globalBlocked [numPriorities]int // waiters with scopeGlobal
}

func (q *queue) init() {
	for p := range q.fifo {
		q.fifo[p] = list.New()
	}
}

func (q *queue) len() int {
	n := 0
	for _, l := range q.fifo {
		n += l.Len()
	}
	return n
}

// setScopeLocked moves w's contribution to the blocked counts.
func (b *Budget) setScopeLocked(w *waiter, s scope) {
	p := w.req.Priority
	switch w.scope {
	case scopeGlobal:
		b.mu.q.globalBlocked[p]--
	case scopeStream:
		b.streamLocked(w.req.Key.Stream).capBlocked[p]--
	}
	w.scope = s
	switch s {
	case scopeGlobal:
		b.mu.q.globalBlocked[p]++
	case scopeStream:
		b.streamLocked(w.req.Key.Stream).capBlocked[p]++
	}
}

// unqueueLocked takes w out of the queue.
func (b *Budget) unqueueLocked(w *waiter) {
	p := w.req.Priority
	b.mu.q.fifo[p].Remove(w.elem)
	w.elem = nil
	b.setScopeLocked(w, scopeNone)
	b.m.queueByPrio[p].Set(float64(b.mu.q.fifo[p].Len()))
	if st, ok := b.mu.streams[w.req.Key.Stream]; ok {
		b.maybeForgetLocked(st)
	}
}

func (b *Budget) deliverLocked(w *waiter, r result) {
	b.unqueueLocked(w)
	w.done <- r
}

// aheadLocked reports whether a queued activation must go before req:
// one of at least req's priority blocked on the global budget, or one of
// req's own stream blocked on the stream's cap.
func (b *Budget) aheadLocked(req *Request) bool {
	st := b.mu.streams[req.Key.Stream]
	for p := int(req.Priority); p < numPriorities; p++ {
		if b.mu.q.globalBlocked[p] > 0 || (st != nil && st.capBlocked[p] > 0) {
			return true
		}
	}
	return false
}

// drainLocked admits waiting activations in priority order, FIFO within a
// priority, for as long as they fit. A waiter blocked on the global budget
// stops the pass (space is handed out in order, so a large request is not
// starved by smaller ones); one blocked only on its stream's cap is skipped
// together with the rest of its stream.
func (b *Budget) drainLocked() {
	if b.mu.q.len() == 0 {
		return
	}
	var skip map[types.StreamID]bool
	for p := numPriorities - 1; p >= 0; p-- {
		for el := b.mu.q.fifo[p].Front(); el != nil; {
			next := el.Next()
			w := el.Value.(*waiter)
			if skip[w.req.Key.Stream] {
				// Behind its stream's capped waiter: blocked by that
				// cap, not by the global budget (a scope left at
				// scopeGlobal would refuse every other stream).
				b.setScopeLocked(w, scopeStream)
				el = next
				continue
			}
			g, sc, err := b.tryAdmitLocked(&w.req)
			switch {
			case sc == scopeGlobal:
				b.setScopeLocked(w, scopeGlobal)
				return
			case sc == scopeStream:
				b.setScopeLocked(w, scopeStream)
				if skip == nil {
					skip = make(map[types.StreamID]bool)
				}
				skip[w.req.Key.Stream] = true
			default:
				b.deliverLocked(w, result{grant: g, err: err})
			}
			el = next
		}
	}
}

// failAllLocked delivers err to every waiter.
func (b *Budget) failAllLocked(err error) {
	for p := range b.mu.q.fifo {
		for el := b.mu.q.fifo[p].Front(); el != nil; {
			next := el.Next()
			w := el.Value.(*waiter)
			b.deliverLocked(w, result{err: fmt.Errorf("tier0: admit %s: %w", w.req.Key, err)})
			el = next
		}
	}
}

// tryAdmitLocked admits req if it fits, choosing eviction candidates to
// make room. When it cannot, it says whether the global budget or only
// the stream's cap is in the way (scope); err is then a WouldBlock.
func (b *Budget) tryAdmitLocked(req *Request) (Grant, scope, error) {
	if b.mu.closed {
		return Grant{}, scopeNone, fmt.Errorf("tier0: admit %s: %w", req.Key, ErrClosed)
	}
	if _, ok := b.mu.entries[req.Key]; ok {
		return Grant{}, scopeNone, fmt.Errorf("tier0: admit %s: %w", req.Key, ErrExists)
	}
	st, known := b.mu.streams[req.Key.Stream]
	if !known {
		st = &streamState{id: req.Key.Stream} // created only if admitted
	}
	limit, max := b.capLocked(st), b.mu.maxBytes
	if max > 0 && req.Bytes > max {
		return Grant{}, scopeNone, fmt.Errorf("tier0: admit %s: %w: %d bytes > tier0.max_bytes %d", req.Key, ErrExceedsBudget, req.Bytes, max)
	}
	if limit > 0 && req.Bytes > limit {
		return Grant{}, scopeNone, fmt.Errorf("tier0: admit %s: %w: %d bytes > stream cap %d", req.Key, ErrExceedsBudget, req.Bytes, limit)
	}
	var sDef, gDef int64 // bytes to free for the stream cap and the global budget
	if limit > 0 {
		sDef = st.used + req.Bytes - limit
	}
	if max > 0 {
		gDef = b.mu.used + req.Bytes - max
	}
	// Everything eligible could go, so these two checks decide: evicting
	// the stream's own oldest segments lowers both deficits.
	if gDef > 0 && b.mu.elig < gDef {
		return Grant{}, scopeGlobal, b.blocked(req, "global", b.mu.used, max)
	}
	if sDef > 0 && st.elig < sDef { // a known stream: a new one uses nothing yet
		return Grant{}, scopeStream, b.blocked(req, "stream", st.used, limit)
	}
	var evict []Candidate
	for sDef > 0 {
		c := b.evictLocked(b.oldestLocked(&st.lru))
		sDef -= c.Bytes
		gDef -= c.Bytes
		evict = append(evict, c)
	}
	for gDef > 0 {
		c := b.evictLocked(b.oldestLocked(&b.mu.lru))
		gDef -= c.Bytes
		evict = append(evict, c)
	}
	e := &entry{key: req.Key, bytes: req.Bytes, state: stateSealed, inTier1: req.InTier1, inTier2: req.InTier2}
	if req.Active {
		e.state = stateActive
	}
	if req.Pin {
		e.pins = 1
	}
	b.insertLocked(e)
	kind := "hydrate"
	if req.Active {
		b.m.admitActive.Inc()
		kind = "active"
	} else {
		b.m.admitHydrated.Inc()
	}
	b.log.Debug("tiered_admit_segment", "stream_id", req.Key.Stream, "segment_id", req.Key.Segment,
		"bytes", req.Bytes, "kind", kind, "evictions", len(evict))
	return Grant{Key: req.Key, Bytes: req.Bytes, Evict: evict}, scopeNone, nil
}

func (b *Budget) blocked(req *Request, where string, used, limit int64) error {
	return &types.WouldBlock{Kind: types.Admission, Cause: fmt.Errorf(
		"%w: %s needs %d bytes, %s budget has %d of %d used and nothing more evictable",
		ErrBudgetExhausted, req.Key, req.Bytes, where, used, limit)}
}

// TryAdmit admits the segment if there is room now, or can be made by
// evicting safe sealed segments (listed in Grant.Evict, for the caller to
// delete and report with Removed). It never waits: when only active,
// pinned or not-yet-safe segments stand in the way, or an earlier activation
// of at least the same priority is waiting, it returns a
// *types.WouldBlock{Kind: types.Admission} (errors.Is(err,
// types.ErrWouldBlock)) and changes nothing. A request that can never fit
// returns ErrExceedsBudget.
func (b *Budget) TryAdmit(req Request) (Grant, error) {
	if err := req.validate(); err != nil {
		return Grant{}, err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.mu.closed && b.aheadLocked(&req) {
		b.m.blocks.Inc()
		return Grant{}, &types.WouldBlock{Kind: types.Admission, Cause: fmt.Errorf(
			"%w: %s queued behind waiting activations", ErrBudgetExhausted, req.Key)}
	}
	g, _, err := b.tryAdmitLocked(&req)
	if errors.Is(err, types.ErrWouldBlock) {
		b.m.blocks.Inc()
	}
	return g, err
}

// Admit is TryAdmit that waits: when the segment cannot be admitted now
// it joins the activation queue (by req.Priority, FIFO within one) and
// returns once space frees (Removed, a segment becoming safe or unpinned,
// a raised limit) and its turn comes, with the same Grant as TryAdmit. It
// waits on a channel, never polls. If ctx ends first the request leaves
// the queue (or, if it was admitted meanwhile, the admission is undone)
// and ctx's error is returned.
func (b *Budget) Admit(ctx context.Context, req Request) (Grant, error) {
	if err := req.validate(); err != nil {
		return Grant{}, err
	}
	b.mu.Lock()
	if !b.mu.closed && !b.aheadLocked(&req) {
		g, sc, err := b.tryAdmitLocked(&req)
		if sc == scopeNone {
			b.mu.Unlock()
			return g, err
		}
	}
	if b.mu.closed {
		b.mu.Unlock()
		return Grant{}, fmt.Errorf("tier0: admit %s: %w", req.Key, ErrClosed)
	}
	w := &waiter{req: req, done: make(chan result, 1)}
	w.elem = b.mu.q.fifo[req.Priority].PushBack(w)
	b.setScopeLocked(w, scopeGlobal)
	b.m.queueByPrio[req.Priority].Set(float64(b.mu.q.fifo[req.Priority].Len()))
	b.m.blocks.Inc()
	b.drainLocked() // it may be first in line for space another waiter cannot use
	b.mu.Unlock()

	select {
	case r := <-w.done:
		return r.grant, r.err
	case <-ctx.Done():
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if w.elem != nil {
		b.unqueueLocked(w)
		b.drainLocked() // those behind it may fit now
		return Grant{}, fmt.Errorf("tier0: admit %s: %w", req.Key, ctx.Err())
	}
	if r := <-w.done; r.err == nil {
		b.undoLocked(r.grant)
	}
	return Grant{}, fmt.Errorf("tier0: admit %s: %w", req.Key, ctx.Err())
}

// undoLocked reverses a grant nobody received: the admitted entry goes and
// its eviction candidates count again.
func (b *Budget) undoLocked(g Grant) {
	if e, ok := b.mu.entries[g.Key]; ok {
		e.pins = 0
		b.dropLocked(e)
	}
	for _, c := range g.Evict {
		if e, ok := b.mu.entries[c.Key]; ok && e.state == stateEvicting {
			b.restoreLocked(e)
		}
	}
	b.drainLocked()
}
