package client_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/aof2/aof2/client"
	"github.com/aof2/aof2/core"
	"github.com/aof2/aof2/core/types"
	"github.com/aof2/aof2/host/server"
	"github.com/aof2/aof2/host/server/servertest"
)

// TestErrorsMapBack: every kind of refusal comes back matching the
// engine's sentinel, as it would in process.
func TestErrorsMapBack(t *testing.T) {
	h := servertest.Start(t, rollingConfig(), server.Options{})
	c := connect(t, h)
	ctx := ctxT(t)
	ids, err := c.Append(ctx, 1, payload(0, 100))
	require.NoError(t, err)
	info, err := c.Info(ctx, 1)
	require.NoError(t, err)
	tooBig := make([]byte, info.MaxRecordSize+1)

	for _, tc := range []struct {
		name   string
		call   func() error
		target error
		code   codes.Code
	}{
		{"unknown stream", func() error { _, err := c.Read(ctx, 2, client.AtStart(), 1); return err }, core.ErrUnknownStream, codes.NotFound},
		{"unknown stream tail", func() error { _, err := c.Tail(ctx, 2, client.AtStart()); return err }, core.ErrUnknownStream, codes.NotFound},
		{"too large", func() error { _, err := c.Append(ctx, 1, tooBig); return err }, core.ErrRecordTooLarge, codes.InvalidArgument},
		{"message over the host's limit", func() error { _, err := c.Append(ctx, 1, make([]byte, 5<<20)); return err }, core.ErrRecordTooLarge, codes.ResourceExhausted},
		{"empty", func() error { _, err := c.Append(ctx, 1, []byte{}); return err }, core.ErrEmptyRecord, codes.InvalidArgument},
		{"mid-record id", func() error { _, err := c.Read(ctx, 1, client.AtID(ids[0]+8), 1); return err }, core.ErrInvalidRecordID, codes.InvalidArgument},
		{"id past the end", func() error { _, err := c.Read(ctx, 1, client.AtID(ids[0]+4096), 1); return err }, core.ErrNotFound, codes.OutOfRange},
		{"ordinal past the end", func() error { _, err := c.Read(ctx, 1, client.AtOrdinal(9), 1); return err }, core.ErrNotFound, codes.OutOfRange},
		{"tail from mid-record", func() error { _, err := c.Tail(ctx, 1, client.AtID(ids[0]+8)); return err }, core.ErrInvalidRecordID, codes.InvalidArgument},
		{"deadline", func() error {
			tl, err := c.Tail(ctx, 1, client.AtOrdinal(1))
			require.NoError(t, err)
			defer tl.Close()
			dctx, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
			defer cancel()
			_, err = c.Flush(dctx, 1)
			require.NoError(t, err)
			_, err = tl.Next(dctx)
			return err
		}, context.DeadlineExceeded, codes.Unknown},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.call()
			require.ErrorIs(t, err, tc.target)
			if tc.code != codes.Unknown {
				require.Equal(t, tc.code, status.Code(err))
				_, ok := errors.AsType[*client.Error](err)
				require.True(t, ok)
			}
			_, err = c.Info(ctx, 1)
			require.NoError(t, err, "still serving")
		})
	}
}

func TestUnauthenticated(t *testing.T) {
	h := servertest.Start(t, rollingConfig(), server.Options{Token: "s3cret"})
	ctx := ctxT(t)
	for _, opts := range [][]client.Option{nil, {client.WithToken("wrong")}} {
		c := connect(t, h, opts...)
		_, err := c.Append(ctx, 1, []byte("x"))
		require.ErrorIs(t, err, client.ErrUnauthenticated)
		_, err = c.Streams(ctx)
		require.ErrorIs(t, err, client.ErrUnauthenticated)
		_, err = c.Dump(ctx)
		require.ErrorIs(t, err, client.ErrUnauthenticated)
	}
	c := connect(t, h, client.WithToken("s3cret"))
	_, err := c.Append(ctx, 1, []byte("x"))
	require.NoError(t, err)
}

// TestWouldBlock provokes a real WouldBlock(Flush): no background syncs
// and one unflushed byte allowed.
func TestWouldBlock(t *testing.T) {
	cfg := rollingConfig()
	cfg.Sync, cfg.MaxUnflushedBytes = core.SyncNone, 1
	h := servertest.Start(t, cfg, server.Options{})
	ctx := ctxT(t)

	c := connect(t, h, client.WithAppendRetry(false))
	_, err := c.AppendNoWait(ctx, 1, []byte("a"))
	require.NoError(t, err)
	_, err = c.AppendNoWait(ctx, 1, []byte("b"))
	require.ErrorIs(t, err, core.ErrWouldBlock)
	require.ErrorIs(t, err, types.ErrWouldBlock)
	wb, ok := errors.AsType[*client.WouldBlockError](err)
	require.True(t, ok)
	require.Equal(t, core.Flush, wb.Kind)
	require.Equal(t, 10*time.Millisecond, wb.RetryAfter)
	require.Equal(t, core.Flush, core.KindOf(err), "the engine's helper works on it too")
	require.Equal(t, codes.Unavailable, status.Code(err))

	// With retries (the default) the same situation resolves itself: the
	// refusal kicked a sync, and the retry after 10ms gets in.
	c = connect(t, h)
	for i := 0; i < 5; i++ {
		_, err = c.AppendNoWait(ctx, 1, []byte("c"))
		require.NoError(t, err)
	}
	// A retry never outlives the caller's deadline.
	c = connect(t, h, client.WithAppendRetry(true))
	dctx, cancel := context.WithTimeout(ctx, time.Millisecond)
	defer cancel()
	_, err = c.AppendNoWait(dctx, 1, []byte("d"))
	if err != nil {
		require.True(t, errors.Is(err, core.ErrWouldBlock) || errors.Is(err, context.DeadlineExceeded), "%v", err)
	}
}

func TestNotReady(t *testing.T) {
	node := servertest.NewNode(nil)
	h := servertest.StartNode(t, node, server.Options{})
	c := connect(t, h)
	_, err := c.Info(ctxT(t), 1)
	require.ErrorIs(t, err, client.ErrNotReady)
}

// TestTooManyStreams: a host at its stream limit refuses a new stream with
// the engine's sentinel, over gRPC and in the Go client, and keeps serving
// the streams it has.
func TestTooManyStreams(t *testing.T) {
	cfg := rollingConfig()
	cfg.MaxStreams = 1
	h := servertest.Start(t, cfg, server.Options{})
	c := connect(t, h)
	ctx := ctxT(t)
	_, err := c.Append(ctx, 1, []byte("a"))
	require.NoError(t, err)
	_, err = c.Append(ctx, 2, []byte("b"))
	require.ErrorIs(t, err, core.ErrTooManyStreams)
	require.NotErrorIs(t, err, core.ErrRecordTooLarge)
	require.Equal(t, codes.ResourceExhausted, status.Code(err))
	e, ok := errors.AsType[*client.Error](err)
	require.True(t, ok)
	require.Equal(t, "TOO_MANY_STREAMS", e.Reason)
	_, err = c.Append(ctx, 1, []byte("c"))
	require.NoError(t, err)
}
