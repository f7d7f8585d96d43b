package azure

import (
	"errors"
	"strings"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/bloberror"

	"github.com/aof2/aof2/pluginapi"
	"github.com/aof2/aof2/plugins/internal/cloud"
)

// mapErr turns an SDK error into a contract error. containerOp marks calls
// on the container itself.
func mapErr(key string, err error, containerOp bool) error {
	var re *azcore.ResponseError
	if !errors.As(err, &re) {
		return cloud.TransportError(key, err)
	}
	r := cloud.Response{Status: re.StatusCode, Code: re.ErrorCode}
	if re.RawResponse != nil {
		r.Header = re.RawResponse.Header
	}
	e := cloud.HTTPError(key, r, err)
	switch bloberror.Code(r.Code) {
	case bloberror.ContainerNotFound:
		e.Code, e.Reason = pluginapi.CodeNotFound, pluginapi.ReasonBucketNotFound
	case bloberror.BlobNotFound:
		e.Code = pluginapi.CodeNotFound
	case bloberror.ServerBusy, bloberror.OperationTimedOut:
		e.Code, e.RetryAfter = pluginapi.CodeThrottled, cloud.RetryAfter(r.Header)
	case bloberror.AuthenticationFailed, bloberror.InvalidAuthenticationInfo, bloberror.NoAuthenticationInformation:
		e.Code = pluginapi.CodeAuth
	case bloberror.AuthorizationFailure:
		// Azurite answers a bad shared-key signature with
		// AuthorizationFailure where the service says AuthenticationFailed;
		// the reason phrase tells them apart.
		e.Code = pluginapi.CodePermission
		if re.RawResponse != nil && strings.Contains(re.RawResponse.Status, "failed to authenticate") {
			e.Code = pluginapi.CodeAuth
		}
	case bloberror.AuthorizationPermissionMismatch, bloberror.InsufficientAccountPermissions:
		e.Code = pluginapi.CodePermission
	case bloberror.BlobAlreadyExists:
		e.Code = pluginapi.CodeAlreadyExists
	case bloberror.ConditionNotMet:
		e.Code = pluginapi.CodePrecondition
	case bloberror.InvalidBlockList:
		// A concurrent commit to the same blob discarded this upload's
		// uncommitted blocks: the whole Put may be retried.
		e.Code, e.Message = pluginapi.CodeUnavailable, "a concurrent write to the same blob discarded this upload's blocks"
	case bloberror.InvalidRange:
		e.Code = pluginapi.CodeOutOfRange
	case bloberror.MD5Mismatch, bloberror.CRC64Mismatch:
		e.Code = pluginapi.CodeChecksum
	}
	if containerOp && e.Code == pluginapi.CodeNotFound {
		e.Reason = pluginapi.ReasonBucketNotFound
	}
	if e.Code == pluginapi.CodeUnknown {
		e.Code = pluginapi.CodeUnavailable
	}
	return e
}
