package server_test

import (
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"

	aof2v1 "github.com/aof2/aof2/api/proto/aof2/v1"
	"github.com/aof2/aof2/core"
	"github.com/aof2/aof2/host/server"
)

// tinyRecords returns n one-byte records: five bytes each in a request,
// while each id in the answer takes six (and up to ten).
func tinyRecords(n int) []*aof2v1.Record {
	rs := make([]*aof2v1.Record, n)
	for i := range rs {
		rs[i] = &aof2v1.Record{Payload: []byte("x")}
	}
	return rs
}

// TestGRPCAppendAnswerTooLargeRefused: an Append whose records fit one
// message but whose answer (an id per record) would not is refused before
// anything is appended (BAD_REQUEST). Before, the 800,000 records were
// appended and made durable, then the answer failed to send
// (RESOURCE_EXHAUSTED "trying to send message larger than max", without
// the appended count): a client retrying it duplicated them all.
func TestGRPCAppendAnswerTooLargeRefused(t *testing.T) {
	h := start(t, smallConfig(), server.Options{}) // 4 MiB messages
	log, _, _ := dial(t, h.GRPCAddr)
	ctx := ctxT(t)

	_, err := log.Append(ctx, &aof2v1.AppendRequest{StreamId: 1, Records: tinyRecords(800_000)})
	requireStatus(t, err, codes.InvalidArgument, aof2v1.ErrorReason_BAD_REQUEST)
	_, err = h.Store.Lookup(1)
	require.ErrorIs(t, err, core.ErrUnknownStream, "the refused append created its stream or appended records")

	// A batch whose answer fits is taken whole.
	resp, err := log.Append(ctx, &aof2v1.AppendRequest{StreamId: 1, Records: tinyRecords(400_000)})
	require.NoError(t, err)
	require.Len(t, resp.Ids, 400_000)
}

// TestPipelineAnswerTooLargeRefused: the same on AppendPipeline: the
// request is answered with BAD_REQUEST and nothing of it is appended;
// before, its records were appended, then the answer failed to send and
// the whole call ended.
func TestPipelineAnswerTooLargeRefused(t *testing.T) {
	h := start(t, smallConfig(), server.Options{})
	log, _, _ := dial(t, h.GRPCAddr)
	ctx := ctxT(t)
	p, err := log.AppendPipeline(ctx)
	require.NoError(t, err)
	require.NoError(t, p.Send(&aof2v1.AppendPipelineRequest{Seq: 1, Append: &aof2v1.AppendRequest{StreamId: 1, Records: tinyRecords(800_000)}}))
	resp, err := p.Recv()
	require.NoError(t, err, "the pipeline call ended")
	require.Len(t, resp.Acks, 1)
	require.NotNil(t, resp.Acks[0].GetError(), "the oversized request was appended")
	require.Equal(t, int32(codes.InvalidArgument), resp.Acks[0].GetError().GetCode(), resp.Acks[0].GetError().GetMessage())
	_, err = h.Store.Lookup(1)
	require.ErrorIs(t, err, core.ErrUnknownStream, "the refused request created its stream or appended records")

	// The call goes on.
	require.NoError(t, p.Send(&aof2v1.AppendPipelineRequest{Seq: 2, Append: &aof2v1.AppendRequest{StreamId: 1, Records: recs([]byte("after"))}}))
	resp, err = p.Recv()
	require.NoError(t, err)
	require.Len(t, resp.Acks, 1)
	require.NotNil(t, resp.Acks[0].GetResult(), "%v", resp.Acks[0].GetError())
}

// TestShutdownWithStalledGRPCRead: TestShutdownWithStalledGRPCTail for a
// unary Read: a 16 MiB answer whose client stopped reading does not hold
// Shutdown until its deadline (which then cut off every other in-flight
// request too, and left the host's node close an expired context): its
// connection is closed a second after Shutdown starts. Before, only Tail
// calls were cut.
func TestShutdownWithStalledGRPCRead(t *testing.T) {
	h := start(t, core.Config{}, server.Options{})
	log, _, _ := dial(t, h.GRPCAddr)
	fill(t, log, 60) // 15 MiB
	ctx := ctxT(t)
	// A client with fixed, small flow-control windows that never reads
	// the answer.
	conn, err := grpc.NewClient(h.GRPCAddr, grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithInitialWindowSize(64<<10), grpc.WithInitialConnWindowSize(64<<10),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(64<<20)))
	require.NoError(t, err)
	defer conn.Close()
	cs, err := conn.NewStream(ctx, &grpc.StreamDesc{}, aof2v1.Log_Read_FullMethodName)
	require.NoError(t, err)
	require.NoError(t, cs.SendMsg(&aof2v1.ReadRequest{StreamId: 1, MaxBytes: 16 << 20}))
	require.NoError(t, cs.CloseSend())
	_, err = cs.Header() // the answer is being sent
	require.NoError(t, err)
	time.Sleep(500 * time.Millisecond) // the server fills the window and blocks

	requireShutdownUnderStallTimeout(t, h.Server, "one stalled Read")
}

// TestShutdownWithStalledHTTPRead: the same over HTTP: a read's writes
// get a second once Shutdown starts, as a tail's do. Before, they had the
// whole stall timeout (30 s, the host's whole shutdown grace).
func TestShutdownWithStalledHTTPRead(t *testing.T) {
	h := start(t, core.Config{}, server.Options{})
	log, _, _ := dial(t, h.GRPCAddr)
	fill(t, log, 60) // 15 MiB, 20 MiB of base64 JSON
	ctx := ctxT(t)
	req, err := http.NewRequestWithContext(ctx, "GET", h.HTTPURL+"/v1/streams/1/records?max_bytes=16777216", nil)
	require.NoError(t, err)
	resp, err := http.DefaultTransport.RoundTrip(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	_, err = io.ReadFull(resp.Body, make([]byte, 100))
	require.NoError(t, err)
	time.Sleep(500 * time.Millisecond) // socket buffers fill; the handler blocks in Write

	requireShutdownUnderStallTimeout(t, h.Server, "one stalled HTTP read")
}
