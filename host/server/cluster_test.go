package server_test

import (
	"io"
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"

	aof2v1 "github.com/aof2/aof2/api/proto/aof2/v1"
	"github.com/aof2/aof2/host/server"
)

// TestClusteredNodeNotJoinedRefusesWrites: a cluster member whose store is
// open but which has not joined Raft (a restart's window, and the one a
// request that looked before the node was ready lands in) refuses every
// write, on every surface, instead of appending to its store without a
// Raft index. Such a record is on no other member, and its ext_id 0 hid
// from the state machine what it had applied: it then applied the log
// again after it (TestClusterFaults found both).
func TestClusteredNodeNotJoinedRefusesWrites(t *testing.T) {
	h := start(t, smallConfig(), server.Options{})
	h.Node.Joining.Store(true)
	logc, adminc, _ := dial(t, h.GRPCAddr)
	ctx := ctxT(t)
	notReady := func(err error) { requireStatus(t, err, codes.Unavailable, aof2v1.ErrorReason_NOT_READY) }

	_, err := logc.Append(ctx, &aof2v1.AppendRequest{StreamId: 1, Records: recs([]byte("unary"))})
	notReady(err)

	as, err := logc.AppendStream(ctx)
	require.NoError(t, err)
	require.NoError(t, as.Send(&aof2v1.AppendRequest{StreamId: 1, Records: recs([]byte("stream"))}))
	_, err = as.CloseAndRecv()
	notReady(err)

	call, err := logc.AppendPipeline(ctx)
	require.NoError(t, err)
	// The host refuses the call before reading it: Send may already see
	// the call ended (io.EOF); Recv has the status either way.
	if err := call.Send(&aof2v1.AppendPipelineRequest{Seq: 1, Append: &aof2v1.AppendRequest{StreamId: 1, Records: recs([]byte("pipelined"))}}); err != io.EOF {
		require.NoError(t, err)
	}
	_, err = call.Recv()
	requireStatus(t, err, codes.Unimplemented, aof2v1.ErrorReason_BAD_REQUEST) // refused on a clustered node, joined or not

	r := do(t, http.MethodPost, h.HTTPURL+"/v1/streams/1/records", "application/octet-stream", []byte("http"))
	require.Equal(t, http.StatusServiceUnavailable, r.code, "%s", r.body)

	_, err = h.Store.Stream(1) // a stream to seal, created outside the server
	require.NoError(t, err)
	_, err = logc.Seal(ctx, &aof2v1.SealRequest{StreamId: 1})
	notReady(err)
	r = do(t, http.MethodPost, h.HTTPURL+"/v1/streams/1/seal", "", nil)
	require.Equal(t, http.StatusServiceUnavailable, r.code, "%s", r.body)

	_, err = logc.Read(ctx, &aof2v1.ReadRequest{StreamId: 1, Consistency: "linearizable"})
	notReady(err)

	// Fillers would make the member's segments differ from its peers'.
	_, err = adminc.AcceptLoss(ctx, &aof2v1.AcceptLossRequest{StreamId: 1})
	requireStatus(t, err, codes.FailedPrecondition, aof2v1.ErrorReason_BAD_REQUEST)
	require.ErrorContains(t, err, "a cluster member does not accept a loss")

	s, err := h.Store.Lookup(1)
	require.NoError(t, err)
	require.Zero(t, s.Info().Records, "nothing reached the store")

	h.Node.Joining.Store(false) // a single node: the same calls append
	_, err = logc.Append(ctx, &aof2v1.AppendRequest{StreamId: 1, Records: recs([]byte("unary"))})
	require.NoError(t, err)
}
