package budget

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/aof2/aof2/core/types"
)

const mib = 1 << 20

func key(stream, seg uint64) types.SegmentKey {
	return types.SegmentKey{Stream: types.StreamID(stream), Segment: types.SegmentID(seg)}
}

func newBudget(t testing.TB, cfg Config) *Budget {
	t.Helper()
	if cfg.Registerer == nil {
		cfg.Registerer = prometheus.NewRegistry()
	}
	b, err := New(cfg)
	require.NoError(t, err)
	t.Cleanup(func() { _ = b.Close() })
	return b
}

// sealedSafe admits an active segment, seals it and marks it in both tiers,
// so it is an eviction candidate under either policy.
func sealedSafe(t testing.TB, b *Budget, k types.SegmentKey, bytes int64) {
	t.Helper()
	g, err := b.TryAdmit(Request{Key: k, Bytes: bytes, Active: true})
	require.NoError(t, err)
	require.Empty(t, g.Evict)
	require.NoError(t, b.Seal(k))
	require.NoError(t, b.MarkInTier1(k))
	require.NoError(t, b.MarkInTier2(k))
}

func evictKeys(g Grant) []types.SegmentKey {
	var out []types.SegmentKey
	for _, c := range g.Evict {
		out = append(out, c.Key)
	}
	return out
}

// removeAll reports every candidate of g as deleted.
func removeAll(t testing.TB, b *Budget, g Grant) {
	t.Helper()
	for _, c := range g.Evict {
		require.NoError(t, b.Removed(c.Key))
	}
}

func requireAdmissionBlock(t testing.TB, err error) {
	t.Helper()
	require.ErrorIs(t, err, types.ErrWouldBlock)
	require.Equal(t, types.Admission, types.KindOf(err))
	require.ErrorIs(t, err, ErrBudgetExhausted)
}

// waitQueued waits until n activations are queued (Admit enqueues
// synchronously before it blocks; the goroutine calling it may simply not
// have run yet).
func waitQueued(t testing.TB, b *Budget, n int) {
	t.Helper()
	require.Eventually(t, func() bool { return b.Stats().QueueDepth == n }, 10*time.Second, time.Millisecond,
		"want %d queued", n)
}

// admitAsync runs Admit in a goroutine and returns its result channel.
func admitAsync(ctx context.Context, b *Budget, req Request) <-chan result {
	ch := make(chan result, 1)
	go func() {
		g, err := b.Admit(ctx, req)
		ch <- result{grant: g, err: err}
	}()
	return ch
}

// checkInvariants verifies the internal accounting under the lock:
// counted bytes add up per stream and in total, the eligible heaps hold
// exactly the eligible entries with their byte sums and heap order, every
// evicting entry was evictable (sealed, unpinned, safe), and the waiter
// counts match the queue.
func checkInvariants(t testing.TB, b *Budget) {
	t.Helper()
	require.NoError(t, invariants(b))
}

func invariants(b *Budget) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	used, evicting := int64(0), int64(0)
	perStream := map[types.StreamID]int64{}
	count := map[types.StreamID]int{}
	eligible := int64(0)
	eligStream := map[types.StreamID]int64{}
	keep, keepStream, actives := int64(0), map[types.StreamID]int64{}, 0
	for k, e := range b.mu.entries {
		if e.state == stateActive {
			actives++
			if b.mu.actives[k] != e {
				return fmt.Errorf("%s active but not in the active set", k)
			}
			if !e.sealReq {
				keep += e.bytes
				keepStream[k.Stream] += e.bytes
			}
		} else if e.sealReq {
			return fmt.Errorf("%s is %s and asked to seal", k, e.state)
		}
		if e.key != k {
			return fmt.Errorf("%s filed under %s", e.key, k)
		}
		count[k.Stream]++
		switch e.state {
		case stateEvicting:
			evicting += e.bytes
			if e.pins != 0 || !b.safe(e) {
				return fmt.Errorf("%s evicting but pins=%d safe=%v", k, e.pins, b.safe(e))
			}
		default:
			used += e.bytes
			perStream[k.Stream] += e.bytes
		}
		if b.eligible(e) != e.elig {
			return fmt.Errorf("%s eligible=%v flag=%v", k, b.eligible(e), e.elig)
		}
		if (e.gidx >= 0) != (e.sidx >= 0) || (e.elig && e.gidx < 0) {
			return fmt.Errorf("%s eligible=%v gidx=%d sidx=%d", k, e.elig, e.gidx, e.sidx)
		}
		if e.gidx >= 0 {
			gs, ss := b.mu.lru.items[e.gidx], b.mu.streams[k.Stream].lru.items[e.sidx]
			if gs.e != e || ss.e != e || gs.tick > e.tick || ss.tick > e.tick {
				return fmt.Errorf("%s heap slot stale", k)
			}
		}
		if e.elig {
			eligible += e.bytes
			eligStream[k.Stream] += e.bytes
		}
	}
	if used != b.mu.used || evicting != b.mu.evictingBytes {
		return fmt.Errorf("used %d/%d evicting %d/%d", used, b.mu.used, evicting, b.mu.evictingBytes)
	}
	if eligible != b.mu.elig {
		return fmt.Errorf("eligible bytes %d, counted %d", eligible, b.mu.elig)
	}
	if keep != b.mu.keep || actives != len(b.mu.actives) {
		return fmt.Errorf("active bytes kept %d, counted %d; actives %d, in the set %d", keep, b.mu.keep, actives, len(b.mu.actives))
	}
	if err := heapOK(&b.mu.lru); err != nil {
		return err
	}
	var globalBlocked [numPriorities]int
	capBlocked := map[types.StreamID][numPriorities]int{}
	for p, l := range b.mu.q.fifo {
		for el := l.Front(); el != nil; el = el.Next() {
			w := el.Value.(*waiter)
			switch w.scope {
			case scopeGlobal:
				globalBlocked[p]++
			case scopeStream:
				c := capBlocked[w.req.Key.Stream]
				c[p]++
				capBlocked[w.req.Key.Stream] = c
			}
		}
	}
	if globalBlocked != b.mu.q.globalBlocked {
		return fmt.Errorf("global blocked %v, counted %v", globalBlocked, b.mu.q.globalBlocked)
	}
	for id, st := range b.mu.streams {
		if st.used != perStream[id] || st.entries != count[id] {
			return fmt.Errorf("stream %d used %d/%d entries %d/%d", id, st.used, perStream[id], st.entries, count[id])
		}
		if st.capBlocked != capBlocked[id] {
			return fmt.Errorf("stream %d cap blocked %v, counted %v", id, st.capBlocked, capBlocked[id])
		}
		if st.keep != keepStream[id] {
			return fmt.Errorf("stream %d active bytes kept %d, counted %d", id, st.keep, keepStream[id])
		}
		if st.elig != eligStream[id] {
			return fmt.Errorf("stream %d eligible bytes %d, counted %d", id, st.elig, eligStream[id])
		}
		if err := heapOK(&st.lru); err != nil {
			return fmt.Errorf("stream %d: %w", id, err)
		}
	}
	for id, n := range count {
		if _, ok := b.mu.streams[id]; !ok && n > 0 {
			return fmt.Errorf("stream %d has entries but no state", id)
		}
	}
	return nil
}

func heapOK(h *lruHeap) error {
	for i, s := range h.items {
		if *h.idx(s.e) != i {
			return fmt.Errorf("heap index %d of %s is %d", i, s.e.key, *h.idx(s.e))
		}
		if i > 0 && s.tick < h.items[(i-1)/2].tick {
			return fmt.Errorf("heap order broken at %d", i)
		}
	}
	return nil
}
