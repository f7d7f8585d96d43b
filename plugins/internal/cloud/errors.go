package cloud

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strconv"
	"syscall"
	"time"

	"github.com/aof2/aof2/pluginapi"
)

// DefaultRetryAfter is the wait reported for throttling that named none.
const DefaultRetryAfter = time.Second

// Response is what a provider error says about the HTTP exchange.
type Response struct {
	Status int
	// Code is the provider's error code (NoSuchKey, SlowDown, BlobNotFound...).
	Code   string
	Header http.Header
}

// HTTPError maps a provider's HTTP failure onto the contract by status:
// the plugin decides provider-specific codes first and calls this for the
// rest. The provider's own message is not kept (only its code, in the
// error metadata), so no provider text reaches the host.
func HTTPError(key string, r Response, cause error) *pluginapi.Error {
	e := &pluginapi.Error{Key: key, Err: cause}
	if r.Code != "" {
		e.Metadata = map[string]string{"backend_code": r.Code}
	}
	switch {
	// 429, or a 503 naming a wait, is throttling; providers add their own
	// throttling codes (SlowDown, ServerBusy...).
	case r.Status == http.StatusTooManyRequests || r.Status == http.StatusServiceUnavailable && r.Header.Get("Retry-After") != "":
		e.Code, e.RetryAfter = pluginapi.CodeThrottled, RetryAfter(r.Header)
	case r.Status == http.StatusNotFound:
		e.Code = pluginapi.CodeNotFound
	case r.Status == http.StatusUnauthorized:
		e.Code = pluginapi.CodeAuth
	case r.Status == http.StatusForbidden:
		e.Code = pluginapi.CodePermission
	case r.Status == http.StatusPreconditionFailed:
		e.Code = pluginapi.CodePrecondition
	case r.Status == http.StatusRequestedRangeNotSatisfiable:
		e.Code = pluginapi.CodeOutOfRange
	case r.Status >= 500:
		e.Code = pluginapi.CodeUnavailable
	case r.Status == http.StatusBadRequest:
		e.Code = pluginapi.CodeInvalidArgument
	default:
		e.Code = pluginapi.CodeUnknown
	}
	e.Message = "backend answered HTTP " + strconv.Itoa(r.Status)
	if r.Code != "" {
		e.Message += " " + r.Code
	}
	return e
}

// RetryAfter reads a Retry-After header (seconds or an HTTP date), or
// DefaultRetryAfter.
func RetryAfter(h http.Header) time.Duration {
	v := h.Get("Retry-After")
	if v == "" {
		return DefaultRetryAfter
	}
	if s, err := strconv.Atoi(v); err == nil && s >= 0 {
		return max(time.Duration(s)*time.Second, time.Millisecond)
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(time.Until(t), time.Millisecond)
	}
	return DefaultRetryAfter
}

// TransportError maps an error without an HTTP response: contract errors
// and context errors pass through, a cut connection or a short body is
// ErrUnavailable (retryable), anything else ErrInternal. ok is false when
// err is nil.
func TransportError(key string, err error) error {
	var pe *pluginapi.Error
	switch {
	case err == nil:
		return nil
	case errors.As(err, &pe):
		return err
	case errors.Is(err, context.Canceled):
		return context.Canceled
	case errors.Is(err, context.DeadlineExceeded):
		return context.DeadlineExceeded
	}
	var ne net.Error
	if errors.As(err, &ne) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.EPIPE) {
		return &pluginapi.Error{Code: pluginapi.CodeUnavailable, Key: key, Message: "connection to the backend failed", Err: err}
	}
	return &pluginapi.Error{Code: pluginapi.CodeUnknown, Key: key, Err: err}
}
