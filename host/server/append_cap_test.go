package server_test

import (
	"bytes"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"

	aof2v1 "github.com/aof2/aof2/api/proto/aof2/v1"
	"github.com/aof2/aof2/client"
	"github.com/aof2/aof2/host/server"
)

// tooManyRecords is far more records than one append may carry
// (maxAnswerRecords, 419,328), each of one byte.
const tooManyRecords = 2_000_000

// bigMessages lets a gRPC message carry tooManyRecords.
var bigMessages = server.Options{MaxRecordSize: 32 << 20}

func oneByteRecords(n int) []*aof2v1.Record {
	one := []byte{1}
	out := make([]*aof2v1.Record, n)
	for i := range out {
		out[i] = &aof2v1.Record{Payload: one}
	}
	return out
}

// requireRecordCount checks how many records stream holds.
func requireRecordCount(t *testing.T, log aof2v1.LogClient, stream uint64, want int) {
	t.Helper()
	resp, err := log.Read(ctxT(t), &aof2v1.ReadRequest{StreamId: stream, MaxRecords: 10})
	require.NoError(t, err)
	require.Len(t, resp.GetRecords(), want)
}

func TestAppendTooManyRecordsRefused(t *testing.T) {
	h := start(t, smallConfig(), bigMessages)
	log, _, _ := dial(t, h.GRPCAddr)
	ctx := ctxT(t)
	_, err := log.Append(ctx, &aof2v1.AppendRequest{StreamId: 1, Records: recs([]byte("a"))})
	require.NoError(t, err)

	_, err = log.Append(ctx, &aof2v1.AppendRequest{StreamId: 1, Records: oneByteRecords(tooManyRecords)})
	st := requireStatus(t, err, codes.InvalidArgument, aof2v1.ErrorReason_BAD_REQUEST)
	require.Contains(t, st.Message(), "more than 419328 records in one request")

	c, err := client.Dial(ctx, h.GRPCAddr)
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close() })
	payloads := make([][]byte, tooManyRecords)
	for i := range payloads {
		payloads[i] = []byte{1}
	}
	_, err = c.Append(ctx, 1, payloads...)
	require.ErrorIs(t, err, client.ErrBadRequest)
	requireRecordCount(t, log, 1, 1)
}

func TestAppendPipelineTooManyRecordsRefused(t *testing.T) {
	h := start(t, smallConfig(), bigMessages)
	log, _, _ := dial(t, h.GRPCAddr)
	call, err := log.AppendPipeline(ctxT(t))
	require.NoError(t, err)
	require.NoError(t, call.Send(&aof2v1.AppendPipelineRequest{Seq: 1,
		Append: &aof2v1.AppendRequest{StreamId: 1, Records: oneByteRecords(tooManyRecords)}}))
	require.NoError(t, call.Send(&aof2v1.AppendPipelineRequest{Seq: 2,
		Append: &aof2v1.AppendRequest{StreamId: 1, Records: recs([]byte("a"))}}))
	acks := recvAcks(t, call, 2)
	require.NoError(t, call.CloseSend())

	st := requireStatus(t, ackStatus(acks[0].GetError()), codes.InvalidArgument, aof2v1.ErrorReason_BAD_REQUEST)
	require.Contains(t, st.Message(), "more than 419328 records in one request")
	require.NoError(t, ackStatus(acks[1].GetError()), "the call goes on")
	require.Len(t, acks[1].GetResult().GetIds(), 1)
	requireRecordCount(t, log, 1, 1)
}

// AppendStream has no cap on a message's records: its messages are
// decoded whole.
func TestAppendStreamMessageOverAppendCap(t *testing.T) {
	h := start(t, smallConfig(), bigMessages)
	log, _, _ := dial(t, h.GRPCAddr)
	call, err := log.AppendStream(ctxT(t))
	require.NoError(t, err)
	const n = 419_328 + 2
	require.NoError(t, call.Send(&aof2v1.AppendRequest{StreamId: 1, Records: oneByteRecords(n)}))
	resp, err := call.CloseAndRecv()
	require.NoError(t, err)
	require.EqualValues(t, n, resp.GetCount())
}

func TestHTTPAppendTooManyRecordsRefused(t *testing.T) {
	h := start(t, smallConfig(), bigMessages)
	url := h.HTTPURL + "/v1/streams/1/records"
	var body bytes.Buffer
	body.WriteString(`{"records":[`)
	body.WriteString(strings.Repeat(`{"payload":"AQ=="},`, 419_328))
	body.WriteString(`{"payload":"AQ=="}]}`)

	r := do(t, http.MethodPost, url, "application/json", body.Bytes())
	require.Equal(t, http.StatusBadRequest, r.code, "%s", r.body)
	var e errBody
	r.json(t, &e)
	require.Equal(t, "bad_request", e.Code)
	require.Contains(t, e.Error, "more than 419328 records in one request")

	r = do(t, http.MethodPost, url, "application/json", []byte(`{"records":[{"text":"a"}]}`))
	require.Equal(t, http.StatusOK, r.code, "%s", r.body)
	log, _, _ := dial(t, h.GRPCAddr)
	requireRecordCount(t, log, 1, 1)
}
