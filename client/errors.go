package client

import (
	"context"
	"errors"
	"strconv"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	aof2v1 "github.com/aof2/aof2/api/proto/aof2/v1"
	"github.com/aof2/aof2/api/wire"
	"github.com/aof2/aof2/core/types"
)

// Sentinels for what the engine has no sentinel for. The engine's own
// (types.ErrUnknownStream, types.ErrWouldBlock, …, the same values core
// re-exports) are matched by errors.Is on the errors the client returns.
var (
	// ErrUnauthenticated: the host wants a (different) bearer token.
	ErrUnauthenticated = errors.New("aof2 client: unauthenticated")
	// ErrNotReady: the host is still recovering; retry shortly.
	ErrNotReady = errors.New("aof2 client: host not ready")
	// ErrBadRequest: the host could not make sense of the request.
	ErrBadRequest = errors.New("aof2 client: bad request")
	// ErrSegmentBusy: the segment cannot be changed now.
	ErrSegmentBusy = errors.New("aof2 client: segment busy")
	// ErrDataMissing: the records asked for have no readable copy left on
	// the host (their tier-2 object is gone); other records of the stream
	// stay readable. Retrying does not help until an operator restores it.
	ErrDataMissing = errors.New("aof2 client: data missing")
	// ErrNotLeader: the node is a follower of a cluster and the request
	// must go to the leader; nothing of it was applied. The client follows
	// it by itself (a few redirects, see Dial); this comes back when the
	// leader could not be reached in that many. Error.Leader names it.
	ErrNotLeader = errors.New("aof2 client: not the cluster leader")
	// ErrOutcomeUnknown: the cluster may or may not have committed the
	// append (leadership changed while it waited). Read the stream to find
	// out; resending may append the records twice.
	ErrOutcomeUnknown = errors.New("aof2 client: append outcome unknown")
	// ErrNoQuorum: the cluster's leader could not reach a majority in
	// time; nothing was appended.
	ErrNoQuorum = errors.New("aof2 client: cluster has no quorum")
)

// WouldBlockError is the backpressure error: errors.As(err, &wb) with a
// *WouldBlockError gives the kind and the delay the host asked for.
type WouldBlockError = types.WouldBlock

// Error is an error the host returned. errors.Is matches the engine
// sentinel it stands for (types.ErrUnknownStream, types.ErrWouldBlock, …)
// or one of this package's; errors.As finds a *WouldBlockError for
// backpressure. status.Code(err) gives the gRPC code.
type Error struct {
	// Reason is the aof2.v1.ErrorReason name; empty for cancellation,
	// deadlines and errors that did not come from the host's API.
	Reason  string
	Message string
	// Appended is how many records a failed append appended anyway (a
	// prefix of its batch), and LastID the last of them: a retry would
	// duplicate them.
	Appended int
	LastID   RecordID
	// Leader names the cluster's leader in a NOT_LEADER error (empty
	// fields while no leader is known).
	Leader Leader

	st     *status.Status
	target error
}

func (e *Error) Error() string { return e.Message }

// Unwrap returns the sentinel (or *WouldBlockError) the error stands for.
func (e *Error) Unwrap() error { return e.target }

// GRPCStatus lets status.Code and status.FromError see the original status.
func (e *Error) GRPCStatus() *status.Status { return e.st }

// reasonTargets maps ErrorReason names to what the error unwraps to.
var reasonTargets = map[aof2v1.ErrorReason]error{
	aof2v1.ErrorReason_EMPTY_RECORD:          types.ErrEmptyRecord,
	aof2v1.ErrorReason_RECORD_TOO_LARGE:      types.ErrRecordTooLarge,
	aof2v1.ErrorReason_UNKNOWN_STREAM:        types.ErrUnknownStream,
	aof2v1.ErrorReason_INVALID_RECORD_ID:     types.ErrInvalidRecordID,
	aof2v1.ErrorReason_RECORD_NOT_FOUND:      types.ErrNotFound,
	aof2v1.ErrorReason_NO_SPACE:              types.ErrNoSpace,
	aof2v1.ErrorReason_CORRUPT:               types.ErrCorrupt,
	aof2v1.ErrorReason_STREAM_FAILED:         types.ErrStreamFailed,
	aof2v1.ErrorReason_CLOSED:                types.ErrClosed,
	aof2v1.ErrorReason_SEGMENT_IDS_EXHAUSTED: types.ErrSegmentIDExhausted,
	aof2v1.ErrorReason_NOT_READY:             ErrNotReady,
	aof2v1.ErrorReason_BAD_REQUEST:           ErrBadRequest,
	aof2v1.ErrorReason_UNAUTHENTICATED:       ErrUnauthenticated,
	aof2v1.ErrorReason_SEGMENT_BUSY:          ErrSegmentBusy,
	aof2v1.ErrorReason_NEEDS_RESTORE:         types.ErrNeedsRestore,
	aof2v1.ErrorReason_STREAM_DAMAGED:        types.ErrDamaged,
	aof2v1.ErrorReason_TOO_MANY_STREAMS:      types.ErrTooManyStreams,
	aof2v1.ErrorReason_DATA_MISSING:          ErrDataMissing,
	aof2v1.ErrorReason_FENCED:                types.ErrFenced,
	aof2v1.ErrorReason_REPLICA:               types.ErrReplica,
	aof2v1.ErrorReason_NOT_LEADER:            ErrNotLeader,
	aof2v1.ErrorReason_OUTCOME_UNKNOWN:       ErrOutcomeUnknown,
	aof2v1.ErrorReason_NO_QUORUM:             ErrNoQuorum,
	aof2v1.ErrorReason_SEQUENCE_STALE:        types.ErrSequenceStale,
	aof2v1.ErrorReason_SEQUENCE_MISMATCH:     types.ErrSequenceMismatch,
	aof2v1.ErrorReason_BATCH_TOO_LARGE:       types.ErrBatchTooLarge,
}

// Leader is a cluster leader as a follower names it.
type Leader struct {
	ID   string `json:"id"`
	GRPC string `json:"grpc_addr"`
	HTTP string `json:"http_addr"`
}

// codeTargets covers statuses without an aof2 ErrorInfo (from gRPC itself
// or a proxy). gRPC answers RESOURCE_EXHAUSTED for a message over the
// host's size limit: a record (or batch) too large to carry.
var codeTargets = map[codes.Code]error{
	codes.Canceled:          context.Canceled,
	codes.DeadlineExceeded:  context.DeadlineExceeded,
	codes.Unauthenticated:   ErrUnauthenticated,
	codes.ResourceExhausted: types.ErrRecordTooLarge,
}

// fromStatus converts an error from a gRPC call into an *Error; errors
// that are not statuses pass through.
func fromStatus(err error) error {
	if err == nil {
		return nil
	}
	st, ok := status.FromError(err)
	if !ok {
		return err
	}
	e := &Error{Message: st.Message(), st: st, target: codeTargets[st.Code()]}
	var info *errdetails.ErrorInfo
	var retry *errdetails.RetryInfo
	for _, d := range st.Details() {
		switch d := d.(type) {
		case *errdetails.ErrorInfo:
			if d.GetDomain() == wire.ErrorDomain {
				info = d
			}
		case *errdetails.RetryInfo:
			retry = d
		}
	}
	if info == nil {
		return e
	}
	e.Reason = info.GetReason()
	reason := aof2v1.ErrorReason(aof2v1.ErrorReason_value[e.Reason])
	if t, ok := reasonTargets[reason]; ok {
		e.target = t
	}
	md := info.GetMetadata()
	if reason == aof2v1.ErrorReason_WOULD_BLOCK {
		wb := &WouldBlockError{}
		wb.Kind, _ = wire.ParseKind(md[wire.MetaKind])
		if retry != nil {
			wb.RetryAfter = retry.GetRetryDelay().AsDuration()
		}
		e.target = wb
	}
	if reason == aof2v1.ErrorReason_NOT_LEADER {
		e.Leader = Leader{ID: md[wire.MetaLeaderID], GRPC: md[wire.MetaLeaderGRPC], HTTP: md[wire.MetaLeaderHTTP]}
	}
	if n, err := strconv.Atoi(md[wire.MetaAppended]); err == nil && n > 0 {
		e.Appended = n
		e.LastID, _ = wire.ParseRecordID(md[wire.MetaLastID])
	}
	return e
}
