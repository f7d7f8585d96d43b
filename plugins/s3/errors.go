package s3

import (
	"errors"

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
	case "InternalError", "ServiceUnavailable":
		e.Code = pluginapi.CodeUnavailable
	}
	if bucketOp && e.Code == pluginapi.CodeNotFound {
		e.Reason = pluginapi.ReasonBucketNotFound
	}
	if e.Code == pluginapi.CodeUnknown {
		e.Code = pluginapi.CodeUnavailable
	}
	return e
}

func isBucketMissing(err error) bool {
	var e *pluginapi.Error
	return errors.As(err, &e) && e.Reason == pluginapi.ReasonBucketNotFound
}
