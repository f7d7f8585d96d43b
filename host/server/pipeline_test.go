package server_test

import (
	"bytes"
	"context"
	"io"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/anypb"

	spb "google.golang.org/genproto/googleapis/rpc/status"

	aof2v1 "github.com/aof2/aof2/api/proto/aof2/v1"
	"github.com/aof2/aof2/core"
	"github.com/aof2/aof2/host/server"
	"github.com/aof2/aof2/internal/testlog"
)

type pipelineClient = grpc.BidiStreamingClient[aof2v1.AppendPipelineRequest, aof2v1.AppendPipelineResponse]

// ackStatus is an AppendAck's error as the status a unary Append returns.
func ackStatus(e *aof2v1.AppendError) error {
	if e == nil {
		return nil
	}
	return status.FromProto(&spb.Status{Code: e.GetCode(), Message: e.GetMessage(), Details: append([]*anypb.Any(nil), e.GetDetails()...)}).Err()
}

// recvAcks reads answers until n requests are answered and returns them
// in the order they came.
func recvAcks(t *testing.T, call pipelineClient, n int) []*aof2v1.AppendAck {
	t.Helper()
	var acks []*aof2v1.AppendAck
	for len(acks) < n {
		resp, err := call.Recv()
		require.NoError(t, err)
		require.NotEmpty(t, resp.GetAcks(), "an answer without acknowledgements")
		acks = append(acks, resp.GetAcks()...)
	}
	require.Len(t, acks, n)
	return acks
}

func TestAppendPipeline(t *testing.T) {
	h := start(t, smallConfig(), server.Options{MaxRecordSize: 1024})
	logc, _, _ := dial(t, h.GRPCAddr)
	ctx := ctxT(t)
	call, err := logc.AppendPipeline(ctx)
	require.NoError(t, err)

	big := bytes.Repeat([]byte("x"), 2048)
	reqs := []struct {
		name   string
		append *aof2v1.AppendRequest
		code   codes.Code
		reason aof2v1.ErrorReason
	}{
		{"two records", &aof2v1.AppendRequest{StreamId: 1, Records: recs([]byte("a"), []byte("b"))}, codes.OK, 0},
		{"another stream, not waiting", &aof2v1.AppendRequest{StreamId: 2, Records: recs([]byte("c")), NoWaitDurable: true}, codes.OK, 0},
		{"an empty record", &aof2v1.AppendRequest{StreamId: 1, Records: recs([]byte("d"), nil)}, codes.InvalidArgument, aof2v1.ErrorReason_EMPTY_RECORD},
		{"a record too large", &aof2v1.AppendRequest{StreamId: 1, Records: recs(big)}, codes.InvalidArgument, aof2v1.ErrorReason_RECORD_TOO_LARGE},
		{"a producer id", &aof2v1.AppendRequest{StreamId: 1, Records: recs([]byte("e")), ProducerId: 7, Sequence: 1}, codes.InvalidArgument, aof2v1.ErrorReason_BAD_REQUEST},
		{"no append", nil, codes.InvalidArgument, aof2v1.ErrorReason_BAD_REQUEST},
		{"after the refusals", &aof2v1.AppendRequest{StreamId: 1, Records: recs([]byte("f"))}, codes.OK, 0},
	}
	// Every request goes out before any answer is read: the host appends
	// them in order and answers each.
	for i, r := range reqs {
		require.NoError(t, call.Send(&aof2v1.AppendPipelineRequest{Seq: uint64(10 + 2*i), Append: r.append}), r.name)
	}
	acks := recvAcks(t, call, len(reqs))
	var ids1 []uint64
	for i, r := range reqs {
		ack := acks[i]
		require.Equal(t, uint64(10+2*i), ack.GetSeq(), "%s: answers come in request order", r.name)
		if r.code != codes.OK {
			require.Nil(t, ack.GetResult(), r.name)
			requireStatus(t, ackStatus(ack.GetError()), r.code, r.reason)
			continue
		}
		require.Nil(t, ack.GetError(), "%s: %v", r.name, ackStatus(ack.GetError()))
		res := ack.GetResult()
		require.Len(t, res.GetIds(), len(r.append.GetRecords()), r.name)
		require.Equal(t, !r.append.GetNoWaitDurable(), res.GetDurable(), r.name)
		if r.append.GetStreamId() == 1 {
			ids1 = append(ids1, res.GetIds()...)
		}
	}
	// Stream 1 holds a, b and f, in that order, at the answered ids, and
	// they are durable; nothing of the refused requests was appended.
	got, err := logc.Read(ctx, &aof2v1.ReadRequest{StreamId: 1})
	require.NoError(t, err)
	require.Len(t, got.GetRecords(), 3)
	for i, want := range []string{"a", "b", "f"} {
		require.Equal(t, want, string(got.GetRecords()[i].GetPayload()))
		require.Equal(t, ids1[i], got.GetRecords()[i].GetId())
	}
	info, err := logc.StreamInfo(ctx, &aof2v1.StreamInfoRequest{StreamId: 1})
	require.NoError(t, err)
	require.Equal(t, uint64(3), info.GetDurableRecords())

	// A seq that does not grow ends the call; closing cleanly ends it
	// without error.
	require.NoError(t, call.Send(&aof2v1.AppendPipelineRequest{Seq: 10, Append: reqs[0].append}))
	_, err = call.Recv()
	requireStatus(t, err, codes.InvalidArgument, aof2v1.ErrorReason_BAD_REQUEST)

	call, err = logc.AppendPipeline(ctx)
	require.NoError(t, err)
	require.NoError(t, call.Send(&aof2v1.AppendPipelineRequest{Seq: 1, Append: reqs[0].append}))
	require.NoError(t, call.CloseSend())
	recvAcks(t, call, 1)
	_, err = call.Recv()
	require.ErrorIs(t, err, io.EOF)
}

// An answer carries at most 64 Ki ids: requests answered together that
// hold more are answered over several messages, each request once.
func TestAppendPipelineSplitsLargeAnswers(t *testing.T) {
	h := start(t, core.Config{}, server.Options{})
	logc, _, _ := dial(t, h.GRPCAddr)
	call, err := logc.AppendPipeline(ctxT(t))
	require.NoError(t, err)
	const requests, perRequest = 40, 4096 // 160 Ki ids
	batch := make([]*aof2v1.Record, perRequest)
	for i := range batch {
		batch[i] = &aof2v1.Record{Payload: []byte{byte(i)}}
	}
	for i := range requests {
		require.NoError(t, call.Send(&aof2v1.AppendPipelineRequest{Seq: uint64(i + 1), Append: &aof2v1.AppendRequest{StreamId: 1, Records: batch}}))
	}
	require.NoError(t, call.CloseSend())
	var seqs []uint64
	for {
		resp, err := call.Recv()
		if err == io.EOF {
			break
		}
		require.NoError(t, err)
		ids := 0
		for _, ack := range resp.GetAcks() {
			require.Nil(t, ack.GetError())
			ids += len(ack.GetResult().GetIds())
			seqs = append(seqs, ack.GetSeq())
		}
		require.LessOrEqual(t, ids, 64<<10+perRequest, "ids in one answer")
	}
	require.Len(t, seqs, requests)
	for i, s := range seqs {
		require.Equal(t, uint64(i+1), s)
	}
}

// Shutdown ends an open pipeline with UNAVAILABLE (it does not wait for
// the client to close it); what was answered before is durable.
func TestAppendPipelineEndsAtShutdown(t *testing.T) {
	h := start(t, smallConfig(), server.Options{})
	logc, _, _ := dial(t, h.GRPCAddr)
	call, err := logc.AppendPipeline(ctxT(t))
	require.NoError(t, err)
	require.NoError(t, call.Send(&aof2v1.AppendPipelineRequest{Seq: 1, Append: &aof2v1.AppendRequest{StreamId: 1, Records: recs([]byte("a"))}}))
	acks := recvAcks(t, call, 1)
	require.True(t, acks[0].GetResult().GetDurable())

	done := make(chan struct{})
	go func() {
		defer close(done)
		h.Shutdown(t)
	}()
	_, err = call.Recv()
	requireStatus(t, err, codes.Unavailable, aof2v1.ErrorReason_CLOSED)
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		t.Fatal("Shutdown did not return with a pipeline open")
	}
	str, err := h.Store.Lookup(1)
	require.NoError(t, err)
	require.Equal(t, uint64(1), str.Info().DurableRecords)
}

// A client that goes away with its pipeline open (a Client closing) is
// not a fault: nothing is logged above debug.
func TestAppendPipelineClientGoneIsNotAFault(t *testing.T) {
	var logs testlog.Capture
	h := start(t, smallConfig(), server.Options{Logger: hclog.New(&hclog.LoggerOptions{Output: &logs, JSONFormat: true, Level: hclog.Info})})
	logc, _, _ := dial(t, h.GRPCAddr)
	ctx, cancel := context.WithCancel(ctxT(t))
	call, err := logc.AppendPipeline(ctx)
	require.NoError(t, err)
	require.NoError(t, call.Send(&aof2v1.AppendPipelineRequest{Seq: 1, Append: &aof2v1.AppendRequest{StreamId: 1, Records: recs([]byte("a"))}}))
	recvAcks(t, call, 1)
	cancel()
	h.Shutdown(t) // waits for the handler
	for _, l := range logs.Lines(t) {
		t.Log(l)
		require.NotEqual(t, "error", l["@level"], "logged: %v", l)
	}
}
