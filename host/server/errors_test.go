package server

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	aof2v1 "github.com/aof2/aof2/api/proto/aof2/v1"
	"github.com/aof2/aof2/api/wire"
	"github.com/aof2/aof2/core"
	"github.com/aof2/aof2/core/types"
	"github.com/aof2/aof2/pluginapi"
)

func TestErrorTable(t *testing.T) {
	wrap := func(err error) error { return fmt.Errorf("stream 7: %w", err) }
	for _, tc := range []struct {
		name   string
		err    error
		reason aof2v1.ErrorReason
		grpc   codes.Code
		http   int
		code   string
	}{
		{"unauthenticated", errUnauthenticated, aof2v1.ErrorReason_UNAUTHENTICATED, codes.Unauthenticated, 401, "unauthenticated"},
		{"canceled", wrap(context.Canceled), 0, codes.Canceled, 499, "canceled"},
		{"deadline", wrap(context.DeadlineExceeded), 0, codes.DeadlineExceeded, 504, "deadline_exceeded"},
		{"deadline while blocked", fmt.Errorf("append: %w (while blocked: %w)", context.DeadlineExceeded, &core.WouldBlock{Kind: core.Flush}),
			0, codes.DeadlineExceeded, 504, "deadline_exceeded"},
		{"would block", wrap(&core.WouldBlock{Kind: core.Rollover}), aof2v1.ErrorReason_WOULD_BLOCK, codes.Unavailable, 503, "would_block"},
		{"admission on a full disk", &core.WouldBlock{Kind: core.Admission, Cause: core.ErrNoSpace}, aof2v1.ErrorReason_WOULD_BLOCK, codes.Unavailable, 503, "would_block"},
		{"not ready", errNotReady, aof2v1.ErrorReason_NOT_READY, codes.Unavailable, 503, "not_ready"},
		{"bad request", wrap(ErrBadRequest), aof2v1.ErrorReason_BAD_REQUEST, codes.InvalidArgument, 400, "bad_request"},
		{"body too large", &http.MaxBytesError{Limit: 10}, aof2v1.ErrorReason_RECORD_TOO_LARGE, codes.InvalidArgument, 413, "record_too_large"},
		{"empty record", wrap(core.ErrEmptyRecord), aof2v1.ErrorReason_EMPTY_RECORD, codes.InvalidArgument, 400, "empty_record"},
		{"too large", wrap(core.ErrRecordTooLarge), aof2v1.ErrorReason_RECORD_TOO_LARGE, codes.InvalidArgument, 413, "record_too_large"},
		{"unknown stream", wrap(core.ErrUnknownStream), aof2v1.ErrorReason_UNKNOWN_STREAM, codes.NotFound, 404, "unknown_stream"},
		{"mid-record id", wrap(core.ErrInvalidRecordID), aof2v1.ErrorReason_INVALID_RECORD_ID, codes.InvalidArgument, 400, "invalid_record_id"},
		{"past the end", wrap(core.ErrNotFound), aof2v1.ErrorReason_RECORD_NOT_FOUND, codes.OutOfRange, 416, "record_not_found"},
		{"stream failed", fmt.Errorf("stream 7: %w: %w", core.ErrStreamFailed, syscall.EIO), aof2v1.ErrorReason_STREAM_FAILED, codes.FailedPrecondition, 503, "stream_failed"},
		{"no space", wrap(core.ErrNoSpace), aof2v1.ErrorReason_NO_SPACE, codes.ResourceExhausted, 507, "no_space"},
		{"ids exhausted", wrap(core.ErrSegmentIDExhausted), aof2v1.ErrorReason_SEGMENT_IDS_EXHAUSTED, codes.ResourceExhausted, 507, "segment_ids_exhausted"},
		{"corrupt", &types.CorruptError{Path: "/data/streams/7/segments/1.seg", Offset: 64, Reason: "crc"}, aof2v1.ErrorReason_CORRUPT, codes.DataLoss, 500, "corrupt"},
		{"needs restore", fmt.Errorf("create stream 42: %w", &core.NeedsRestoreError{Stream: 42, Reason: "tier 2 holds it"}),
			aof2v1.ErrorReason_NEEDS_RESTORE, codes.FailedPrecondition, 409, "needs_restore"},
		{"damaged", fmt.Errorf("stream 3: %w", &core.DamageError{Stream: 3, Segment: 4, Offset: 4096, Reason: "flip"}),
			aof2v1.ErrorReason_STREAM_DAMAGED, codes.FailedPrecondition, 409, "stream_damaged"},
		{"read in the damaged range", fmt.Errorf("stream 3: %w (%w)", core.ErrCorrupt, &core.DamageError{Stream: 3, Segment: 4, Offset: 4096}),
			aof2v1.ErrorReason_CORRUPT, codes.DataLoss, 500, "corrupt"},
		{"not damaged", wrap(core.ErrNotDamaged), aof2v1.ErrorReason_BAD_REQUEST, codes.FailedPrecondition, 409, "bad_request"},
		{"too many streams", fmt.Errorf("create stream 9: %w", core.ErrTooManyStreams), aof2v1.ErrorReason_TOO_MANY_STREAMS, codes.ResourceExhausted, 507, "too_many_streams"},
		{"tier-2 object missing", fmt.Errorf("stream 7: hydrate segment 3: tier2: get %q: %w", "streams/7/segments/00000000000000000003.seg.zst", pluginapi.ErrNotFound),
			aof2v1.ErrorReason_DATA_MISSING, codes.DataLoss, 500, "data_missing"},
		{"segment busy", wrap(core.ErrSegmentBusy), aof2v1.ErrorReason_SEGMENT_BUSY, codes.FailedPrecondition, 409, "segment_busy"},
		{"closed", wrap(core.ErrClosed), aof2v1.ErrorReason_CLOSED, codes.Unavailable, 503, "closed"},
		{"shutting down", errShuttingDown, aof2v1.ErrorReason_CLOSED, codes.Unavailable, 503, "closed"},
		{"anything else", errors.New("boom"), aof2v1.ErrorReason_INTERNAL, codes.Internal, 500, "internal"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st := toStatus(tc.err)
			require.Equal(t, tc.grpc, st.Code())
			info := errorInfo(st)
			if tc.reason == 0 {
				require.Nil(t, info)
			} else {
				require.NotNil(t, info)
				require.Equal(t, tc.reason.String(), info.Reason)
				require.Equal(t, wire.ErrorDomain, info.Domain)
			}
			code, _, body := httpError(tc.err)
			require.Equal(t, tc.http, code)
			require.Equal(t, tc.code, body.Code)
			require.NotEmpty(t, body.Error)
		})
	}
}

// TestNeedsRestoreNamesTheStream: both transports say which stream needs
// the restore, in the message and as a field.
func TestNeedsRestoreNamesTheStream(t *testing.T) {
	err := fmt.Errorf("create stream 42: %w", &core.NeedsRestoreError{Stream: 42, Reason: "tier 2 holds it"})
	st := toStatus(err)
	require.Equal(t, "42", errorInfo(st).Metadata[wire.MetaStreamID])
	require.Contains(t, st.Message(), "stream 42")
	_, _, body := httpError(err)
	require.Equal(t, "42", body.StreamID)
	require.Contains(t, body.Error, "stream 42")
}

func errorInfo(st *status.Status) *errdetails.ErrorInfo {
	for _, d := range st.Details() {
		if info, ok := d.(*errdetails.ErrorInfo); ok {
			return info
		}
	}
	return nil
}

func retryInfo(st *status.Status) *errdetails.RetryInfo {
	for _, d := range st.Details() {
		if ri, ok := d.(*errdetails.RetryInfo); ok {
			return ri
		}
	}
	return nil
}

func TestWouldBlockDetails(t *testing.T) {
	for kind, delay := range retryDelays {
		t.Run(kind.String(), func(t *testing.T) {
			err := fmt.Errorf("stream 1: %w", &core.WouldBlock{Kind: kind})
			st := toStatus(err)
			require.Equal(t, kind.String(), errorInfo(st).Metadata[wire.MetaKind])
			require.Equal(t, delay, retryInfo(st).RetryDelay.AsDuration())

			code, h, body := httpError(err)
			require.Equal(t, http.StatusServiceUnavailable, code)
			require.Equal(t, kind.String(), body.Kind)
			require.Equal(t, delay.Milliseconds(), body.RetryAfterMS)
			want := "1"
			if delay > time.Second {
				want = fmt.Sprint(int(delay.Seconds()))
			}
			require.Equal(t, want, h.Get("Retry-After"), "whole seconds, at least one")
		})
	}
	t.Run("engine hint wins", func(t *testing.T) {
		st := toStatus(&core.WouldBlock{Kind: core.Admission, RetryAfter: 3 * time.Second})
		require.Equal(t, 3*time.Second, retryInfo(st).RetryDelay.AsDuration())
		_, h, _ := httpError(&core.WouldBlock{Kind: core.Admission, RetryAfter: 2500 * time.Millisecond})
		require.Equal(t, "3", h.Get("Retry-After"))
	})
	t.Run("not ready has a delay too", func(t *testing.T) {
		require.Equal(t, notReadyDelay, retryInfo(toStatus(errNotReady)).RetryDelay.AsDuration())
	})
	t.Run("others have none", func(t *testing.T) {
		require.Nil(t, retryInfo(toStatus(core.ErrUnknownStream)))
		_, h, _ := httpError(core.ErrUnknownStream)
		require.Empty(t, h.Get("Retry-After"))
	})
}

func TestPartialAppendDetails(t *testing.T) {
	ids := []core.RecordID{core.MakeRecordID(1, 64), core.MakeRecordID(1, 96)}
	err := withAppended(ids, fmt.Errorf("flush: %w", context.DeadlineExceeded))
	require.ErrorIs(t, err, context.DeadlineExceeded)
	st := toStatus(&partialAppendError{n: 2, last: ids[1], err: &core.WouldBlock{Kind: core.Flush}})
	md := errorInfo(st).Metadata
	require.Equal(t, "2", md[wire.MetaAppended])
	require.Equal(t, "1:96", md[wire.MetaLastID])
	_, _, body := httpError(err)
	require.Equal(t, 2, body.Appended)
	require.Equal(t, "1:96", body.LastID)
	require.NoError(t, withAppended(ids, nil))
	require.Equal(t, context.Canceled, withAppended(nil, context.Canceled))
}

func TestGRPCStatusPassesThrough(t *testing.T) {
	in := status.New(codes.ResourceExhausted, "grpc: received message larger than max")
	require.Equal(t, in.Proto(), toStatus(in.Err()).Proto())
}

func TestRedactPaths(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"aof2: corrupt data in /var/lib/aof2/streams/7/segments/0001.seg at offset 64: crc",
			"aof2: corrupt data in 0001.seg at offset 64: crc"},
		{"stream 7: record 1:64: /tmp/x/0001.seg offset 64 is inside a record: aof2: invalid record id",
			"stream 7: record 1:64: 0001.seg offset 64 is inside a record: aof2: invalid record id"},
		{"open (/data/a/b): no such file", "open (b): no such file"},
		{"/abs/at/start: x", "start: x"},
		{"ratio 1/2 stays", "ratio 1/2 stays"},
	} {
		require.Equal(t, tc.want, redactPaths(tc.in))
	}
}
