package budget

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"

	"github.com/aof2/aof2/core/types"
)

// TestConcurrentStress runs writers, readers and hydrations of several
// streams against one budget and checks, continuously and at the end:
// the accounting is consistent, nothing but forced registrations pushes the
// budget or a stream cap over its limit, no victim was pinned or unsafe
// when handed out, and a pin held by a reader is never lost.
func TestConcurrentStress(t *testing.T) {
	for _, policy := range []Policy{PolicyTier1, PolicyTier2} {
		t.Run(policy.String(), func(t *testing.T) { stress(t, policy) })
	}
}

type stressWorld struct {
	b      *Budget
	policy Policy
	safe   sync.Map // types.SegmentKey → true: a Mark that makes it safe was at least attempted
	pinned sync.Map // types.SegmentKey → *atomic.Int32: pins held by the test
	errs   chan error
}

func (w *stressWorld) fail(format string, args ...any) {
	select {
	case w.errs <- fmt.Errorf(format, args...):
	default:
	}
}

// expected are the errors racing operations may legitimately get.
func expected(err error) bool {
	for _, s := range []error{types.ErrWouldBlock, ErrUnknownSegment, ErrEvicting, ErrExists, ErrActive, ErrPinned,
		ErrNotEvicting, context.DeadlineExceeded, context.Canceled} {
		if errors.Is(err, s) {
			return true
		}
	}
	return false
}

// handle checks and carries out a grant's evictions.
func (w *stressWorld) handle(g Grant, rng *rand.Rand) {
	for _, c := range g.Evict {
		if _, ok := w.safe.Load(c.Key); !ok {
			w.fail("victim %s was never marked safe", c.Key)
		}
		if p, ok := w.pinned.Load(c.Key); ok && p.(*atomic.Int32).Load() > 0 {
			w.fail("victim %s is pinned by a reader", c.Key)
		}
		// ErrUnknownSegment: retention removed it first (a racing job).
		// ErrActive: and the stream's own worker, which draws from a small
		// set of ids, admitted the same key again as a new active segment.
		if err := w.b.Removed(c.Key); err != nil && !errors.Is(err, ErrUnknownSegment) && !errors.Is(err, ErrActive) {
			w.fail("finishing eviction of %s: %v", c.Key, err)
		}
	}
}

func (w *stressWorld) pins(k types.SegmentKey) *atomic.Int32 {
	p, _ := w.pinned.LoadOrStore(k, new(atomic.Int32))
	return p.(*atomic.Int32)
}

func (w *stressWorld) worker(stream uint64, seed uint64, ops int) {
	rng := rand.New(rand.NewPCG(seed, stream))
	var held []types.SegmentKey
	for i := 0; i < ops; i++ {
		k := key(stream, uint64(rng.IntN(40)+1))
		var err error
		switch op := rng.IntN(12); op {
		case 0, 1: // writer rollover
			var g Grant
			if rng.IntN(2) == 0 {
				g, err = w.b.TryAdmit(Request{Key: k, Bytes: int64(rng.IntN(2)+1) * mib, Active: true})
			} else {
				ctx, cancel := context.WithTimeout(context.Background(), time.Duration(rng.IntN(2000))*time.Microsecond)
				g, err = w.b.Admit(ctx, Request{Key: k, Bytes: mib, Active: true, Priority: PriorityForeground})
				cancel()
			}
			if err == nil {
				w.handle(g, rng)
			}
		case 2: // hydration for a reader, pinned
			ctx, cancel := context.WithTimeout(context.Background(), time.Duration(rng.IntN(2000))*time.Microsecond)
			var g Grant
			w.safe.Store(k, true)
			g, err = w.b.Admit(ctx, Request{Key: k, Bytes: mib, InTier1: true, InTier2: true, Pin: true,
				Priority: Priority(rng.IntN(numPriorities))})
			cancel()
			if err == nil {
				w.pins(k).Add(1)
				held = append(held, k)
				w.handle(g, rng)
			}
		case 3, 4:
			err = w.b.Seal(k)
		case 5:
			if w.policy == PolicyTier1 { // tier 1 alone makes it safe only under this policy
				w.safe.Store(k, true)
			}
			err = w.b.MarkInTier1(k)
		case 6:
			w.safe.Store(k, true)
			err = w.b.MarkInTier2(k)
		case 7: // reader opens
			if err = w.b.Pin(k); err == nil {
				w.pins(k).Add(1)
				held = append(held, k)
			}
		case 8: // reader closes
			if len(held) > 0 {
				j := rng.IntN(len(held))
				hk := held[j]
				held = append(held[:j], held[j+1:]...)
				w.pins(hk).Add(-1)
				if err := w.b.Unpin(hk); err != nil {
					w.fail("unpin %s held by the test: %v", hk, err) // the pin was lost
				}
			}
		case 9:
			err = w.b.Touch(k)
		case 10: // retention
			err = w.b.Removed(k)
		case 11:
			if rng.IntN(10) == 0 {
				for _, c := range w.b.Reclaim() {
					w.handle(Grant{Evict: []Candidate{c}}, rng)
				}
			}
		}
		if err != nil && !expected(err) {
			w.fail("stream %d op on %s: %v", stream, k, err)
		}
	}
	for _, hk := range held {
		w.pins(hk).Add(-1)
		if err := w.b.Unpin(hk); err != nil {
			w.fail("final unpin %s: %v", hk, err)
		}
	}
}

func stress(t *testing.T, policy Policy) {
	const streams, ops = 6, 3000
	b := newBudget(t, Config{MaxBytes: 24 * mib, StreamMaxBytes: 8 * mib, Policy: policy,
		StreamLimits: map[types.StreamID]int64{1: 12 * mib}})
	w := &stressWorld{b: b, policy: policy, errs: make(chan error, 1)}
	stop := make(chan struct{})
	checked := make(chan int)
	go func() { // checks the invariants while the workers run
		n := 0
		for {
			select {
			case <-stop:
				checked <- n
				return
			case <-time.After(100 * time.Microsecond):
			}
			if err := invariants(b); err != nil {
				w.fail("invariants: %v", err)
			}
			if err := limitsHold(b); err != nil {
				w.fail("limits: %v", err)
			}
			n++
		}
	}()
	var wg sync.WaitGroup
	for s := uint64(1); s <= streams; s++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			w.worker(s, uint64(policy)+1, ops)
		}()
	}
	wg.Wait()
	close(stop)
	n := <-checked
	select {
	case err := <-w.errs:
		t.Fatal(err)
	default:
	}
	checkInvariants(t, b)
	require.NoError(t, limitsHold(b))
	s := b.Stats()
	require.Zero(t, s.QueueDepth)
	require.Zero(t, s.Pinned)
	require.Positive(t, n)
	ev, blocks := testutil.ToFloat64(b.m.evictions), testutil.ToFloat64(b.m.blocks)
	require.Positive(t, ev, "the workload must exercise eviction")
	require.Positive(t, blocks, "the workload must exercise admission blocks")
	t.Logf("evictions %v, admission blocks %v, admitted active %v, hydrated %v", ev, blocks,
		testutil.ToFloat64(b.m.admitActive), testutil.ToFloat64(b.m.admitHydrated))
	t.Logf("%d concurrent invariant checks; end state: used %d evicting %d segments %d (active %d, sealed %d, unsafe %d)",
		n, s.Used, s.Evicting, s.Segments, s.Active, s.Sealed, s.Unsafe)
}

// limitsHold: with no forced registration and no Restore, counted bytes
// never exceed the global budget or any stream's cap.
func limitsHold(b *Budget) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.mu.maxBytes > 0 && b.mu.used > b.mu.maxBytes {
		return fmt.Errorf("used %d > max %d", b.mu.used, b.mu.maxBytes)
	}
	for id, st := range b.mu.streams {
		if c := b.capLocked(st); c > 0 && st.used > c {
			return fmt.Errorf("stream %d used %d > cap %d", id, st.used, c)
		}
	}
	return nil
}
