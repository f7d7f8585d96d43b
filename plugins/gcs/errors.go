package gcs

import (
	"errors"
	"net/http"

	"cloud.google.com/go/storage"
	"google.golang.org/api/googleapi"

	"github.com/aof2/aof2/pluginapi"
	"github.com/aof2/aof2/plugins/internal/cloud"
)

// mapErr turns a client error into a contract error.
func mapErr(key string, err error) error {
	switch {
	case errors.Is(err, storage.ErrObjectNotExist):
		return &pluginapi.Error{Code: pluginapi.CodeNotFound, Key: key, Err: err}
	case errors.Is(err, storage.ErrBucketNotExist):
		return &pluginapi.Error{Code: pluginapi.CodeNotFound, Reason: pluginapi.ReasonBucketNotFound, Key: key, Err: err}
	}
	var ge *googleapi.Error
	if !errors.As(err, &ge) {
		return cloud.TransportError(key, err)
	}
	r := cloud.Response{Status: ge.Code, Header: ge.Header}
	if len(ge.Errors) > 0 {
		r.Code = ge.Errors[0].Reason
	}
	if r.Header == nil {
		r.Header = http.Header{}
	}
	e := cloud.HTTPError(key, r, err)
	switch r.Code {
	case "rateLimitExceeded", "userRateLimitExceeded":
		e.Code, e.RetryAfter = pluginapi.CodeThrottled, cloud.RetryAfter(r.Header)
	case "authError", "required":
		if ge.Code == http.StatusUnauthorized {
			e.Code = pluginapi.CodeAuth
		}
	}
	if e.Code == pluginapi.CodeUnknown {
		e.Code = pluginapi.CodeUnavailable
	}
	return e
}
