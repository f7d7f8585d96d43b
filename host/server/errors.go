package server

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"path"
	"regexp"
	"strconv"
	"strings"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/protoadapt"
	"google.golang.org/protobuf/types/known/durationpb"

	aof2v1 "github.com/aof2/aof2/api/proto/aof2/v1"
	"github.com/aof2/aof2/api/wire"
	"github.com/aof2/aof2/core"
	"github.com/aof2/aof2/core/coordinator"
	"github.com/aof2/aof2/host/cluster"
	"github.com/aof2/aof2/pluginapi"
)

var (
	// ErrBadRequest: the request is malformed (bad JSON, a bad parameter,
	// records for two streams in one AppendStream). Node implementations
	// return it for bad filters.
	ErrBadRequest = errors.New("aof2: bad request")
	// errUnauthenticated: missing or wrong bearer token.
	errUnauthenticated = errors.New("aof2: missing or invalid bearer token")
	// errNotReady: the node has no store yet (recovery is running).
	errNotReady = errors.New("aof2: not ready: recovery has not finished")
	// errAcceptLossInCluster: a cluster member does not accept a loss;
	// fillers in its segments would make them differ from the other
	// members', which hold the records.
	errAcceptLossInCluster = errors.New("aof2: a cluster member does not accept a loss: the other members hold its records; " +
		"a damaged tail is rewound when the member starts, and a member that stopped applying at damage is wiped and restarted to rejoin (docs/adr-replication.md#a-damaged-member)")
	// errShuttingDown ends tails when the server stops.
	errShuttingDown = fmt.Errorf("aof2: server shutting down: %w", core.ErrClosed)
)

// class is how one kind of error looks to clients.
type class struct {
	reason aof2v1.ErrorReason // zero for cancellation and deadlines
	grpc   codes.Code
	http   int
}

// statusClientClosed is nginx's "client closed request": the client went
// away before the answer.
const statusClientClosed = 499

// errorTable maps errors to what clients see, first match wins. Context
// errors come first: an append that waited out backpressure until the
// caller's deadline wraps both the deadline and the WouldBlock, and the
// deadline is what happened. ErrStreamFailed precedes the I/O sentinels a
// failure may wrap. A tier-2 object that is missing (pluginapi.ErrNotFound,
// from a hydration or a ranged cold read) is data loss, not an internal
// error, and precedes core.ErrNotFound: the record exists, its bytes do not.
var errorTable = []struct {
	match func(error) bool
	class
}{
	{is(errUnauthenticated), class{aof2v1.ErrorReason_UNAUTHENTICATED, codes.Unauthenticated, http.StatusUnauthorized}},
	// Before the context rows: an append whose wait the caller's deadline
	// ended may have committed, and the client must be told so.
	{is(cluster.ErrOutcomeUnknown), class{aof2v1.ErrorReason_OUTCOME_UNKNOWN, codes.Unknown, http.StatusGatewayTimeout}},
	{is(context.Canceled), class{0, codes.Canceled, statusClientClosed}},
	{is(context.DeadlineExceeded), class{0, codes.DeadlineExceeded, http.StatusGatewayTimeout}},
	{is(core.ErrWouldBlock), class{aof2v1.ErrorReason_WOULD_BLOCK, codes.Unavailable, http.StatusServiceUnavailable}},
	{is(errNotReady), class{aof2v1.ErrorReason_NOT_READY, codes.Unavailable, http.StatusServiceUnavailable}},
	{is(coordinator.ErrNotCaughtUp), class{aof2v1.ErrorReason_NOT_READY, codes.Unavailable, http.StatusServiceUnavailable}},
	{is(errPipelineInCluster), class{aof2v1.ErrorReason_BAD_REQUEST, codes.Unimplemented, http.StatusNotImplemented}},
	{is(errAcceptLossInCluster), class{aof2v1.ErrorReason_BAD_REQUEST, codes.FailedPrecondition, http.StatusConflict}},
	{is(ErrBadRequest), class{aof2v1.ErrorReason_BAD_REQUEST, codes.InvalidArgument, http.StatusBadRequest}},
	{isBodyTooLarge, class{aof2v1.ErrorReason_RECORD_TOO_LARGE, codes.InvalidArgument, http.StatusRequestEntityTooLarge}},
	{is(core.ErrSequenceStale), class{aof2v1.ErrorReason_SEQUENCE_STALE, codes.FailedPrecondition, http.StatusConflict}},
	{is(core.ErrSequenceMismatch), class{aof2v1.ErrorReason_SEQUENCE_MISMATCH, codes.FailedPrecondition, http.StatusConflict}},
	{is(core.ErrBatchTooLarge), class{aof2v1.ErrorReason_BATCH_TOO_LARGE, codes.InvalidArgument, http.StatusRequestEntityTooLarge}},
	{is(core.ErrInvalidProducer), class{aof2v1.ErrorReason_BAD_REQUEST, codes.InvalidArgument, http.StatusBadRequest}},
	{is(core.ErrEmptyRecord), class{aof2v1.ErrorReason_EMPTY_RECORD, codes.InvalidArgument, http.StatusBadRequest}},
	{is(core.ErrRecordTooLarge), class{aof2v1.ErrorReason_RECORD_TOO_LARGE, codes.InvalidArgument, http.StatusRequestEntityTooLarge}},
	{is(core.ErrUnknownStream), class{aof2v1.ErrorReason_UNKNOWN_STREAM, codes.NotFound, http.StatusNotFound}},
	{is(core.ErrInvalidRecordID), class{aof2v1.ErrorReason_INVALID_RECORD_ID, codes.InvalidArgument, http.StatusBadRequest}},
	{is(pluginapi.ErrNotFound), class{aof2v1.ErrorReason_DATA_MISSING, codes.DataLoss, http.StatusInternalServerError}},
	{is(core.ErrNotFound), class{aof2v1.ErrorReason_RECORD_NOT_FOUND, codes.OutOfRange, http.StatusRequestedRangeNotSatisfiable}},
	{is(core.ErrNeedsRestore), class{aof2v1.ErrorReason_NEEDS_RESTORE, codes.FailedPrecondition, http.StatusConflict}},
	{is(core.ErrFenced), class{aof2v1.ErrorReason_FENCED, codes.FailedPrecondition, http.StatusConflict}},
	{is(cluster.ErrNotLeader), class{aof2v1.ErrorReason_NOT_LEADER, codes.FailedPrecondition, http.StatusMisdirectedRequest}},
	{is(cluster.ErrNoQuorum), class{aof2v1.ErrorReason_NO_QUORUM, codes.Unavailable, http.StatusServiceUnavailable}},
	{is(core.ErrReplica), class{aof2v1.ErrorReason_REPLICA, codes.FailedPrecondition, http.StatusMisdirectedRequest}},
	{is(core.ErrStreamFailed), class{aof2v1.ErrorReason_STREAM_FAILED, codes.FailedPrecondition, http.StatusServiceUnavailable}},
	{is(core.ErrNoSpace), class{aof2v1.ErrorReason_NO_SPACE, codes.ResourceExhausted, http.StatusInsufficientStorage}},
	{is(core.ErrSegmentIDExhausted), class{aof2v1.ErrorReason_SEGMENT_IDS_EXHAUSTED, codes.ResourceExhausted, http.StatusInsufficientStorage}},
	{is(core.ErrTooManyStreams), class{aof2v1.ErrorReason_TOO_MANY_STREAMS, codes.ResourceExhausted, http.StatusInsufficientStorage}},
	{is(core.ErrCorrupt), class{aof2v1.ErrorReason_CORRUPT, codes.DataLoss, http.StatusInternalServerError}},
	// After CORRUPT: a read of a damaged record is CORRUPT, an append to
	// a damaged stream STREAM_DAMAGED.
	{is(core.ErrDamaged), class{aof2v1.ErrorReason_STREAM_DAMAGED, codes.FailedPrecondition, http.StatusConflict}},
	{is(core.ErrNotDamaged), class{aof2v1.ErrorReason_BAD_REQUEST, codes.FailedPrecondition, http.StatusConflict}},
	{is(core.ErrSegmentBusy), class{aof2v1.ErrorReason_SEGMENT_BUSY, codes.FailedPrecondition, http.StatusConflict}},
	{is(core.ErrClosed), class{aof2v1.ErrorReason_CLOSED, codes.Unavailable, http.StatusServiceUnavailable}},
}

var internalClass = class{aof2v1.ErrorReason_INTERNAL, codes.Internal, http.StatusInternalServerError}

func is(target error) func(error) bool {
	return func(err error) bool { return errors.Is(err, target) }
}

func isBodyTooLarge(err error) bool {
	var mb *http.MaxBytesError
	return errors.As(err, &mb)
}

// retryDelays is the RetryInfo delay (and HTTP Retry-After, rounded up to
// whole seconds) per WouldBlock kind, unless the engine supplied its own:
// how long the condition typically lasts.
var retryDelays = map[core.Kind]time.Duration{
	core.Flush:     10 * time.Millisecond,  // one sync round
	core.Rollover:  10 * time.Millisecond,  // activating the prepared next segment
	core.Tail:      100 * time.Millisecond, // a new durable record; Tail itself waits
	core.Hydration: 250 * time.Millisecond, // fetching a segment from tier 1 or 2
	core.Admission: time.Second,            // eviction or the operator freeing space
}

// notReadyDelay is the retry delay while recovery runs, and while a
// cluster has no quorum (an election takes about a second).
const notReadyDelay = time.Second

// defaultRetryDelay covers kinds the table does not know.
const defaultRetryDelay = 100 * time.Millisecond

// apiError is an error as clients see it: the class, a message without
// server paths, and the details both transports carry.
type apiError struct {
	class
	msg   string
	kind  core.Kind     // WOULD_BLOCK only
	retry time.Duration // WOULD_BLOCK and NOT_READY
	// appended and lastID describe a failed append that appended a prefix
	// of its records.
	appended int
	lastID   core.RecordID
	// stream is the stream a NEEDS_RESTORE or STREAM_DAMAGED is about.
	stream core.StreamID
	// leader names the cluster's leader in a NOT_LEADER.
	leader *cluster.NotLeaderError
}

func classify(err error) apiError {
	c := internalClass
	for _, row := range errorTable {
		if row.match(err) {
			c = row.class
			break
		}
	}
	e := apiError{class: c, msg: redactPaths(err.Error())}
	switch c.reason {
	case aof2v1.ErrorReason_WOULD_BLOCK:
		var wb *core.WouldBlock
		if errors.As(err, &wb) {
			e.kind, e.retry = wb.Kind, wb.RetryAfter
		}
		if e.retry <= 0 {
			e.retry = retryDelays[e.kind]
		}
		if e.retry <= 0 {
			e.retry = defaultRetryDelay
		}
	case aof2v1.ErrorReason_NOT_READY, aof2v1.ErrorReason_NO_QUORUM:
		e.retry = notReadyDelay
	case aof2v1.ErrorReason_NOT_LEADER:
		e.leader = &cluster.NotLeaderError{}
		errors.As(err, &e.leader)
	case aof2v1.ErrorReason_NEEDS_RESTORE:
		var nr *core.NeedsRestoreError
		if errors.As(err, &nr) {
			e.stream = nr.Stream
		}
	case aof2v1.ErrorReason_STREAM_DAMAGED:
		var d *core.DamageError
		if errors.As(err, &d) {
			e.stream = d.Stream
		}
	}
	var pe *partialAppendError
	if errors.As(err, &pe) {
		e.appended, e.lastID = pe.n, pe.last
	}
	return e
}

// partialAppendError is an append that failed after some of its records
// were appended (or after all were, but before they were durable).
type partialAppendError struct {
	n    int           // records appended, at least one
	last core.RecordID // the last of them
	err  error
}

func (e *partialAppendError) Error() string {
	return fmt.Sprintf("%v (%d records were appended, the last %s)", e.err, e.n, e.last)
}

func (e *partialAppendError) Unwrap() error { return e.err }

// withAppended wraps err as a partialAppendError when ids is not empty.
func withAppended(ids []core.RecordID, err error) error {
	if len(ids) == 0 {
		return err
	}
	return withAppendedN(len(ids), ids[len(ids)-1], err)
}

func withAppendedN(n int, last core.RecordID, err error) error {
	if err == nil || n == 0 {
		return err
	}
	return &partialAppendError{n: n, last: last, err: err}
}

// code is the snake_case name of the reason for JSON bodies.
func (e apiError) code() string {
	switch e.grpc {
	case codes.Canceled:
		return "canceled"
	case codes.DeadlineExceeded:
		return "deadline_exceeded"
	}
	return strings.ToLower(e.reason.String())
}

// namesStream: the error is about one stream, named in its metadata.
func (e apiError) namesStream() bool {
	return e.reason == aof2v1.ErrorReason_NEEDS_RESTORE || e.reason == aof2v1.ErrorReason_STREAM_DAMAGED
}

func (e apiError) metadata() map[string]string {
	md := map[string]string{}
	if e.reason == aof2v1.ErrorReason_WOULD_BLOCK {
		md[wire.MetaKind] = wire.KindName(e.kind)
	}
	if e.appended > 0 {
		md[wire.MetaAppended] = strconv.Itoa(e.appended)
		md[wire.MetaLastID] = wire.FormatRecordID(e.lastID)
	}
	if e.namesStream() {
		md[wire.MetaStreamID] = strconv.FormatUint(uint64(e.stream), 10)
	}
	if e.leader != nil {
		md[wire.MetaLeaderID], md[wire.MetaLeaderGRPC], md[wire.MetaLeaderHTTP] = e.leader.LeaderID, e.leader.Leader.GRPC, e.leader.Leader.HTTP
	}
	return md
}

// toStatus converts an error into the gRPC status a client receives. A
// status that gRPC itself produced (a broken stream, a message too large)
// passes through when no table row matches it.
func toStatus(err error) *status.Status {
	e := classify(err)
	if e.reason == aof2v1.ErrorReason_INTERNAL {
		if st, ok := status.FromError(err); ok {
			return st
		}
	}
	st := status.New(e.grpc, e.msg)
	if e.reason == 0 {
		return st
	}
	details := []protoadapt.MessageV1{&errdetails.ErrorInfo{Reason: e.reason.String(), Domain: wire.ErrorDomain, Metadata: e.metadata()}}
	if e.retry > 0 {
		details = append(details, &errdetails.RetryInfo{RetryDelay: durationpb.New(e.retry)})
	}
	if withDetails, derr := st.WithDetails(details...); derr == nil {
		return withDetails
	}
	return st
}

// errorBody is the JSON body of every HTTP error.
type errorBody struct {
	Error        string `json:"error"`
	Code         string `json:"code"`
	Kind         string `json:"kind,omitempty"`
	RetryAfterMS int64  `json:"retry_after_ms,omitempty"`
	Appended     int    `json:"appended,omitempty"`
	LastID       string `json:"last_id,omitempty"`
	StreamID     string `json:"stream_id,omitempty"` // NEEDS_RESTORE, STREAM_DAMAGED: the stream
	// NOT_LEADER: the cluster's leader, when known.
	LeaderID   string `json:"leader_id,omitempty"`
	LeaderGRPC string `json:"leader_grpc,omitempty"`
	LeaderHTTP string `json:"leader_http,omitempty"`
}

// httpError converts an error into the HTTP status, headers and body a
// client receives.
func httpError(err error) (int, http.Header, errorBody) {
	e := classify(err)
	h := http.Header{}
	body := errorBody{Error: e.msg, Code: e.code()}
	if e.reason == aof2v1.ErrorReason_WOULD_BLOCK {
		body.Kind = wire.KindName(e.kind)
	}
	if e.retry > 0 {
		body.RetryAfterMS = max(e.retry.Milliseconds(), 1)
		secs := int64((e.retry + time.Second - 1) / time.Second)
		h.Set("Retry-After", strconv.FormatInt(max(secs, 1), 10))
	}
	if e.reason == aof2v1.ErrorReason_UNAUTHENTICATED {
		h.Set("WWW-Authenticate", `Bearer realm="aof2"`)
	}
	if e.appended > 0 {
		body.Appended, body.LastID = e.appended, wire.FormatRecordID(e.lastID)
	}
	if e.namesStream() {
		body.StreamID = strconv.FormatUint(uint64(e.stream), 10)
	}
	if e.leader != nil {
		body.LeaderID, body.LeaderGRPC, body.LeaderHTTP = e.leader.LeaderID, e.leader.Leader.GRPC, e.leader.Leader.HTTP
	}
	return e.http, h, body
}

// absPath matches an absolute file path in an error message, with what
// precedes it.
var absPath = regexp.MustCompile(`(^|[\s("'=])(/[^\s:,()"']+)`)

// redactPaths replaces absolute paths in a client-visible message with
// their last element: a segment file's name says what a client can act on,
// the data directory's location does not concern it.
func redactPaths(msg string) string {
	return absPath.ReplaceAllStringFunc(msg, func(m string) string {
		i := strings.IndexByte(m, '/')
		return m[:i] + path.Base(m[i:])
	})
}
