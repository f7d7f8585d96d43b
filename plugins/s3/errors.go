package s3

import (
	"errors"
	"net/http"

	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/smithy-go"

	"github.com/aof2/aof2/pluginapi"
	"github.com/aof2/aof2/plugins/internal/cloud"
)

// mapErr turns an SDK error into a contract error. bucketOp marks calls on
// the bucket itself, where 404 means the bucket is missing.
func mapErr(key string, err error, bucketOp bool) error {
	var re *awshttp.ResponseError
	if !errors.As(err, &re) {
		return cloud.TransportError(key, err)
	}
	r := cloud.Response{Status: re.HTTPStatusCode(), Header: re.Response.Header}
	var ae smithy.APIError
	if errors.As(err, &ae) {
		r.Code = ae.ErrorCode()
	}
	e := cloud.HTTPError(key, r, err)
	switch r.Code {
	case "NoSuchBucket":
		e.Code, e.Reason = pluginapi.CodeNotFound, pluginapi.ReasonBucketNotFound
	case "NoSuchKey", "NotFound":
		e.Code = pluginapi.CodeNotFound
	case "SlowDown", "Throttling", "ThrottlingException", "RequestLimitExceeded", "TooManyRequests":
		e.Code, e.RetryAfter = pluginapi.CodeThrottled, cloud.RetryAfter(r.Header)
	case "InvalidAccessKeyId", "SignatureDoesNotMatch", "ExpiredToken", "InvalidToken", "TokenRefreshRequired", "AuthorizationHeaderMalformed":
		e.Code = pluginapi.CodeAuth
	case "AccessDenied", "AllAccessDisabled":
		e.Code = pluginapi.CodePermission
	case "PreconditionFailed":
		e.Code = pluginapi.CodePrecondition
		if bucketOp {
			break
		}
	case "ConditionalRequestConflict":
		// A concurrent conditional write won: the object now exists.
		e.Code = pluginapi.CodeAlreadyExists
	case "InvalidRange":
		e.Code = pluginapi.CodeOutOfRange
	case "BadDigest", "XAmzContentChecksumMismatch", "InvalidDigest":
		e.Code = pluginapi.CodeChecksum
	case "InternalError":
		e.Code = pluginapi.CodeUnavailable
	}
	if r.Status == http.StatusServiceUnavailable {
		// S3 answers 503 to mean SlowDown (without a body on HEAD).
		e.Code, e.RetryAfter = pluginapi.CodeThrottled, cloud.RetryAfter(r.Header)
	}
	if bucketOp && e.Code == pluginapi.CodeNotFound {
		e.Reason = pluginapi.ReasonBucketNotFound
	}
	if e.Code == pluginapi.CodeUnknown {
		e.Code = pluginapi.CodeUnavailable
	}
	return e
}

// ambiguous403 reports a 403 without an error code (a HEAD response has
// no body), which may be bad credentials or a missing permission.
func ambiguous403(err error) bool {
	var e *pluginapi.Error
	return errors.As(err, &e) && e.Code == pluginapi.CodePermission && e.Metadata["backend_code"] == "Forbidden"
}

// clarify asks again with a request whose answer has a body when a HEAD
// failed with a bare 403, so bad credentials are told from access denied.
func clarify(err error, again func() error) error {
	if !ambiguous403(err) {
		return err
	}
	if e2 := again(); e2 != nil && !ambiguous403(e2) && pluginapi.CodeOf(e2) != pluginapi.CodeNotFound {
		return e2
	}
	return err
}

func isBucketMissing(err error) bool {
	var e *pluginapi.Error
	return errors.As(err, &e) && e.Reason == pluginapi.ReasonBucketNotFound
}
