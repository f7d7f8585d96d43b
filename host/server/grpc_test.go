package server_test

import (
	"context"
	"errors"
	"io"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	reflectionpb "google.golang.org/grpc/reflection/grpc_reflection_v1"
	"google.golang.org/grpc/status"

	aof2v1 "github.com/aof2/aof2/api/proto/aof2/v1"
	"github.com/aof2/aof2/api/wire"
	"github.com/aof2/aof2/core"
	"github.com/aof2/aof2/host/server"
	"github.com/aof2/aof2/host/server/servertest"
)

// dial returns raw generated clients, to see statuses as they travel.
func dial(t *testing.T, addr string) (aof2v1.LogClient, aof2v1.AdminClient, grpc_health_v1.HealthClient) {
	t.Helper()
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.MaxCallSendMsgSize(64<<20), grpc.MaxCallRecvMsgSize(64<<20)))
	require.NoError(t, err)
	t.Cleanup(func() { _ = conn.Close() })
	return aof2v1.NewLogClient(conn), aof2v1.NewAdminClient(conn), grpc_health_v1.NewHealthClient(conn)
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// requireStatus checks an error's code and ErrorInfo reason.
func requireStatus(t *testing.T, err error, code codes.Code, reason aof2v1.ErrorReason) *status.Status {
	t.Helper()
	st, ok := status.FromError(err)
	require.True(t, ok, "not a status: %v", err)
	require.Equal(t, code, st.Code(), st.Message())
	var info *errdetails.ErrorInfo
	for _, d := range st.Details() {
		if i, ok := d.(*errdetails.ErrorInfo); ok {
			info = i
		}
	}
	require.NotNil(t, info, "no ErrorInfo: %v", err)
	require.Equal(t, reason.String(), info.Reason)
	require.Equal(t, wire.ErrorDomain, info.Domain)
	return st
}

func recs(payloads ...[]byte) []*aof2v1.Record {
	out := make([]*aof2v1.Record, len(payloads))
	for i, p := range payloads {
		out[i] = &aof2v1.Record{Payload: p}
	}
	return out
}

func TestGRPCBadRequests(t *testing.T) {
	h := start(t, smallConfig(), server.Options{})
	log, admin, _ := dial(t, h.GRPCAddr)
	ctx := ctxT(t)
	resp, err := log.Append(ctx, &aof2v1.AppendRequest{StreamId: 1, Records: recs(payload(0, 100))})
	require.NoError(t, err)
	first := core.RecordID(resp.Ids[0])
	s, err := h.Store.Lookup(1)
	require.NoError(t, err)
	tooBig := make([]byte, s.MaxRecordSize()+1)
	at := func(id core.RecordID) *aof2v1.Position {
		return &aof2v1.Position{Start: &aof2v1.Position_RecordId{RecordId: uint64(id)}}
	}

	for _, tc := range []struct {
		name   string
		call   func() error
		code   codes.Code
		reason aof2v1.ErrorReason
	}{
		{"oversized record", func() error {
			_, err := log.Append(ctx, &aof2v1.AppendRequest{StreamId: 1, Records: recs([]byte("ok"), tooBig)})
			return err
		}, codes.InvalidArgument, aof2v1.ErrorReason_RECORD_TOO_LARGE},
		{"empty record", func() error {
			_, err := log.Append(ctx, &aof2v1.AppendRequest{StreamId: 1, Records: recs([]byte("ok"), nil)})
			return err
		}, codes.InvalidArgument, aof2v1.ErrorReason_EMPTY_RECORD},
		{"no records", func() error {
			_, err := log.Append(ctx, &aof2v1.AppendRequest{StreamId: 1})
			return err
		}, codes.InvalidArgument, aof2v1.ErrorReason_BAD_REQUEST},
		{"unknown stream read", func() error {
			_, err := log.Read(ctx, &aof2v1.ReadRequest{StreamId: 2})
			return err
		}, codes.NotFound, aof2v1.ErrorReason_UNKNOWN_STREAM},
		{"unknown stream info", func() error {
			_, err := log.StreamInfo(ctx, &aof2v1.StreamInfoRequest{StreamId: 2})
			return err
		}, codes.NotFound, aof2v1.ErrorReason_UNKNOWN_STREAM},
		{"unknown stream flush", func() error {
			_, err := log.Flush(ctx, &aof2v1.FlushRequest{StreamId: 2})
			return err
		}, codes.NotFound, aof2v1.ErrorReason_UNKNOWN_STREAM},
		{"unknown stream seal", func() error {
			_, err := log.Seal(ctx, &aof2v1.SealRequest{StreamId: 2})
			return err
		}, codes.NotFound, aof2v1.ErrorReason_UNKNOWN_STREAM},
		{"unknown stream tail", func() error {
			call, err := log.Tail(ctx, &aof2v1.TailRequest{StreamId: 2})
			if err == nil {
				_, err = call.Recv()
			}
			return err
		}, codes.NotFound, aof2v1.ErrorReason_UNKNOWN_STREAM},
		{"unknown stream hydrate", func() error {
			call, err := admin.Hydrate(ctx, &aof2v1.HydrateRequest{StreamId: 2})
			if err == nil {
				_, err = call.Recv()
			}
			return err
		}, codes.NotFound, aof2v1.ErrorReason_UNKNOWN_STREAM},
		{"hydrate from after to", func() error {
			call, err := admin.Hydrate(ctx, &aof2v1.HydrateRequest{StreamId: 1, FromSegment: new(uint64(3)), ToSegment: new(uint64(2))})
			if err == nil {
				_, err = call.Recv()
			}
			return err
		}, codes.InvalidArgument, aof2v1.ErrorReason_BAD_REQUEST},
		{"id mid-record", func() error {
			_, err := log.Read(ctx, &aof2v1.ReadRequest{StreamId: 1, Start: at(first + 8)})
			return err
		}, codes.InvalidArgument, aof2v1.ErrorReason_INVALID_RECORD_ID},
		{"id past the end", func() error {
			_, err := log.Read(ctx, &aof2v1.ReadRequest{StreamId: 1, Start: at(first + 1<<16)})
			return err
		}, codes.OutOfRange, aof2v1.ErrorReason_RECORD_NOT_FOUND},
		{"tail from mid-record", func() error {
			call, err := log.Tail(ctx, &aof2v1.TailRequest{StreamId: 1, Start: at(first + 8)})
			if err == nil {
				_, err = call.Recv()
			}
			return err
		}, codes.InvalidArgument, aof2v1.ErrorReason_INVALID_RECORD_ID},
		{"two streams in one append stream", func() error {
			call, err := log.AppendStream(ctx)
			require.NoError(t, err)
			require.NoError(t, call.Send(&aof2v1.AppendRequest{StreamId: 1, Records: recs([]byte("a"))}))
			_ = call.Send(&aof2v1.AppendRequest{StreamId: 3, Records: recs([]byte("b"))})
			_, err = call.CloseAndRecv()
			return err
		}, codes.InvalidArgument, aof2v1.ErrorReason_BAD_REQUEST},
		{"unknown tier", func() error {
			_, err := admin.ListSegments(ctx, &aof2v1.ListSegmentsRequest{Tier: "tier9"})
			return err
		}, codes.InvalidArgument, aof2v1.ErrorReason_BAD_REQUEST},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st := requireStatus(t, tc.call(), tc.code, tc.reason)
			require.NotContains(t, st.Message(), h.Store.Dir())
			_, err := log.StreamInfo(ctx, &aof2v1.StreamInfoRequest{StreamId: 1})
			require.NoError(t, err, "still serving")
		})
	}

	// The mixed append stream appended its first batch and says so.
	call, err := log.AppendStream(ctx)
	require.NoError(t, err)
	require.NoError(t, call.Send(&aof2v1.AppendRequest{StreamId: 1, Records: recs([]byte("a"), []byte("b"))}))
	_ = call.Send(&aof2v1.AppendRequest{StreamId: 3, Records: recs([]byte("c"))})
	_, err = call.CloseAndRecv()
	st := requireStatus(t, err, codes.InvalidArgument, aof2v1.ErrorReason_BAD_REQUEST)
	require.Equal(t, "2", st.Details()[0].(*errdetails.ErrorInfo).Metadata[wire.MetaAppended])
}

func TestGRPCAuth(t *testing.T) {
	h := start(t, smallConfig(), server.Options{Token: "s3cret"})
	log, _, health := dial(t, h.GRPCAddr)
	ctx := ctxT(t)
	for _, tc := range []struct {
		name string
		md   []string
		ok   bool
	}{
		{"missing", nil, false},
		{"wrong", []string{"authorization", "Bearer nope"}, false},
		{"two tokens", []string{"authorization", "Bearer s3cret", "authorization", "Bearer s3cret"}, false},
		{"right", []string{"authorization", "Bearer s3cret"}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := metadata.AppendToOutgoingContext(ctx, tc.md...)
			_, err := log.Append(ctx, &aof2v1.AppendRequest{StreamId: 1, Records: recs([]byte("x"))})
			if tc.ok {
				require.NoError(t, err)
			} else {
				requireStatus(t, err, codes.Unauthenticated, aof2v1.ErrorReason_UNAUTHENTICATED)
			}
			call, err := log.Tail(ctx, &aof2v1.TailRequest{StreamId: 1})
			require.NoError(t, err)
			_, err = call.Recv()
			if tc.ok {
				require.NoError(t, err)
			} else {
				requireStatus(t, err, codes.Unauthenticated, aof2v1.ErrorReason_UNAUTHENTICATED)
			}
		})
	}
	resp, err := health.Check(ctx, &grpc_health_v1.HealthCheckRequest{})
	require.NoError(t, err, "health needs no token")
	require.Equal(t, grpc_health_v1.HealthCheckResponse_SERVING, resp.Status)
}

func TestGRPCWouldBlock(t *testing.T) {
	cfg := smallConfig()
	cfg.Sync, cfg.MaxUnflushedBytes = core.SyncNone, 1
	h := start(t, cfg, server.Options{})
	log, _, _ := dial(t, h.GRPCAddr)
	ctx := ctxT(t)
	_, err := log.Append(ctx, &aof2v1.AppendRequest{StreamId: 1, Records: recs([]byte("a")), NoWaitDurable: true})
	require.NoError(t, err)
	_, err = log.Append(ctx, &aof2v1.AppendRequest{StreamId: 1, Records: recs([]byte("b"), []byte("c")), NoWaitDurable: true})
	st := requireStatus(t, err, codes.Unavailable, aof2v1.ErrorReason_WOULD_BLOCK)
	var retry *errdetails.RetryInfo
	for _, d := range st.Details() {
		switch d := d.(type) {
		case *errdetails.ErrorInfo:
			require.Equal(t, "flush", d.Metadata[wire.MetaKind])
			require.NotContains(t, d.Metadata, wire.MetaAppended, "nothing was appended")
		case *errdetails.RetryInfo:
			retry = d
		}
	}
	require.NotNil(t, retry)
	require.Equal(t, 10*time.Millisecond, retry.RetryDelay.AsDuration())

	// Durable appends wait it out.
	resp, err := log.Append(ctx, &aof2v1.AppendRequest{StreamId: 1, Records: recs([]byte("b"), []byte("c"))})
	require.NoError(t, err)
	require.Len(t, resp.Ids, 2)
	require.True(t, resp.Durable)
}

func TestGRPCHealthFollowsReadiness(t *testing.T) {
	node := servertest.NewNode(nil)
	h := servertest.StartNode(t, node, server.Options{})
	log, _, health := dial(t, h.GRPCAddr)
	ctx := ctxT(t)
	resp, err := health.Check(ctx, &grpc_health_v1.HealthCheckRequest{Service: "aof2.v1.Log"})
	require.NoError(t, err)
	require.Equal(t, grpc_health_v1.HealthCheckResponse_NOT_SERVING, resp.Status)
	_, err = log.Append(ctx, &aof2v1.AppendRequest{StreamId: 1, Records: recs([]byte("x"))})
	requireStatus(t, err, codes.Unavailable, aof2v1.ErrorReason_NOT_READY)
	_, err = health.Check(ctx, &grpc_health_v1.HealthCheckRequest{Service: "nope"})
	require.Equal(t, codes.NotFound, status.Code(err))

	watch, err := health.Watch(ctx, &grpc_health_v1.HealthCheckRequest{})
	require.NoError(t, err)
	first, err := watch.Recv()
	require.NoError(t, err)
	require.Equal(t, grpc_health_v1.HealthCheckResponse_NOT_SERVING, first.Status)

	st, err := core.Open(t.TempDir(), smallConfig())
	require.NoError(t, err)
	t.Cleanup(func() { h.Shutdown(t); _ = st.Close() })
	node.SetStore(st)
	next, err := watch.Recv()
	require.NoError(t, err)
	require.Equal(t, grpc_health_v1.HealthCheckResponse_SERVING, next.Status)
	resp, err = health.Check(ctx, &grpc_health_v1.HealthCheckRequest{})
	require.NoError(t, err)
	require.Equal(t, grpc_health_v1.HealthCheckResponse_SERVING, resp.Status)

	// Shutdown ends the watch with a last NOT_SERVING.
	h.Shutdown(t)
	last, err := watch.Recv()
	require.NoError(t, err)
	require.Equal(t, grpc_health_v1.HealthCheckResponse_NOT_SERVING, last.Status)
}

// TestGRPCReflection: grpcurl and similar tools list and describe the
// services without the .proto files; with a token configured, reflection
// needs it like every call but health.
func TestGRPCReflection(t *testing.T) {
	h := start(t, smallConfig(), server.Options{Token: "s3cret"})
	conn, err := grpc.NewClient(h.GRPCAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(t, err)
	defer conn.Close()
	list := func(ctx context.Context) ([]string, error) {
		stream, err := reflectionpb.NewServerReflectionClient(conn).ServerReflectionInfo(ctx)
		if err != nil {
			return nil, err
		}
		// A refused stream ends the Send with io.EOF; Recv has the status.
		if err := stream.Send(&reflectionpb.ServerReflectionRequest{MessageRequest: &reflectionpb.ServerReflectionRequest_ListServices{}}); err != nil && !errors.Is(err, io.EOF) {
			return nil, err
		}
		resp, err := stream.Recv()
		if err != nil {
			return nil, err
		}
		var names []string
		for _, s := range resp.GetListServicesResponse().GetService() {
			names = append(names, s.GetName())
		}
		return names, stream.CloseSend()
	}
	ctx := ctxT(t)
	_, err = list(ctx)
	requireStatus(t, err, codes.Unauthenticated, aof2v1.ErrorReason_UNAUTHENTICATED)
	names, err := list(metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer s3cret"))
	require.NoError(t, err)
	require.Subset(t, names, []string{"aof2.v1.Log", "aof2.v1.Admin", "grpc.health.v1.Health"})
}

// TestSetToken: a rotated token takes effect at once on gRPC and HTTP;
// adding or removing one is refused (it needs a restart).
func TestSetToken(t *testing.T) {
	h := start(t, smallConfig(), server.Options{Token: "old"})
	log, _, _ := dial(t, h.GRPCAddr)
	ctx := ctxT(t)
	appendWith := func(tok string) error {
		_, err := log.Append(metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+tok), &aof2v1.AppendRequest{StreamId: 1, Records: recs([]byte("x"))})
		return err
	}
	require.NoError(t, appendWith("old"))
	require.NoError(t, h.Server.SetToken("new"))
	requireStatus(t, appendWith("old"), codes.Unauthenticated, aof2v1.ErrorReason_UNAUTHENTICATED)
	require.NoError(t, appendWith("new"))
	require.Equal(t, 200, do(t, "GET", h.HTTPURL+"/v1/streams/1", "", nil, "Authorization", "Bearer new").code)
	require.Equal(t, 401, do(t, "GET", h.HTTPURL+"/v1/streams/1", "", nil, "Authorization", "Bearer old").code)
	require.ErrorIs(t, h.Server.SetToken(""), server.ErrTokenChange)

	open := start(t, smallConfig(), server.Options{})
	require.ErrorIs(t, open.Server.SetToken("x"), server.ErrTokenChange)
	require.NoError(t, open.Server.SetToken(""))
}
