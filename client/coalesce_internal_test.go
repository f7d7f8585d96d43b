package client

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"

	aof2v1 "github.com/aof2/aof2/api/proto/aof2/v1"
	"github.com/aof2/aof2/core"
	"github.com/aof2/aof2/core/segment"
	"github.com/aof2/aof2/core/types"
	"github.com/aof2/aof2/host/server"
	"github.com/aof2/aof2/host/server/servertest"
)

// gate holds Append calls until opened and records the records each call
// carried and whether its context ended while held.
type gate struct {
	open    chan struct{} // closed: every call passes
	release chan struct{} // a token lets one held call pass

	mu        sync.Mutex
	calls     []int // records per Append call, in the order they were made; guarded by mu
	cancelled int   // calls whose context ended while held; guarded by mu
}

func newGate() *gate { return &gate{open: make(chan struct{}), release: make(chan struct{})} }

func (g *gate) interceptor(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
	if r, ok := req.(*aof2v1.AppendRequest); ok {
		g.mu.Lock()
		g.calls = append(g.calls, len(r.GetRecords()))
		g.mu.Unlock()
		select {
		case <-g.open:
		case <-g.release:
		case <-ctx.Done():
			g.mu.Lock()
			g.cancelled++
			g.mu.Unlock()
			return ctx.Err()
		}
	}
	return invoker(ctx, method, req, reply, cc, opts...)
}

func (g *gate) cancelledCalls() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.cancelled
}

func (g *gate) seen() []int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return append([]int(nil), g.calls...)
}

// held waits until n Append calls have reached the gate.
func (g *gate) held(t *testing.T, n int) {
	t.Helper()
	require.Eventually(t, func() bool { return len(g.seen()) >= n }, 10*time.Second, time.Millisecond, "Append calls held")
}

func dialGated(t *testing.T, g *gate, opts ...Option) (*Client, *servertest.Host) {
	t.Helper()
	h := servertest.Start(t, core.Config{SegmentSize: segment.MinCapacity}, server.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	// The gate holds unary calls: pipelining off unless opts turn it on.
	opts = append([]Option{WithAppendPipeline(false)}, opts...)
	opts = append(opts, WithDialOptions(grpc.WithUnaryInterceptor(g.interceptor)))
	c, err := Dial(ctx, h.GRPCAddr, opts...)
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close() })
	return c, h
}

// queued waits until n appends wait in the queue of stream's durable
// appends.
func queued(t *testing.T, c *Client, stream StreamID, n int) {
	t.Helper()
	require.Eventually(t, func() bool {
		c.co.mu.Lock()
		defer c.co.mu.Unlock()
		q := c.co.queues[queueKey{stream: stream}]
		return q != nil && len(q.waiting) == n
	}, 10*time.Second, time.Millisecond, "appends queued")
}

type appendResult struct {
	payloads [][]byte
	ids      []RecordID
	err      error
}

// appendAsync appends payloads in a goroutine of its own.
func appendAsync(ctx context.Context, c *Client, stream StreamID, payloads ...[]byte) <-chan appendResult {
	ch := make(chan appendResult, 1)
	go func() {
		ids, err := c.Append(ctx, stream, payloads...)
		ch <- appendResult{payloads: payloads, ids: ids, err: err}
	}()
	return ch
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// fillSenders starts maxSenders appends and waits until each holds a
// sender at the gate, so the next appends queue.
func fillSenders(t *testing.T, ctx context.Context, c *Client, g *gate) []<-chan appendResult {
	t.Helper()
	return appendOneByOne(t, ctx, c, maxSenders, func(n int) { g.held(t, n) })
}

// appendOneByOne starts n appends of one record to stream 1, calling
// reached(i) after the i-th to wait until it got where it should.
func appendOneByOne(t *testing.T, ctx context.Context, c *Client, n int, reached func(int)) []<-chan appendResult {
	t.Helper()
	var out []<-chan appendResult
	for i := range n {
		out = append(out, appendAsync(ctx, c, 1, fmt.Appendf(nil, "first-%d", i)))
		reached(i + 1)
	}
	return out
}

// queueTenAndThree queues, on stream 1 whose senders are all busy, ten
// appends of one record and one of three (13 records).
func queueTenAndThree(t *testing.T, ctx context.Context, c *Client) []<-chan appendResult {
	t.Helper()
	var out []<-chan appendResult
	for i := range 10 {
		out = append(out, appendAsync(ctx, c, 1, fmt.Appendf(nil, "one-%d", i)))
		queued(t, c, 1, i+1)
	}
	out = append(out, appendAsync(ctx, c, 1, []byte("three-a"), []byte("three-b"), []byte("three-c")))
	queued(t, c, 1, 11)
	return out
}

func TestCoalescedAppendsShareOneCall(t *testing.T) {
	g := newGate()
	c, _ := dialGated(t, g)
	ctx := testCtx(t)
	results := fillSenders(t, ctx, c, g)
	results = append(results, queueTenAndThree(t, ctx, c)...)
	close(g.open)

	checkAnswers(t, ctx, c, results)
	require.Equal(t, []int{1, 1, 13}, g.seen(), "the ten queued appends and the batch of three went as one call")
	info, err := c.Info(ctx, 1)
	require.NoError(t, err)
	require.Equal(t, uint64(15), info.DurableRecords)
}

func readAt(t *testing.T, ctx context.Context, c *Client, id RecordID) Record {
	t.Helper()
	res, err := c.Read(ctx, 1, AtID(id), 1)
	require.NoError(t, err)
	require.Len(t, res.Records, 1)
	return res.Records[0]
}

// queueBadAmongGood queues, on stream 1 whose senders are all busy, three
// good appends (four records) around one with an empty record.
func queueBadAmongGood(t *testing.T, ctx context.Context, c *Client) (good []<-chan appendResult, bad <-chan appendResult) {
	t.Helper()
	good = append(good, appendAsync(ctx, c, 1, []byte("good-1")), appendAsync(ctx, c, 1, []byte("good-2"), []byte("good-3")))
	queued(t, c, 1, 2)
	bad = appendAsync(ctx, c, 1, []byte("bad-neighbour"), nil)
	queued(t, c, 1, 3)
	good = append(good, appendAsync(ctx, c, 1, []byte("good-4")))
	queued(t, c, 1, 4)
	return good, bad
}

func TestCoalescedBadRecordFailsOnlyItsCaller(t *testing.T) {
	g := newGate()
	c, _ := dialGated(t, g)
	ctx := testCtx(t)
	results := fillSenders(t, ctx, c, g)
	good, bad := queueBadAmongGood(t, ctx, c)
	results = append(results, good...)
	close(g.open)

	r := <-bad
	require.ErrorIs(t, r.err, types.ErrEmptyRecord)
	for _, ch := range results {
		require.NoError(t, (<-ch).err)
	}
	calls := g.seen()
	require.Equal(t, []int{1, 1, 6}, calls[:3], "the four queued appends went as one call first")
	require.ElementsMatch(t, []int{1, 2, 2, 1}, calls[3:], "then each alone")
	info, err := c.Info(ctx, 1)
	require.NoError(t, err)
	require.Equal(t, uint64(6), info.DurableRecords, "nothing of the refused append, all of the others")
}

func TestQueuedAppendThatGivesUpLeavesNothing(t *testing.T) {
	g := newGate()
	c, _ := dialGated(t, g)
	ctx := testCtx(t)
	results := fillSenders(t, ctx, c, g)
	gone, cancel := context.WithCancel(ctx)
	abandoned := appendAsync(gone, c, 1, []byte("abandoned"))
	queued(t, c, 1, 1)
	cancel()
	r := <-abandoned
	require.ErrorIs(t, r.err, context.Canceled)
	queued(t, c, 1, 0)
	close(g.open)
	for _, ch := range results {
		require.NoError(t, (<-ch).err)
	}
	info, err := c.Info(ctx, 1)
	require.NoError(t, err)
	require.Equal(t, uint64(maxSenders), info.DurableRecords)
	require.Len(t, g.seen(), maxSenders, "no call for the abandoned append")
}

func TestCoalescedCallEndsWhenEveryCallerGaveUp(t *testing.T) {
	g := newGate()
	c, _ := dialGated(t, g)
	ctx := testCtx(t)
	results := fillSenders(t, ctx, c, g)
	var cancels []context.CancelFunc
	var late []<-chan appendResult
	for i := range 2 {
		cctx, cancel := context.WithCancel(ctx)
		cancels = append(cancels, cancel)
		late = append(late, appendAsync(cctx, c, 1, fmt.Appendf(nil, "late-%d", i)))
		queued(t, c, 1, i+1)
	}
	g.release <- struct{}{} // one sender finishes and takes both queued appends into one call
	g.held(t, maxSenders+1)
	require.Equal(t, 2, g.seen()[maxSenders])

	cancels[0]()
	require.ErrorIs(t, (<-late[0]).err, context.Canceled)
	require.Zero(t, g.cancelledCalls(), "the call goes on while one of its callers waits")
	cancels[1]()
	require.ErrorIs(t, (<-late[1]).err, context.Canceled)
	require.Eventually(t, func() bool { return g.cancelledCalls() == 1 }, 10*time.Second, time.Millisecond,
		"the call is cancelled once no caller waits for it")
	close(g.open)
	for _, ch := range results {
		require.NoError(t, (<-ch).err)
	}
}

func TestWithoutCoalescingEachAppendIsACall(t *testing.T) {
	g := newGate()
	c, _ := dialGated(t, g, WithAppendCoalescing(false))
	ctx := testCtx(t)
	var results []<-chan appendResult
	for i := range 6 {
		results = append(results, appendAsync(ctx, c, 1, fmt.Appendf(nil, "r-%d", i)))
		g.held(t, i+1)
	}
	close(g.open)
	for _, ch := range results {
		require.NoError(t, (<-ch).err)
	}
	require.Equal(t, []int{1, 1, 1, 1, 1, 1}, g.seen())
}

func TestSplitError(t *testing.T) {
	const last = RecordID(77)
	partial := &Error{Message: "sync failed", Appended: 4, LastID: last, target: types.ErrStreamFailed}
	tests := []struct {
		name       string
		err        error
		counts     []int
		appended   []int
		lastIDs    []RecordID
		alone      bool
		sameTarget error
	}{
		{name: "prefix across callers", err: partial, counts: []int{2, 3, 1}, appended: []int{2, 2, 0}, lastIDs: []RecordID{0, last, 0}, sameTarget: types.ErrStreamFailed},
		{name: "prefix ends on a caller's last record", err: partial, counts: []int{1, 3, 2}, appended: []int{1, 3, 0}, lastIDs: []RecordID{0, last, 0}, sameTarget: types.ErrStreamFailed},
		{name: "refused as a whole", err: &Error{Message: "empty", target: types.ErrEmptyRecord}, counts: []int{1, 2}, appended: []int{0, 0}, lastIDs: []RecordID{0, 0}, alone: true, sameTarget: types.ErrEmptyRecord},
		{name: "refused, one caller", err: &Error{Message: "empty", target: types.ErrEmptyRecord}, counts: []int{2}, appended: []int{0}, lastIDs: []RecordID{0}, sameTarget: types.ErrEmptyRecord},
		{name: "stream failed, nothing appended", err: &Error{Message: "failed", target: types.ErrStreamFailed}, counts: []int{1, 1}, appended: []int{0, 0}, lastIDs: []RecordID{0, 0}, sameTarget: types.ErrStreamFailed},
		{name: "not an *Error", err: context.Canceled, counts: []int{1, 1}, appended: []int{0, 0}, lastIDs: []RecordID{0, 0}, sameTarget: context.Canceled},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			outs := splitError(tt.err, tt.counts)
			require.Len(t, outs, len(tt.counts))
			for i, out := range outs {
				require.Equal(t, tt.alone, out.alone, "caller %d", i)
				require.ErrorIs(t, out.err, tt.sameTarget, "caller %d", i)
				e, ok := errors.AsType[*Error](out.err)
				if !ok {
					require.Zero(t, tt.appended[i])
					continue
				}
				require.Equal(t, tt.appended[i], e.Appended, "caller %d appended", i)
				require.Equal(t, tt.lastIDs[i], e.LastID, "caller %d last id", i)
			}
		})
	}
}

func TestSplitIDs(t *testing.T) {
	outs := splitIDs([]uint64{10, 11, 12, 13}, []int{1, 3})
	require.NoError(t, outs[0].err)
	require.Equal(t, []RecordID{10}, outs[0].ids)
	require.Equal(t, []RecordID{11, 12, 13}, outs[1].ids)
	for _, out := range splitIDs([]uint64{10}, []int{1, 1}) {
		require.Error(t, out.err, "a count the host got wrong fails every caller")
	}
}
