package client_test

import (
	"context"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	aof2v1 "github.com/aof2/aof2/api/proto/aof2/v1"
	"github.com/aof2/aof2/client"
	"github.com/aof2/aof2/core/types"
	"github.com/aof2/aof2/host/server"
	"github.com/aof2/aof2/host/server/servertest"
)

// dropResponses lets the first n Append calls reach the host and then
// loses their answers: the caller sees UNAVAILABLE, as after a dropped
// connection, though the host appended.
func dropResponses(n int32, calls *atomic.Int32) grpc.UnaryClientInterceptor {
	return func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
		err := invoker(ctx, method, req, reply, cc, opts...)
		if method == aof2v1.Log_Append_FullMethodName && calls.Add(1) <= n && err == nil {
			return status.Error(codes.Unavailable, "test: the response was lost")
		}
		return err
	}
}

// TestProducerRetriesLostResponses: the host appends but its answers are
// lost twice; the Producer resends the request, and the records are in
// the stream once, at the ids the final answer gives.
func TestProducerRetriesLostResponses(t *testing.T) {
	h := servertest.Start(t, rollingConfig(), server.Options{})
	var calls atomic.Int32
	c := connect(t, h, client.WithAppendCoalescing(false),
		client.WithDialOptions(grpc.WithChainUnaryInterceptor(dropResponses(2, &calls))))
	ctx := ctxT(t)
	p, err := c.NewProducer(4)
	require.NoError(t, err)
	require.NotZero(t, p.ID())
	ids, err := p.Append(ctx, []byte("one"), []byte("two"))
	require.NoError(t, err)
	require.Equal(t, int32(3), calls.Load(), "two answers lost, the third arrived")
	require.Equal(t, uint64(1), p.Sequence())

	got, err := c.Read(ctx, 4, client.AtStart(), 0)
	require.NoError(t, err)
	require.Len(t, got.Records, 2, "each record once")
	require.Equal(t, ids, []client.RecordID{got.Records[0].ID, got.Records[1].ID})

	more, err := p.Append(ctx, []byte("three"))
	require.NoError(t, err)
	require.Equal(t, uint64(2), p.Sequence())

	// The low-level call: a resend says duplicate; an old sequence and a
	// reused one are refused with the engine's sentinels.
	again, dup, err := c.AppendIdempotent(ctx, 4, p.ID(), 2, []client.Record{{Payload: []byte("three")}}, false)
	require.NoError(t, err)
	require.True(t, dup)
	require.Equal(t, more, again)
	_, _, err = c.AppendIdempotent(ctx, 4, p.ID(), 1, []client.Record{{Payload: []byte("one")}, {Payload: []byte("two")}}, false)
	require.ErrorIs(t, err, types.ErrSequenceStale)
	_, _, err = c.AppendIdempotent(ctx, 4, p.ID(), 2, []client.Record{{Payload: []byte("other")}}, false)
	require.ErrorIs(t, err, types.ErrSequenceMismatch)
	_, _, err = c.AppendIdempotent(ctx, 4, 0, 2, nil, false)
	require.ErrorIs(t, err, client.ErrBadRequest)
}
