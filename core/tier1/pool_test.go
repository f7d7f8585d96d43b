package tier1

import (
	"context"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/aof2/aof2/internal/testwait"
)

func TestPoolCloseCancelsRunningAndRejectsQueued(t *testing.T) {
	depth := prometheus.NewGauge(prometheus.GaugeOpts{Name: "d"})
	p := newPool(1, 1, depth)
	running := make(chan struct{})
	results := make(chan error, 2)
	require.NoError(t, p.submit(context.Background(), func(ctx context.Context, reject error) {
		close(running)
		<-ctx.Done() // a long job that honours cancellation
		results <- ctx.Err()
	}, false))
	testwait.Recv(t, running, testwait.Default, "the first job to start")
	require.NoError(t, p.submit(context.Background(), func(ctx context.Context, reject error) {
		results <- reject
	}, false))
	require.Equal(t, 1.0, value(t, depth))
	require.ErrorIs(t, p.submit(context.Background(), func(context.Context, error) {}, false), ErrBusy)

	// A blocking submit gives up when its context ends.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	require.ErrorIs(t, p.submit(ctx, func(context.Context, error) {}, true), context.Canceled)

	p.close() // returns only once the worker has exited
	require.ErrorIs(t, <-results, context.Canceled)
	require.ErrorIs(t, <-results, ErrClosed)
	require.Equal(t, 0.0, value(t, depth))
	require.ErrorIs(t, p.submit(context.Background(), func(context.Context, error) {}, true), ErrClosed)
	p.close() // idempotent
}

func TestPoolJobSeesCallerCancellation(t *testing.T) {
	p := newPool(2, 4, prometheus.NewGauge(prometheus.GaugeOpts{Name: "d"}))
	defer p.close()
	ctx, cancel := context.WithCancel(context.Background())
	got := make(chan error, 1)
	started := make(chan struct{})
	require.NoError(t, p.submit(ctx, func(jctx context.Context, _ error) {
		close(started)
		<-jctx.Done()
		got <- jctx.Err()
	}, true))
	testwait.Recv(t, started, testwait.Default, "the job to start")
	cancel()
	require.ErrorIs(t, testwait.Recv(t, got, testwait.Default, "the cancelled job to return"), context.Canceled)
}
