package budget

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/aof2/aof2/core/types"
)

const benchSegments = 100_000

// benchBudget returns a full budget of n sealed 1 MiB segments over 16
// streams; safe says whether they are eviction candidates.
func benchBudget(b *testing.B, n int, safe bool) (*Budget, []types.SegmentKey) {
	b.Helper()
	bud := newBudget(b, Config{MaxBytes: int64(n) * mib})
	keys := make([]types.SegmentKey, n)
	for i := range keys {
		k := key(uint64(i%16), uint64(i/16+1))
		keys[i] = k
		require.NoError(b, bud.Register(Segment{Key: k, Bytes: mib, InTier1: safe, InTier2: safe}))
	}
	return bud, keys
}

func BenchmarkTouch(b *testing.B) {
	bud, keys := benchBudget(b, benchSegments, true)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := bud.Touch(keys[(i*7919)%len(keys)]); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkTouchParallel(b *testing.B) {
	bud, keys := benchBudget(b, benchSegments, true)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			if err := bud.Touch(keys[(i*7919)%len(keys)]); err != nil {
				b.Error(err)
				return
			}
			i++
		}
	})
}

func BenchmarkPinUnpin(b *testing.B) {
	bud, keys := benchBudget(b, benchSegments, true)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		k := keys[(i*7919)%len(keys)]
		if err := bud.Pin(k); err != nil {
			b.Fatal(err)
		}
		if err := bud.Unpin(k); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkRollover is the steady state of a full tier 0: admit a new
// active segment (choosing one victim among 100k candidates), report the
// victim removed, seal the new segment and mark it in tier 1.
func BenchmarkRollover(b *testing.B) {
	bud, _ := benchBudget(b, benchSegments, true)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		k := key(99, uint64(i+1))
		g, err := bud.TryAdmit(Request{Key: k, Bytes: mib, Active: true})
		if err != nil || len(g.Evict) != 1 {
			b.Fatalf("admit: %v, %d victims", err, len(g.Evict))
		}
		if err := bud.Removed(g.Evict[0].Key); err != nil {
			b.Fatal(err)
		}
		if err := bud.Seal(k); err != nil {
			b.Fatal(err)
		}
		if err := bud.MarkInTier1(k); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkTryAdmitBlocked: 100k sealed segments, none safe yet (tier 2
// down): the refusal must not scan them.
func BenchmarkTryAdmitBlocked(b *testing.B) {
	bud, _ := benchBudget(b, benchSegments, false)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := bud.TryAdmit(Request{Key: key(99, 1), Bytes: mib, Active: true}); err == nil {
			b.Fatal("admitted")
		}
	}
}

// BenchmarkSelectVictims: choose k victims among 100k candidates in one
// admission (the timer covers the TryAdmit only; undoing it does not count).
func BenchmarkSelectVictims(b *testing.B) {
	for _, k := range []int{1, 16, 256} {
		b.Run(fmt.Sprintf("victims=%d", k), func(b *testing.B) {
			bud, _ := benchBudget(b, benchSegments, true)
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				nk := key(99, uint64(i+1))
				g, err := bud.TryAdmit(Request{Key: nk, Bytes: int64(k) * mib, Active: true})
				if err != nil || len(g.Evict) != k {
					b.Fatalf("admit: %v, %d victims", err, len(g.Evict))
				}
				b.StopTimer()
				bud.mu.Lock()
				bud.undoLocked(g)
				bud.mu.Unlock()
				b.StartTimer()
			}
		})
	}
}
