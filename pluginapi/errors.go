package pluginapi

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Code classifies a contract error. The numbers are stable: do not change them.
type Code int

const (
	CodeUnknown         Code = 0
	CodeNotFound        Code = 1
	CodeAlreadyExists   Code = 2
	CodePrecondition    Code = 3
	CodeThrottled       Code = 4
	CodeAuth            Code = 5
	CodePermission      Code = 6
	CodeUnavailable     Code = 7
	CodeChecksum        Code = 8
	CodeOutOfRange      Code = 9
	CodeInvalidKey      Code = 10
	CodeInvalidConfig   Code = 11
	CodeInvalidArgument Code = 12
	CodeUnimplemented   Code = 13
	CodePluginCrashed   Code = 14
	CodeCanceled        Code = 15
	CodeDeadline        Code = 16
)

// Sentinels, usable with errors.Is on every error a Backend returns, on
// either side of the process boundary.
var (
	ErrNotFound      = errors.New("object not found")
	ErrAlreadyExists = errors.New("object already exists")
	ErrPrecondition  = errors.New("precondition failed")
	// ErrThrottled carries a retry-after: see [RetryAfter].
	ErrThrottled   = errors.New("throttled")
	ErrAuth        = errors.New("authentication failed")
	ErrPermission  = errors.New("permission denied")
	ErrUnavailable = errors.New("backend unavailable")
	// ErrChecksum means the bytes are not the ones that were stored: a
	// CRC-64/NVME or length mismatch, including a truncated stream.
	ErrChecksum        = errors.New("checksum mismatch")
	ErrOutOfRange      = errors.New("range out of bounds")
	ErrInvalidKey      = errors.New("invalid key")
	ErrInvalidConfig   = errors.New("invalid configuration")
	ErrInvalidArgument = errors.New("invalid argument")
	ErrUnimplemented   = errors.New("not implemented by this backend")
	// ErrPluginCrashed is host-side only: the plugin process died while the
	// call was in flight. It is retryable once the supervisor relaunched it.
	ErrPluginCrashed = errors.New("plugin process crashed")
	// ErrInternal is an error the contract has no row for.
	ErrInternal = errors.New("internal backend error")
)

var codeSentinels = []struct {
	code Code
	err  error
}{
	{CodeNotFound, ErrNotFound},
	{CodeAlreadyExists, ErrAlreadyExists},
	{CodePrecondition, ErrPrecondition},
	{CodeThrottled, ErrThrottled},
	{CodeAuth, ErrAuth},
	{CodePermission, ErrPermission},
	{CodeUnavailable, ErrUnavailable},
	{CodeChecksum, ErrChecksum},
	{CodeOutOfRange, ErrOutOfRange},
	{CodeInvalidKey, ErrInvalidKey},
	{CodeInvalidConfig, ErrInvalidConfig},
	{CodeInvalidArgument, ErrInvalidArgument},
	{CodeUnimplemented, ErrUnimplemented},
	{CodePluginCrashed, ErrPluginCrashed},
	{CodeCanceled, context.Canceled},
	{CodeDeadline, context.DeadlineExceeded},
	{CodeUnknown, ErrInternal},
}

func (c Code) sentinel() error {
	for _, s := range codeSentinels {
		if s.code == c {
			return s.err
		}
	}
	return ErrInternal
}

func (c Code) String() string {
	if c == CodeUnknown {
		return "unknown"
	}
	return strings.ReplaceAll(c.sentinel().Error(), " ", "_")
}

// Error is a contract error with the details that cross the process
// boundary. errors.Is(err, ErrX) works on it through Unwrap.
type Error struct {
	Code Code
	// Reason is the google.rpc.ErrorInfo reason, e.g. OBJECT_NOT_FOUND.
	Reason string
	// Message is human text; it never contains secrets.
	Message string
	// Key is the object key concerned, if any.
	Key string
	// Metadata holds extra ErrorInfo metadata (etag, backend_code, ...).
	Metadata map[string]string
	// RetryAfter is how long a throttled caller should wait (0: unknown).
	RetryAfter time.Duration
	// Err is the local cause; it does not cross the boundary.
	Err error
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.Code.sentinel().Error())
	if e.Key != "" {
		fmt.Fprintf(&b, " (key %q)", e.Key)
	}
	if e.Message != "" {
		b.WriteString(": ")
		b.WriteString(e.Message)
	}
	if e.Err != nil && (e.Message == "" || !strings.Contains(e.Message, e.Err.Error())) {
		b.WriteString(": ")
		b.WriteString(e.Err.Error())
	}
	if e.RetryAfter > 0 {
		fmt.Fprintf(&b, " (retry after %s)", e.RetryAfter)
	}
	return b.String()
}

// Unwrap exposes the code's sentinel and the local cause.
func (e *Error) Unwrap() []error {
	if e.Err == nil {
		return []error{e.Code.sentinel()}
	}
	return []error{e.Code.sentinel(), e.Err}
}

// CodeOf classifies any error: an *Error's code, else the first sentinel
// the error matches, else CodeUnknown.
func CodeOf(err error) Code {
	if err == nil {
		return CodeUnknown
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	for _, s := range codeSentinels {
		if errors.Is(err, s.err) {
			return s.code
		}
	}
	return CodeUnknown
}

// RetryAfter returns the retry-after of a throttling error.
func RetryAfter(err error) (time.Duration, bool) {
	var e *Error
	if errors.As(err, &e) && e.Code == CodeThrottled && e.RetryAfter > 0 {
		return e.RetryAfter, true
	}
	return 0, false
}

// Retryable reports whether retrying the same call later may succeed.
func Retryable(err error) bool {
	switch CodeOf(err) {
	case CodeThrottled, CodeUnavailable, CodePluginCrashed, CodeDeadline:
		return true
	}
	return false
}

// Errorf builds an *Error; the message is formatted with fmt.Sprintf, and a
// %w verb in it becomes the local cause.
func Errorf(code Code, key, format string, args ...any) *Error {
	wrapped := fmt.Errorf(format, args...)
	return &Error{Code: code, Key: key, Message: wrapped.Error(), Err: errors.Unwrap(wrapped)}
}

// NotFoundError reports a missing object.
func NotFoundError(key string) *Error {
	return &Error{Code: CodeNotFound, Key: key}
}

// ThrottledError reports throttling with the wait the backend asked for.
func ThrottledError(retryAfter time.Duration, format string, args ...any) *Error {
	return &Error{Code: CodeThrottled, RetryAfter: retryAfter, Message: fmt.Sprintf(format, args...)}
}
