package server_test

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	aof2v1 "github.com/aof2/aof2/api/proto/aof2/v1"
	"github.com/aof2/aof2/core"
	"github.com/aof2/aof2/host/server"
)

// TestJSONTextInvalidUTF8Refused: a JSON append whose "text" is not valid
// UTF-8 is refused (BAD_REQUEST); before, encoding/json stored U+FFFD in
// place of the invalid bytes.
func TestJSONTextInvalidUTF8Refused(t *testing.T) {
	h := start(t, smallConfig(), server.Options{})
	url := h.HTTPURL + "/v1/streams/9/records"
	body := []byte("{\"records\":[{\"text\":\"a\xffb\"}]}")
	r := do(t, "POST", url, "application/json", body)
	if r.code != http.StatusOK {
		require.Equal(t, http.StatusBadRequest, r.code, "%s", r.body)
		return // refused with a clear error: fine
	}
	var rr readResp
	do(t, "GET", url, "", nil).json(t, &rr)
	require.Len(t, rr.Records, 1)
	require.Equal(t, []byte("a\xffb"), rr.Records[0].Payload, "the stored record differs from the request's bytes, and the append said 200")
}

// TestPipelineFirstSeqZero: log.proto: seq is "larger than the previous
// request's on the call": the first request has no previous one, so seq 0
// is a valid first seq.
func TestPipelineFirstSeqZero(t *testing.T) {
	h := start(t, smallConfig(), server.Options{})
	log, _, _ := dial(t, h.GRPCAddr)
	ctx := ctxT(t)
	p, err := log.AppendPipeline(ctx)
	require.NoError(t, err)
	require.NoError(t, p.Send(&aof2v1.AppendPipelineRequest{Seq: 0, Append: &aof2v1.AppendRequest{StreamId: 1, Records: recs([]byte("x"))}}))
	resp, err := p.Recv()
	require.NoError(t, err, "first request with seq 0 ended the call")
	require.Len(t, resp.Acks, 1)
	require.NotNil(t, resp.Acks[0].GetResult())
}

// TestShutdownWithStalledGRPCTail: Shutdown "ends Tail streams": a tail
// whose client stopped reading does not hold the graceful stop until its
// deadline (which then cut off every other in-flight request too): its
// connection is closed a second after Shutdown starts.
func TestShutdownWithStalledGRPCTail(t *testing.T) {
	h := start(t, core.Config{}, server.Options{})
	log, _, _ := dial(t, h.GRPCAddr)
	ctx := ctxT(t)
	big := bytes.Repeat([]byte("x"), 256<<10)
	for i := 0; i < 40; i++ { // 10 MiB, durable
		_, err := log.Append(ctx, &aof2v1.AppendRequest{StreamId: 1, Records: recs(big)})
		require.NoError(t, err)
	}
	// A client with fixed, small flow-control windows that never reads.
	conn, err := grpc.NewClient(h.GRPCAddr, grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithInitialWindowSize(64<<10), grpc.WithInitialConnWindowSize(64<<10),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(64<<20)))
	require.NoError(t, err)
	defer conn.Close()
	tail, err := aof2v1.NewLogClient(conn).Tail(ctx, &aof2v1.TailRequest{StreamId: 1})
	require.NoError(t, err)
	_, err = tail.Header() // the tail is open
	require.NoError(t, err)
	time.Sleep(500 * time.Millisecond) // the server fills the window and blocks in Send

	sctx, cancel := context.WithTimeout(context.Background(), 15*time.Second) // under the 30 s stall timeout that held it before
	defer cancel()
	began := time.Now()
	err = h.Server.Shutdown(sctx)
	took := time.Since(began)
	require.NoError(t, err, "Shutdown with one stalled tail open took %s", took)
}

// TestShutdownWithStalledHTTPTail: the same over HTTP: an SSE tail whose
// client stopped reading gets a second for its writes once Shutdown starts.
func TestShutdownWithStalledHTTPTail(t *testing.T) {
	h := start(t, core.Config{}, server.Options{})
	log, _, _ := dial(t, h.GRPCAddr)
	ctx := ctxT(t)
	big := bytes.Repeat([]byte("x"), 256<<10)
	for i := 0; i < 80; i++ { // 20 MiB, ~27 MiB of base64 JSON
		_, err := log.Append(ctx, &aof2v1.AppendRequest{StreamId: 1, Records: recs(big)})
		require.NoError(t, err)
	}
	req, err := http.NewRequestWithContext(ctx, "GET", h.HTTPURL+"/v1/streams/1/tail", nil)
	require.NoError(t, err)
	resp, err := http.DefaultTransport.RoundTrip(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	_, err = io.ReadFull(resp.Body, make([]byte, 100))
	require.NoError(t, err)
	time.Sleep(500 * time.Millisecond) // socket buffers fill; the handler blocks in Write

	sctx, cancel := context.WithTimeout(context.Background(), 15*time.Second) // under the 30 s stall timeout that held it before
	defer cancel()
	began := time.Now()
	err = h.Server.Shutdown(sctx)
	require.NoError(t, err, "Shutdown with one stalled HTTP tail open took %s", time.Since(began))
}
