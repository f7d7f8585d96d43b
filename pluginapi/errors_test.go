package pluginapi

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// The error table of docs/plugin-contract.md#errors, row by row, both directions.
func TestErrorTable(t *testing.T) {
	rows := []struct {
		err    error
		code   codes.Code
		reason string
		is     error
	}{
		{NotFoundError("k"), codes.NotFound, "OBJECT_NOT_FOUND", ErrNotFound},
		{&Error{Code: CodeNotFound, Reason: ReasonBucketNotFound}, codes.NotFound, "BUCKET_NOT_FOUND", ErrNotFound},
		{&Error{Code: CodeAlreadyExists, Key: "k"}, codes.AlreadyExists, "OBJECT_EXISTS", ErrAlreadyExists},
		{&Error{Code: CodePrecondition}, codes.FailedPrecondition, "PRECONDITION_FAILED", ErrPrecondition},
		{ThrottledError(3*time.Second, "slow down"), codes.ResourceExhausted, "THROTTLED", ErrThrottled},
		{&Error{Code: CodeAuth}, codes.Unauthenticated, "AUTH_INVALID", ErrAuth},
		{&Error{Code: CodePermission}, codes.PermissionDenied, "ACCESS_DENIED", ErrPermission},
		{&Error{Code: CodeUnavailable, Metadata: map[string]string{"backend_code": "503"}}, codes.Unavailable, "BACKEND_UNAVAILABLE", ErrUnavailable},
		{&Error{Code: CodeChecksum}, codes.DataLoss, "CHECKSUM_MISMATCH", ErrChecksum},
		{&Error{Code: CodeOutOfRange}, codes.OutOfRange, "OUT_OF_RANGE", ErrOutOfRange},
		{ValidateKey("../x"), codes.InvalidArgument, "INVALID_KEY", ErrInvalidKey},
		{&Error{Code: CodeInvalidConfig}, codes.InvalidArgument, "INVALID_CONFIG", ErrInvalidConfig},
		{&Error{Code: CodeInvalidArgument}, codes.InvalidArgument, "INVALID_ARGUMENT", ErrInvalidArgument},
		{&Error{Code: CodeUnimplemented}, codes.Unimplemented, "UNIMPLEMENTED", ErrUnimplemented},
		{fmt.Errorf("s3: head: %w", ErrNotFound), codes.NotFound, "OBJECT_NOT_FOUND", ErrNotFound},
		{fmt.Errorf("wrapped: %w", context.Canceled), codes.Canceled, "", context.Canceled},
		{context.DeadlineExceeded, codes.DeadlineExceeded, "", context.DeadlineExceeded},
		{errors.New("boom"), codes.Internal, "", ErrInternal},
	}
	for _, r := range rows {
		t.Run(r.err.Error(), func(t *testing.T) {
			st := ToStatus(r.err)
			require.Equal(t, r.code, st.Code())
			var info *errdetails.ErrorInfo
			var retry *errdetails.RetryInfo
			for _, d := range st.Details() {
				switch d := d.(type) {
				case *errdetails.ErrorInfo:
					info = d
				case *errdetails.RetryInfo:
					retry = d
				}
			}
			if r.reason == "" {
				require.Nil(t, info)
			} else {
				require.NotNil(t, info)
				require.Equal(t, r.reason, info.GetReason())
				require.Equal(t, ErrorDomain, info.GetDomain())
			}
			back := FromStatus(st)
			require.ErrorIs(t, back, r.is)
			require.Equal(t, CodeOf(r.err), CodeOf(back))
			if CodeOf(r.err) == CodeThrottled {
				require.NotNil(t, retry)
				ra, ok := RetryAfter(back)
				require.True(t, ok)
				require.Equal(t, 3*time.Second, ra)
				require.True(t, Retryable(back))
			}
			var e *Error
			if errors.As(r.err, &e) {
				require.Equal(t, e.Key, back.(*Error).Key)
				for k, v := range e.Metadata {
					require.Equal(t, v, back.(*Error).Metadata[k])
				}
			}
		})
	}
	require.Nil(t, ToStatus(nil))
	require.NoError(t, FromStatus(status.New(codes.OK, "")))
	require.NotErrorIs(t, FromStatus(ToStatus(ThrottledError(time.Second, "x"))), ErrUnavailable, "throttling must never look like Unavailable")
}

func TestRetryable(t *testing.T) {
	for _, e := range []error{ErrThrottled, ErrUnavailable, ErrPluginCrashed, context.DeadlineExceeded} {
		require.True(t, Retryable(fmt.Errorf("x: %w", e)), "%v", e)
	}
	for _, e := range []error{ErrNotFound, ErrChecksum, ErrInvalidKey, ErrAuth, context.Canceled, errors.New("?")} {
		require.False(t, Retryable(e), "%v", e)
	}
}

func TestErrorMessages(t *testing.T) {
	require.Equal(t, `object not found (key "a/b")`, NotFoundError("a/b").Error())
	require.Equal(t, "throttled: slow (retry after 2s)", ThrottledError(2*time.Second, "slow").Error())
	e := Errorf(CodeInvalidConfig, "", "root: %w", errors.New("missing"))
	require.Equal(t, "invalid configuration: root: missing", e.Error())
	require.ErrorIs(t, e, ErrInvalidConfig)
	require.Equal(t, "missing", e.Err.Error())
}
