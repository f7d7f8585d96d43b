package server

import (
	"context"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/stats"

	"github.com/aof2/aof2/internal/testwait"
)

// TestReadBudgetHolds: a hold that holds nothing waits for room; one that
// holds some only takes what is free right away (and nothing while others
// wait); a request larger than the whole budget gets all of it; releases
// are idempotent and give everything back.
func TestReadBudgetHolds(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	b := newReadBudget(100, time.Minute, nil)

	a := b.newHold(ctx)
	require.NoError(t, a.wait(ctx, 60))
	require.True(t, a.try(30))
	require.False(t, a.try(20), "only 10 left")
	require.EqualValues(t, 90, b.held.Load())

	waited := make(chan error, 1)
	w := b.newHold(ctx)
	go func() { waited <- w.wait(ctx, 50) }()
	testwait.Until(t, 10*time.Second, time.Millisecond, func() bool { return b.waiting.Load() == 1 }, "the second reader waits")
	// waiting counts the reader just before the semaphore queues it: a try
	// in between may still get room (harmless); once it is queued, none
	// does.
	testwait.Until(t, 10*time.Second, time.Millisecond, func() bool {
		if a.try(5) {
			a.free(5)
			return false
		}
		return true
	}, "room is not taken past a waiting reader")
	a.free(30) // 40 free: still not enough
	select {
	case err := <-waited:
		t.Fatalf("the waiting reader got in with 40 bytes free: %v", err)
	default:
	}
	a.free(10)
	require.NoError(t, testwait.Recv(t, waited, 10*time.Second, "the waiting reader gets in once 50 bytes are free"))
	require.EqualValues(t, 100, b.held.Load())

	big := b.newHold(ctx)
	bigDone := make(chan error, 1)
	go func() { bigDone <- big.wait(ctx, 1000) }()
	testwait.Until(t, 10*time.Second, time.Millisecond, func() bool { return b.waiting.Load() == 1 }, "the large reader waits")
	a.release()
	a.release()
	w.release()
	require.NoError(t, testwait.Recv(t, bigDone, 10*time.Second, "a record larger than the budget takes all of it"))
	require.EqualValues(t, 100, b.held.Load())
	big.free(1000)
	require.Zero(t, b.held.Load())

	// A wait ends with its context, holding nothing.
	full := b.newHold(ctx)
	require.NoError(t, full.wait(ctx, 100))
	cctx, ccancel := context.WithCancel(ctx)
	ccancel()
	late := b.newHold(cctx)
	require.ErrorIs(t, late.wait(cctx, 1), context.Canceled)
	full.release()
	require.Zero(t, b.held.Load())
	require.Zero(t, b.waiting.Load())
}

// TestConnEndReleases: holds still open when their gRPC connection ends
// are released (gRPC drops the buffers of a dead connection without giving
// them back); a hold made after the end is not tied to it.
func TestConnEndReleases(t *testing.T) {
	ctx := context.Background()
	b := newReadBudget(100, time.Minute, nil)
	var st budgetStats
	cctx := st.TagConn(ctx, nil)
	h1, h2 := b.newHold(cctx), b.newHold(cctx)
	require.NoError(t, h1.wait(ctx, 30))
	require.NoError(t, h2.wait(ctx, 40))
	h2.release()
	st.HandleConn(cctx, &stats.ConnBegin{}) // not an end: nothing happens
	require.EqualValues(t, 30, b.held.Load())
	st.HandleConn(cctx, &stats.ConnEnd{})
	require.Zero(t, b.held.Load())
	h3 := b.newHold(cctx)
	require.Nil(t, h3.conn)
}

// TestRPCEndReleases: a gRPC call that ends without its status written
// (its stream was reset) releases the holds it still has; one whose status
// was written leaves them to the transport, which gives their buffers back
// once written out.
func TestRPCEndReleases(t *testing.T) {
	ctx := context.Background()
	var st budgetStats
	for _, tc := range []struct {
		name     string
		status   bool
		released bool
	}{
		{"reset", false, true},
		{"status written", true, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := newReadBudget(100, time.Minute, nil)
			rctx := st.TagRPC(ctx, nil)
			h := b.newHold(rctx)
			require.NoError(t, h.wait(ctx, 30))
			st.HandleRPC(rctx, &stats.OutHeader{}) // neither: nothing happens
			if tc.status {
				st.HandleRPC(rctx, &stats.OutTrailer{})
			}
			st.HandleRPC(rctx, &stats.End{})
			if tc.released {
				require.Zero(t, b.held.Load())
				require.Nil(t, b.newHold(rctx).rpc, "a hold made after the end is not tied to it")
			} else {
				require.EqualValues(t, 30, b.held.Load())
				h.release()
				require.Zero(t, b.held.Load())
			}
		})
	}
}

// TestStalledHoldReleased: a response handed to the gRPC transport that a
// client does not take within the stall timeout leaves the budget (and
// is counted); one written out in time stops its timer.
func TestStalledHoldReleased(t *testing.T) {
	ctx := context.Background()
	b := newReadBudget(100, 20*time.Millisecond, nil)
	stalled := b.newHold(ctx)
	require.NoError(t, stalled.wait(ctx, 60))
	stalled.armStall()
	testwait.Until(t, 10*time.Second, time.Millisecond, func() bool { return b.held.Load() == 0 }, "the stalled hold to be released")
	require.Equal(t, 1.0, testutil.ToFloat64(b.stalled))

	taken := b.newHold(ctx)
	require.NoError(t, taken.wait(ctx, 60))
	taken.armStall()
	taken.release()
	require.False(t, taken.stall.Stop(), "the release stopped the timer")
	require.Equal(t, 1.0, testutil.ToFloat64(b.stalled))
	stalled.release() // the transport's late release is a no-op
	require.Zero(t, b.held.Load())
}
