package budget

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestStreamBlockedWaiterLeavesOtherStreams: two activations of
// stream 1 wait only on stream 1's cap (its segments are not safe yet).
// The global budget has plenty of room. Another stream's activation must
// go past them (docs: "one blocked only on its stream's cap is skipped").
func TestStreamBlockedWaiterLeavesOtherStreams(t *testing.T) {
	b := newBudget(t, Config{MaxBytes: 100 * mib, StreamMaxBytes: 2 * mib, Policy: PolicyTier2})
	// Stream 1's cap is full of a sealed, not yet uploaded segment and an
	// active one: nothing of it is evictable.
	_, err := b.TryAdmit(Request{Key: key(1, 1), Bytes: mib, Active: true})
	require.NoError(t, err)
	require.NoError(t, b.Seal(key(1, 1)))
	_, err = b.TryAdmit(Request{Key: key(1, 2), Bytes: mib, Active: true})
	require.NoError(t, err)

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	// Two hydrations of stream 1, both at foreground priority.
	r1 := admitAsync(ctx, b, Request{Key: key(1, 10), Bytes: mib, Pin: true, Priority: PriorityForeground})
	waitQueued(t, b, 1)
	r2 := admitAsync(ctx, b, Request{Key: key(1, 11), Bytes: mib, Pin: true, Priority: PriorityForeground})
	waitQueued(t, b, 2)

	// Stream 2 is well within its cap and the global budget: its new
	// segment must be admitted.
	_, err = b.TryAdmit(Request{Key: key(2, 1), Bytes: mib, Active: true})
	require.NoError(t, err, "stream 2's activation refused although only stream 1's cap is full")

	// A hydration of stream 2 must not wait either.
	actx, acancel := context.WithTimeout(context.Background(), 2e9)
	defer acancel()
	_, err = b.Admit(actx, Request{Key: key(2, 5), Bytes: mib, Pin: true, Priority: PriorityForeground})
	require.NoError(t, err, "stream 2's hydration waited behind stream 1's cap")
	cancel()
	<-r1
	<-r2
}
