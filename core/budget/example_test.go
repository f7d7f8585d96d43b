package budget_test

import (
	"context"
	"errors"
	"fmt"

	"github.com/aof2/aof2/core/budget"
	"github.com/aof2/aof2/core/types"
)

// The coordinator's side of a rollover on a full tier 0.
func Example() {
	b, _ := budget.New(budget.Config{MaxBytes: 128 << 20, Policy: budget.PolicyTier2})
	defer b.Close()
	seg := func(n uint64) types.SegmentKey { return types.SegmentKey{Stream: 1, Segment: types.SegmentID(n)} }

	// Two 64 MiB segments fill the budget; the first is sealed and uploaded.
	for n := uint64(1); n <= 2; n++ {
		if _, err := b.TryAdmit(budget.Request{Key: seg(n), Bytes: 64 << 20, Active: true}); err != nil {
			panic(err)
		}
	}
	_ = b.Seal(seg(1))
	_ = b.MarkInTier1(seg(1))

	// Tier 1 is not enough under PolicyTier2: the next rollover must wait.
	_, err := b.TryAdmit(budget.Request{Key: seg(3), Bytes: 64 << 20, Active: true})
	fmt.Println(errors.Is(err, types.ErrWouldBlock), types.KindOf(err))

	// Once tier 2 holds segment 1 it becomes the victim.
	_ = b.MarkInTier2(seg(1))
	g, err := b.Admit(context.Background(), budget.Request{Key: seg(3), Bytes: 64 << 20, Active: true})
	if err != nil {
		panic(err)
	}
	for _, c := range g.Evict {
		// delete the local file of c.Key (after the manifest allows it), then:
		_ = b.Removed(c.Key)
		fmt.Println("evicted", c.Key)
	}
	// Output:
	// true admission
	// evicted stream 1 segment 1
}
