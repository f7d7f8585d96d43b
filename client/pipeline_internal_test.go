package client

import (
	"context"
	"fmt"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	aof2v1 "github.com/aof2/aof2/api/proto/aof2/v1"
	"github.com/aof2/aof2/core"
	"github.com/aof2/aof2/core/segment"
	"github.com/aof2/aof2/core/types"
	"github.com/aof2/aof2/host/server"
	"github.com/aof2/aof2/host/server/servertest"
)

// answerGate holds the answers of AppendPipeline calls until opened,
// records the records each request carried, and can cut a call.
type answerGate struct {
	open chan struct{} // closed: answers pass

	mu    sync.Mutex
	sent  []int                // records per request, in the order sent; guarded by mu
	calls int                  // AppendPipeline calls opened; guarded by mu
	cut   []context.CancelFunc // ends each call opened so far; guarded by mu
}

func newAnswerGate() *answerGate { return &answerGate{open: make(chan struct{})} }

func (g *answerGate) stream(ctx context.Context, desc *grpc.StreamDesc, cc *grpc.ClientConn, method string, streamer grpc.Streamer, opts ...grpc.CallOption) (grpc.ClientStream, error) {
	if method != aof2v1.Log_AppendPipeline_FullMethodName {
		return streamer(ctx, desc, cc, method, opts...)
	}
	ctx, cancel := context.WithCancel(ctx)
	cs, err := streamer(ctx, desc, cc, method, opts...)
	if err != nil {
		cancel()
		return nil, err
	}
	g.mu.Lock()
	g.calls++
	g.cut = append(g.cut, cancel)
	g.mu.Unlock()
	return &gatedCall{ClientStream: cs, g: g}, nil
}

type gatedCall struct {
	grpc.ClientStream
	g *answerGate
}

func (c *gatedCall) SendMsg(m any) error {
	if r, ok := m.(*aof2v1.AppendPipelineRequest); ok {
		c.g.mu.Lock()
		c.g.sent = append(c.g.sent, len(r.GetAppend().GetRecords()))
		c.g.mu.Unlock()
	}
	return c.ClientStream.SendMsg(m)
}

// RecvMsg waits for the gate; a call cut meanwhile loses the answers the
// host had sent, as with a broken connection.
func (c *gatedCall) RecvMsg(m any) error {
	select {
	case <-c.g.open:
		return c.ClientStream.RecvMsg(m)
	case <-c.Context().Done():
		return status.FromContextError(c.Context().Err()).Err()
	}
}

func (g *answerGate) requests() []int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return append([]int(nil), g.sent...)
}

func (g *answerGate) opened() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.calls
}

// cutAll ends every call opened so far, as a broken connection would.
func (g *answerGate) cutAll() {
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, c := range g.cut {
		c()
	}
}

// sentRequests waits until n requests went out.
func (g *answerGate) sentRequests(t *testing.T, n int) {
	t.Helper()
	require.Eventually(t, func() bool { return len(g.requests()) >= n }, 10*time.Second, time.Millisecond, "pipeline requests sent")
}

func dialPipelined(t *testing.T, addr string, g *answerGate) *Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := Dial(ctx, addr, WithDialOptions(grpc.WithStreamInterceptor(g.stream)))
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func startHost(t *testing.T) *servertest.Host {
	return servertest.Start(t, core.Config{SegmentSize: segment.MinCapacity}, server.Options{})
}

// startPipelined starts a host and a client whose answers g holds.
func startPipelined(t *testing.T) (*answerGate, *Client, context.Context) {
	g := newAnswerGate()
	return g, dialPipelined(t, startHost(t).GRPCAddr, g), testCtx(t)
}

// fillPipeline sends pipelineDepth appends, one request each, whose
// answers the gate holds: the queue of stream 1 has no room left.
func fillPipeline(t *testing.T, ctx context.Context, c *Client, g *answerGate) []<-chan appendResult {
	t.Helper()
	return appendOneByOne(t, ctx, c, pipelineDepth, func(n int) { g.sentRequests(t, n) })
}

// checkAnswers requires every result to have succeeded with ids that hold
// its payloads, contiguous, each id given once.
func checkAnswers(t *testing.T, ctx context.Context, c *Client, results []<-chan appendResult) {
	t.Helper()
	seen := map[RecordID]bool{}
	for _, ch := range results {
		r := <-ch
		require.NoError(t, r.err)
		require.Len(t, r.ids, len(r.payloads))
		for i, id := range r.ids {
			require.False(t, seen[id], "id %v given twice", id)
			seen[id] = true
			rec := readAt(t, ctx, c, id)
			require.Equal(t, r.payloads[i], rec.Payload, "the record at the id the caller got")
			if i > 0 {
				require.Equal(t, readAt(t, ctx, c, r.ids[i-1]).Ordinal+1, rec.Ordinal, "a caller's records are contiguous")
			}
		}
	}
}

func TestPipelinedAppendsWaitForRoomAndShareARequest(t *testing.T) {
	g, c, ctx := startPipelined(t)
	results := fillPipeline(t, ctx, c, g)
	results = append(results, queueTenAndThree(t, ctx, c)...)
	require.Len(t, g.requests(), pipelineDepth, "no request beyond the queue's room while answers are held")
	close(g.open)

	checkAnswers(t, ctx, c, results)
	require.Equal(t, []int{1, 1, 1, 1, 13}, g.requests(), "the appends that waited for room went as one request")
	require.Equal(t, 1, g.opened(), "one call carried every request")
	info, err := c.Info(ctx, 1)
	require.NoError(t, err)
	require.Equal(t, uint64(pipelineDepth+13), info.DurableRecords)
	require.Eventually(t, func() bool {
		c.co.mu.Lock()
		defer c.co.mu.Unlock()
		return len(c.co.queues) == 0
	}, 10*time.Second, time.Millisecond, "an idle queue is forgotten")
}

func TestPipelinedBadRecordFailsOnlyItsCaller(t *testing.T) {
	g, c, ctx := startPipelined(t)
	results := fillPipeline(t, ctx, c, g)
	good, bad := queueBadAmongGood(t, ctx, c)
	results = append(results, good...)
	close(g.open)

	require.ErrorIs(t, (<-bad).err, types.ErrEmptyRecord)
	checkAnswers(t, ctx, c, results)
	require.Equal(t, []int{1, 1, 1, 1, 6}, g.requests()[:pipelineDepth+1], "the four queued appends went as one request, refused as a whole")
	info, err := c.Info(ctx, 1)
	require.NoError(t, err)
	require.Equal(t, uint64(pipelineDepth+4), info.DurableRecords, "nothing of the refused append, all of the others")
}

// A call that ends under the appends waiting on it fails them (their
// records may have been appended, as for a unary call whose connection
// broke); the next append opens a new call.
func TestPipelineCallEndedFailsWaitersAndReopens(t *testing.T) {
	g, c, ctx := startPipelined(t)
	waiting := fillPipeline(t, ctx, c, g)
	g.cutAll()
	for _, ch := range waiting {
		require.Error(t, (<-ch).err)
	}
	close(g.open)
	ids, err := c.Append(ctx, 1, []byte("after"))
	require.NoError(t, err)
	require.Equal(t, []byte("after"), readAt(t, ctx, c, ids[0]).Payload)
	require.Equal(t, 2, g.opened(), "a new call after the first ended")
}

// olderHost serves the Log API of a host that predates AppendPipeline:
// Append only, forwarded to a real host.
type olderHost struct {
	aof2v1.UnimplementedLogServer
	to aof2v1.LogClient
}

func (o olderHost) Append(ctx context.Context, req *aof2v1.AppendRequest) (*aof2v1.AppendResponse, error) {
	return o.to.Append(ctx, req)
}

// Against a host that refuses AppendPipeline the client goes back to
// unary calls: the appends sent on the refused call are sent again, and
// nothing is appended twice.
func TestPipelineRefusedFallsBackToAppend(t *testing.T) {
	h := startHost(t)
	conn, err := grpc.NewClient(h.GRPCAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(t, err)
	t.Cleanup(func() { _ = conn.Close() })
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	old := grpc.NewServer()
	aof2v1.RegisterLogServer(old, olderHost{to: aof2v1.NewLogClient(conn)})
	go func() { _ = old.Serve(l) }()
	t.Cleanup(old.Stop)

	g := newAnswerGate()
	close(g.open)
	c := dialPipelined(t, l.Addr().String(), g)
	ctx := testCtx(t)
	var results []<-chan appendResult
	for i := range 20 {
		results = append(results, appendAsync(ctx, c, 1, fmt.Appendf(nil, "r-%d", i)))
	}
	for _, ch := range results {
		r := <-ch
		require.NoError(t, r.err)
		require.Len(t, r.ids, 1)
	}
	c.co.pipeMu.Lock()
	on := c.co.pipeline
	c.co.pipeMu.Unlock()
	require.False(t, on, "pipelining off after the refusal")
	ids, err := c.Append(ctx, 1, []byte("later"))
	require.NoError(t, err)
	require.Len(t, ids, 1)
	require.LessOrEqual(t, g.opened(), 1, "no call opened after the refusal")

	direct := dialPipelined(t, h.GRPCAddr, newAnswerGate())
	info, err := direct.Info(ctx, 1)
	require.NoError(t, err)
	require.Equal(t, uint64(21), info.Records, "every append once")
}
