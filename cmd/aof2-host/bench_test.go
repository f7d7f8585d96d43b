package main

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/aof2/aof2/client"
)

// TestBenchCallTimeout: a call the host never answers ends the run with an
// error naming -timeout, instead of holding it past -duration forever.
func TestBenchCallTimeout(t *testing.T) {
	stuck := func(ctx context.Context, _ client.StreamID, _ [][]byte) (int, error) {
		<-ctx.Done()
		return 0, ctx.Err()
	}
	done := make(chan error, 1)
	go func() {
		_, err := bench(context.Background(), []benchCall{stuck, stuck}, benchConfig{mode: benchUnary, stream: 1, streams: 1, size: 8, batch: 1,
			perCall: 1, duration: time.Millisecond, callTimeout: 20 * time.Millisecond})
		done <- err
	}()
	select {
	case err := <-done:
		require.ErrorIs(t, err, context.DeadlineExceeded)
		require.ErrorContains(t, err, "longer than -timeout")
	case <-time.After(time.Minute):
		t.Fatal("bench did not end after its calls timed out")
	}
}
