package pluginapi

import (
	"context"
	"errors"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/protoadapt"
	"google.golang.org/protobuf/types/known/durationpb"
)

// ErrorInfo reasons (docs/plugin-contract.md#errors).
const (
	ReasonObjectNotFound  = "OBJECT_NOT_FOUND"
	ReasonBucketNotFound  = "BUCKET_NOT_FOUND"
	ReasonObjectExists    = "OBJECT_EXISTS"
	ReasonPrecondition    = "PRECONDITION_FAILED"
	ReasonThrottled       = "THROTTLED"
	ReasonAuthInvalid     = "AUTH_INVALID"
	ReasonAccessDenied    = "ACCESS_DENIED"
	ReasonUnavailable     = "BACKEND_UNAVAILABLE"
	ReasonChecksum        = "CHECKSUM_MISMATCH"
	ReasonOutOfRange      = "OUT_OF_RANGE"
	ReasonInvalidKey      = "INVALID_KEY"
	ReasonInvalidConfig   = "INVALID_CONFIG"
	ReasonInvalidArgument = "INVALID_ARGUMENT"
	ReasonUnimplemented   = "UNIMPLEMENTED"
	ReasonPluginCrashed   = "PLUGIN_CRASHED"
)

// metaKey is the ErrorInfo metadata entry that carries Error.Key.
const metaKey = "key"

var codeTable = map[Code]struct {
	grpc   codes.Code
	reason string
}{
	CodeNotFound:        {codes.NotFound, ReasonObjectNotFound},
	CodeAlreadyExists:   {codes.AlreadyExists, ReasonObjectExists},
	CodePrecondition:    {codes.FailedPrecondition, ReasonPrecondition},
	CodeThrottled:       {codes.ResourceExhausted, ReasonThrottled},
	CodeAuth:            {codes.Unauthenticated, ReasonAuthInvalid},
	CodePermission:      {codes.PermissionDenied, ReasonAccessDenied},
	CodeUnavailable:     {codes.Unavailable, ReasonUnavailable},
	CodeChecksum:        {codes.DataLoss, ReasonChecksum},
	CodeOutOfRange:      {codes.OutOfRange, ReasonOutOfRange},
	CodeInvalidKey:      {codes.InvalidArgument, ReasonInvalidKey},
	CodeInvalidConfig:   {codes.InvalidArgument, ReasonInvalidConfig},
	CodeInvalidArgument: {codes.InvalidArgument, ReasonInvalidArgument},
	CodeUnimplemented:   {codes.Unimplemented, ReasonUnimplemented},
	CodePluginCrashed:   {codes.Unavailable, ReasonPluginCrashed},
	CodeCanceled:        {codes.Canceled, ""},
	CodeDeadline:        {codes.DeadlineExceeded, ""},
	CodeUnknown:         {codes.Internal, ""},
}

// ToStatus converts a Backend error into the gRPC status that crosses the
// boundary: the code from the contract table, an ErrorInfo (reason, domain,
// key and metadata) and, for throttling, a RetryInfo. A nil error gives nil.
func ToStatus(err error) *status.Status {
	if err == nil {
		return nil
	}
	if s, ok := status.FromError(err); ok && CodeOf(err) == CodeUnknown {
		return s // already a status (e.g. from a nested gRPC call)
	}
	e := asError(err)
	row, ok := codeTable[e.Code]
	if !ok {
		// A Code the table has no row for is "anything else": never the
		// zero row, codes.OK, which would report the failure as success.
		row = codeTable[CodeUnknown]
	}
	reason := e.Reason
	if reason == "" {
		reason = row.reason
	}
	msg := e.Message
	if msg == "" && e.Err != nil {
		msg = e.Err.Error()
	}
	if msg == "" {
		msg = e.Code.sentinel().Error()
	}
	st := status.New(row.grpc, msg)
	if reason == "" {
		return st
	}
	md := make(map[string]string, len(e.Metadata)+1)
	for k, v := range e.Metadata {
		md[k] = v
	}
	if e.Key != "" {
		md[metaKey] = e.Key
	}
	details := []protoadapt.MessageV1{&errdetails.ErrorInfo{Reason: reason, Domain: ErrorDomain, Metadata: md}}
	if e.Code == CodeThrottled && e.RetryAfter > 0 {
		details = append(details, &errdetails.RetryInfo{RetryDelay: durationpb.New(e.RetryAfter)})
	}
	withDetails, derr := st.WithDetails(details...)
	if derr != nil {
		return st
	}
	return withDetails
}

// asError views any error as an *Error, classifying plain errors by the
// sentinel they wrap.
func asError(err error) *Error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	code := CodeOf(err)
	return &Error{Code: code, Message: err.Error(), Err: err}
}

// FromStatus converts a gRPC status received from a plugin back into an
// error matching the contract's sentinels. OK gives nil.
func FromStatus(st *status.Status) error {
	if st == nil || st.Code() == codes.OK {
		return nil
	}
	e := &Error{Message: st.Message()}
	var info *errdetails.ErrorInfo
	for _, d := range st.Details() {
		switch d := d.(type) {
		case *errdetails.ErrorInfo:
			if d.GetDomain() == ErrorDomain {
				info = d
			}
		case *errdetails.RetryInfo:
			e.RetryAfter = d.GetRetryDelay().AsDuration()
		}
	}
	if info != nil {
		e.Reason = info.GetReason()
		for k, v := range info.GetMetadata() {
			if k == metaKey {
				e.Key = v
				continue
			}
			if e.Metadata == nil {
				e.Metadata = map[string]string{}
			}
			e.Metadata[k] = v
		}
	}
	e.Code = codeFromStatus(st.Code(), e.Reason)
	if e.Message == e.Code.sentinel().Error() {
		e.Message = ""
	}
	return e
}

func codeFromStatus(c codes.Code, reason string) Code {
	switch c {
	case codes.NotFound:
		return CodeNotFound
	case codes.AlreadyExists:
		return CodeAlreadyExists
	case codes.FailedPrecondition, codes.Aborted:
		return CodePrecondition
	case codes.ResourceExhausted:
		return CodeThrottled
	case codes.Unauthenticated:
		return CodeAuth
	case codes.PermissionDenied:
		return CodePermission
	case codes.Unavailable:
		if reason == ReasonPluginCrashed {
			return CodePluginCrashed
		}
		return CodeUnavailable
	case codes.DataLoss:
		return CodeChecksum
	case codes.OutOfRange:
		return CodeOutOfRange
	case codes.InvalidArgument:
		switch reason {
		case ReasonInvalidKey:
			return CodeInvalidKey
		case ReasonInvalidConfig:
			return CodeInvalidConfig
		}
		return CodeInvalidArgument
	case codes.Unimplemented:
		return CodeUnimplemented
	case codes.Canceled:
		return CodeCanceled
	case codes.DeadlineExceeded:
		return CodeDeadline
	}
	return CodeUnknown
}

// statusError is what a gRPC handler returns for err.
func statusError(err error) error {
	if err == nil {
		return nil
	}
	return ToStatus(err).Err()
}

// errorFromRPC converts an error returned by a generated client call. It
// keeps local context errors as they are so callers can test them directly.
func errorFromRPC(ctx context.Context, err error) error {
	if err == nil {
		return nil
	}
	if ctxErr := ctx.Err(); ctxErr != nil {
		return ctxErr
	}
	st, ok := status.FromError(err)
	if !ok {
		return err
	}
	return FromStatus(st)
}

// FromStatusError converts an error returned by a generated gRPC call
// (a status error) with FromStatus; other errors are returned unchanged.
func FromStatusError(err error) error {
	if err == nil {
		return nil
	}
	st, ok := status.FromError(err)
	if !ok {
		return err
	}
	return FromStatus(st)
}
