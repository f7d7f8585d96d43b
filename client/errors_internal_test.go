package client

import (
	"context"
	"errors"
	"io"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	aof2v1 "github.com/aof2/aof2/api/proto/aof2/v1"
	"github.com/aof2/aof2/api/wire"
	"github.com/aof2/aof2/core/types"
)

func wouldBlockStatus(t *testing.T, md map[string]string) error {
	t.Helper()
	st, err := status.New(codes.Unavailable, "aof2: would block (flush)").WithDetails(
		&errdetails.ErrorInfo{Reason: aof2v1.ErrorReason_WOULD_BLOCK.String(), Domain: wire.ErrorDomain, Metadata: md},
		&errdetails.RetryInfo{RetryDelay: durationpb.New(time.Millisecond)})
	require.NoError(t, err)
	return st.Err()
}

func TestFromStatus(t *testing.T) {
	err := fromStatus(wouldBlockStatus(t, map[string]string{wire.MetaKind: "flush", wire.MetaAppended: "3", wire.MetaLastID: "1:96"}))
	require.ErrorIs(t, err, types.ErrWouldBlock)
	e, ok := errors.AsType[*Error](err)
	require.True(t, ok)
	require.Equal(t, "WOULD_BLOCK", e.Reason)
	require.Equal(t, 3, e.Appended)
	require.Equal(t, types.MakeRecordID(1, 96), e.LastID)
	require.Equal(t, types.Flush, types.KindOf(err))

	// Statuses from elsewhere: by code only, or untouched.
	require.ErrorIs(t, fromStatus(status.Error(codes.Unauthenticated, "proxy says no")), ErrUnauthenticated)
	require.ErrorIs(t, fromStatus(status.Error(codes.Canceled, "x")), context.Canceled)
	other, err := status.New(codes.NotFound, "x").WithDetails(&errdetails.ErrorInfo{Reason: "UNKNOWN_STREAM", Domain: "elsewhere"})
	require.NoError(t, err)
	require.NotErrorIs(t, fromStatus(other.Err()), types.ErrUnknownStream, "another domain's reasons mean nothing here")
	require.Equal(t, io.EOF, fromStatus(io.EOF))
	require.NoError(t, fromStatus(nil))
}

func TestRetryWouldBlock(t *testing.T) {
	c := &Client{opts: options{appendRetry: true}}
	ctx := context.Background()

	calls := 0
	err := c.retryWouldBlock(ctx, func() error {
		if calls++; calls < 3 {
			return fromStatus(wouldBlockStatus(t, map[string]string{wire.MetaKind: "rollover"}))
		}
		return nil
	})
	require.NoError(t, err)
	require.Equal(t, 3, calls)

	calls = 0
	err = c.retryWouldBlock(ctx, func() error {
		calls++
		return fromStatus(wouldBlockStatus(t, map[string]string{wire.MetaKind: "flush", wire.MetaAppended: "1", wire.MetaLastID: "1:64"}))
	})
	require.ErrorIs(t, err, types.ErrWouldBlock)
	require.Equal(t, 1, calls, "a partial append is never retried")

	calls = 0
	c.opts.appendRetry = false
	err = c.retryWouldBlock(ctx, func() error {
		calls++
		return fromStatus(wouldBlockStatus(t, map[string]string{wire.MetaKind: "flush"}))
	})
	require.ErrorIs(t, err, types.ErrWouldBlock)
	require.Equal(t, 1, calls)

	c.opts.appendRetry = true
	dctx, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	err = c.retryWouldBlock(dctx, func() error {
		return fromStatus(wouldBlockStatus(t, map[string]string{wire.MetaKind: "admission"}))
	})
	require.ErrorIs(t, err, types.ErrWouldBlock, "the last refusal, once ctx runs out")
}

// TestEveryReasonMapsBack: each reason the host sends comes back as a
// sentinel, so a new reason cannot fall through to the gRPC code's
// (RESOURCE_EXHAUSTED alone reads as a record too large).
func TestEveryReasonMapsBack(t *testing.T) {
	for v, name := range aof2v1.ErrorReason_name {
		reason := aof2v1.ErrorReason(v)
		switch reason {
		case aof2v1.ErrorReason_ERROR_REASON_UNSPECIFIED, aof2v1.ErrorReason_INTERNAL, aof2v1.ErrorReason_WOULD_BLOCK:
			continue
		}
		require.Contains(t, reasonTargets, reason, name)
	}
	for _, tc := range []struct {
		reason aof2v1.ErrorReason
		code   codes.Code
		target error
	}{
		{aof2v1.ErrorReason_TOO_MANY_STREAMS, codes.ResourceExhausted, types.ErrTooManyStreams},
		{aof2v1.ErrorReason_DATA_MISSING, codes.DataLoss, ErrDataMissing},
	} {
		st, err := status.New(tc.code, "x").WithDetails(&errdetails.ErrorInfo{Reason: tc.reason.String(), Domain: wire.ErrorDomain})
		require.NoError(t, err)
		got := fromStatus(st.Err())
		require.ErrorIs(t, got, tc.target, tc.reason.String())
		require.NotErrorIs(t, got, types.ErrRecordTooLarge, tc.reason.String())
	}
}
