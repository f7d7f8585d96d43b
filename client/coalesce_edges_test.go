package client

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"

	aof2v1 "github.com/aof2/aof2/api/proto/aof2/v1"
	"github.com/aof2/aof2/core/types"
)

// TestGivenUpCallerBufferNotRead: a caller that gives up after a sender
// took its append gets its buffer back only once the request is encoded
// (a coalesced unary call sends a copy): bytes it writes there after Append
// returned are not appended as its record.
func TestGivenUpCallerBufferNotRead(t *testing.T) {
	g := newGate()
	c, _ := dialGated(t, g)
	ctx := testCtx(t)
	results := fillSenders(t, ctx, c, g)

	cancel, aDone := appendThenReuse(ctx, c)
	queued(t, c, 1, 1)
	results = append(results, appendAsync(ctx, c, 1, []byte("original-B")))
	queued(t, c, 1, 2)
	g.release <- struct{}{} // a sender takes A and B into one call, held
	g.held(t, maxSenders+1)
	cancel()
	require.ErrorIs(t, <-aDone, context.Canceled)
	close(g.open)
	for _, ch := range results {
		require.NoError(t, (<-ch).err)
	}
	requireBufferNotReused(t, ctx, c)
}

// appendThenReuse appends "original-A" to stream 1 in a goroutine that,
// once Append returned, writes "REUSED-BUF" into the buffer it passed (the
// buffer is the caller's again) and sends Append's error on done; cancel
// makes the caller give up.
func appendThenReuse(ctx context.Context, c *Client) (cancel context.CancelFunc, done <-chan error) {
	gone, cancel := context.WithCancel(ctx)
	payload := []byte("original-A")
	aDone := make(chan error, 1)
	go func() {
		_, err := c.Append(gone, 1, payload)
		copy(payload, "REUSED-BUF")
		aDone <- err
	}()
	return cancel, aDone
}

// requireBufferNotReused fails if stream 1 holds the bytes
// appendThenReuse wrote after Append returned.
func requireBufferNotReused(t *testing.T, ctx context.Context, c *Client) {
	t.Helper()
	res, err := c.Read(ctx, 1, AtStart(), 100)
	require.NoError(t, err)
	for _, r := range res.Records {
		t.Logf("record %v: %q", r.ID, r.Payload)
		require.NotEqual(t, "REUSED-BUF", string(r.Payload), "bytes written after Append returned were appended")
	}
}

// TestCoalescedBatchWithinMessageLimit: with WithMaxMessageSize, appends
// that each fit a message are not coalesced into a request that does not,
// on unary calls and on the pipeline (where a failed Send would end the
// whole call under every request on it).
func TestCoalescedBatchWithinMessageLimit(t *testing.T) {
	const limit, each, n = 1 << 20, 256 << 10, 4 // each append well within the limit; together just over it
	for _, pipelined := range []bool{false, true} {
		t.Run(map[bool]string{false: "unary", true: "pipeline"}[pipelined], func(t *testing.T) {
			h := startHost(t)
			ctx := testCtx(t)
			var c *Client
			var release func()
			var results []<-chan appendResult
			if pipelined {
				g := newAnswerGate()
				dctx, cancel := context.WithTimeout(ctx, 10*time.Second)
				defer cancel()
				var err error
				c, err = Dial(dctx, h.GRPCAddr, WithMaxMessageSize(limit), WithDialOptions(grpc.WithStreamInterceptor(g.stream)))
				require.NoError(t, err)
				t.Cleanup(func() { _ = c.Close() })
				results = fillPipeline(t, ctx, c, g)
				release = func() { close(g.open) }
			} else {
				g := newGate()
				c, _ = dialGated(t, g, WithMaxMessageSize(limit))
				results = fillSenders(t, ctx, c, g)
				release = func() { close(g.open) }
			}
			var big []<-chan appendResult
			for i := range n {
				big = append(big, appendAsync(ctx, c, 1, bytes.Repeat([]byte{byte('a' + i)}, each)))
				queued(t, c, 1, i+1)
			}
			release()
			for _, ch := range results {
				require.NoError(t, (<-ch).err)
			}
			for i, ch := range big {
				r := <-ch
				require.NoError(t, r.err, "append %d of %d bytes (the limit is %d)", i, each, limit)
			}
		})
	}
}

// holdFirstSend holds the first request sent on an AppendPipeline call
// until hold is closed.
type holdFirstSend struct {
	grpc.ClientStream
	hold  chan struct{}
	first *sync.Once
}

func (h *holdFirstSend) SendMsg(m any) error {
	h.first.Do(func() { <-h.hold })
	return h.ClientStream.SendMsg(m)
}

// TestGivenUpCallerBufferNotReadPipelined: the same on the pipeline (the
// default): a caller whose batch a sender took gives up while the sender
// waits to send it; it gets its buffer back once Send has encoded it.
func TestGivenUpCallerBufferNotReadPipelined(t *testing.T) {
	h := startHost(t)
	ctx := testCtx(t)
	hold := make(chan struct{})
	once := &sync.Once{}
	ic := func(ctx context.Context, desc *grpc.StreamDesc, cc *grpc.ClientConn, method string, streamer grpc.Streamer, opts ...grpc.CallOption) (grpc.ClientStream, error) {
		cs, err := streamer(ctx, desc, cc, method, opts...)
		if err != nil || method != aof2v1.Log_AppendPipeline_FullMethodName {
			return cs, err
		}
		return &holdFirstSend{ClientStream: cs, hold: hold, first: once}, nil
	}
	dctx, cancelDial := context.WithTimeout(ctx, 10*time.Second)
	defer cancelDial()
	c, err := Dial(dctx, h.GRPCAddr, WithDialOptions(grpc.WithStreamInterceptor(ic)))
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close() })

	first := appendAsync(ctx, c, 1, []byte("first"))
	queued(t, c, 1, 0) // taken by sender 1, whose Send is held
	cancel, aDone := appendThenReuse(ctx, c)
	require.Eventually(t, func() bool {
		c.co.mu.Lock()
		defer c.co.mu.Unlock()
		q := c.co.queues[queueKey{stream: 1}]
		return q != nil && q.senders == 2 && len(q.waiting) == 0
	}, 10*time.Second, time.Millisecond, "A taken by sender 2")
	cancel()
	// On the current code A returns at once, before its request is sent.
	// (A fix may make it wait until its request no longer reads its
	// buffer: then it returns after hold is released.)
	var aErr error
	select {
	case aErr = <-aDone:
	case <-time.After(500 * time.Millisecond):
		close(hold)
		hold = nil
		aErr = <-aDone
	}
	require.ErrorIs(t, aErr, context.Canceled)
	if hold != nil {
		close(hold)
	}
	require.NoError(t, (<-first).err)
	require.Eventually(t, func() bool {
		info, err := c.Info(ctx, 1)
		return err == nil && info.DurableRecords == 2
	}, 10*time.Second, 5*time.Millisecond)
	requireBufferNotReused(t, ctx, c)
}

// TestEmptyAppendRefusedWhileOthersQueue: an Append with no payloads is
// refused (BAD_REQUEST) whether or not other appends are queued: it is
// never coalesced, where it would vanish among the others' records.
func TestEmptyAppendRefusedWhileOthersQueue(t *testing.T) {
	g := newGate()
	c, _ := dialGated(t, g)
	ctx := testCtx(t)
	results := fillSenders(t, ctx, c, g)
	empty := appendAsync(ctx, c, 1)
	results = append(results, appendAsync(ctx, c, 1, []byte("x")))
	queued(t, c, 1, 1)
	close(g.open)
	for _, ch := range results {
		require.NoError(t, (<-ch).err)
	}
	_, aloneErr := c.Append(ctx, 1)
	require.ErrorIs(t, aloneErr, ErrBadRequest, "alone")
	r := <-empty
	require.ErrorIs(t, r.err, ErrBadRequest, "while others are queued: got ids %v", r.ids)
}

func coalescerGoroutines() int {
	buf := make([]byte, 1<<22)
	n := runtime.Stack(buf, true)
	return strings.Count(string(buf[:n]), "client.(*coalescer)")
}

// TestCloseLeavesNoCoalescerGoroutines: Close with appends in flight:
// every Append returns and the coalescer's goroutines end.
func TestCloseLeavesNoCoalescerGoroutines(t *testing.T) {
	h := startHost(t)
	ctx := testCtx(t)
	for round := range 20 {
		dctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		c, err := Dial(dctx, h.GRPCAddr)
		cancel()
		require.NoError(t, err)
		var wg sync.WaitGroup
		stop := make(chan struct{})
		for i := range 32 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					select {
					case <-stop:
						return
					default:
					}
					if _, err := c.Append(ctx, StreamID(1+i%3), []byte("x")); err != nil {
						return
					}
				}
			}()
		}
		time.Sleep(time.Duration(round%5) * time.Millisecond)
		require.NoError(t, c.Close())
		close(stop)
		done := make(chan struct{})
		go func() { wg.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			buf := make([]byte, 1<<22)
			t.Fatalf("appends blocked after Close:\n%s", buf[:runtime.Stack(buf, true)])
		}
		require.Eventually(t, func() bool { return coalescerGoroutines() == 0 }, 10*time.Second, time.Millisecond, "round %d", round)
	}
}

// TestCoalescedIDsUnderStress: many callers, some giving up, several
// streams, both durabilities: every success's ids hold its payloads, each
// id given once.
func TestCoalescedIDsUnderStress(t *testing.T) {
	h := startHost(t)
	ctx := testCtx(t)
	dctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	c, err := Dial(dctx, h.GRPCAddr)
	cancel()
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close() })
	type got struct {
		stream   StreamID
		payloads [][]byte
		ids      []RecordID
	}
	var mu sync.Mutex
	var all []got
	var wg sync.WaitGroup
	for w := range 48 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 150 {
				stream := StreamID(1 + (w+i)%3)
				n := 1 + (w*7+i)%4
				var ps [][]byte
				for j := range n {
					ps = append(ps, fmt.Appendf(nil, "w%d-i%d-j%d", w, i, j))
				}
				cctx, cancel := context.WithCancel(ctx)
				if (w+i)%11 == 0 {
					go cancel()
				}
				var ids []RecordID
				var err error
				if i%2 == 0 {
					ids, err = c.Append(cctx, stream, ps...)
				} else {
					ids, err = c.AppendNoWait(cctx, stream, ps...)
				}
				cancel()
				if err != nil {
					continue
				}
				mu.Lock()
				all = append(all, got{stream, ps, ids})
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	seen := map[StreamID]map[RecordID]bool{}
	recs := map[StreamID]map[RecordID][]byte{}
	for s := StreamID(1); s <= 3; s++ {
		seen[s] = map[RecordID]bool{}
		recs[s] = map[RecordID][]byte{}
		pos := AtStart()
		for {
			res, err := c.Read(ctx, s, pos, 10000)
			require.NoError(t, err)
			if len(res.Records) == 0 {
				break
			}
			for _, r := range res.Records {
				recs[s][r.ID] = r.Payload
			}
			pos = AtOrdinal(res.Records[len(res.Records)-1].Ordinal + 1)
		}
	}
	for _, g := range all {
		require.Len(t, g.ids, len(g.payloads))
		for i, id := range g.ids {
			require.False(t, seen[g.stream][id], "id %v twice", id)
			seen[g.stream][id] = true
			require.Equal(t, string(g.payloads[i]), string(recs[g.stream][id]))
		}
	}
}

// TestPipelineCutsUnderStress: calls cut under load: no caller hangs,
// every success is right.
func TestPipelineCutsUnderStress(t *testing.T) {
	h := startHost(t)
	ctx := testCtx(t)
	g := newAnswerGate()
	close(g.open)
	c := dialPipelined(t, h.GRPCAddr, g)
	stop := make(chan struct{})
	go func() {
		for {
			select {
			case <-stop:
				return
			case <-time.After(time.Duration(1+len(g.requests())%3) * time.Millisecond):
				g.cutAll()
			}
		}
	}()
	var wg sync.WaitGroup
	var mu sync.Mutex
	okIDs := map[RecordID]string{}
	dup := ""
	for w := range 32 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 100 {
				p := fmt.Sprintf("w%d-%d", w, i)
				ids, err := c.Append(ctx, 1, []byte(p))
				if err != nil {
					continue
				}
				mu.Lock()
				if q, ok := okIDs[ids[0]]; ok {
					dup = q + " and " + p
				}
				okIDs[ids[0]] = p
				mu.Unlock()
			}
		}()
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		buf := make([]byte, 1<<22)
		t.Fatalf("appends blocked:\n%s", buf[:runtime.Stack(buf, true)])
	}
	close(stop)
	require.Empty(t, dup)
	require.Eventually(t, func() bool {
		c.co.mu.Lock()
		defer c.co.mu.Unlock()
		return len(c.co.queues) == 0
	}, 10*time.Second, time.Millisecond, "queues forgotten (no slot leaked)")
	t.Logf("%d ok, %d calls", len(okIDs), g.opened())
	for id, p := range okIDs {
		require.Equal(t, p, string(readAt(t, ctx, c, id).Payload))
	}
}

// TestOversizeBatchLeavesOtherStreams: large appends to one stream under
// a message limit do not end the pipeline call under other streams'
// requests (before, those callers were told "record too large" for small
// records the host had appended).
func TestOversizeBatchLeavesOtherStreams(t *testing.T) {
	const limit, each = 1 << 20, 256 << 10
	h := startHost(t)
	ctx := testCtx(t)
	g := newAnswerGate()
	close(g.open)
	dctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	c, err := Dial(dctx, h.GRPCAddr, WithMaxMessageSize(limit), WithDialOptions(grpc.WithStreamInterceptor(g.stream)))
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close() })

	stop := make(chan struct{})
	var wg sync.WaitGroup
	// Stream 1: large appends, which coalesce into requests over the limit
	// whenever four of them wait together.
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				_, _ = c.Append(ctx, 1, bytes.Repeat([]byte{byte(i)}, each))
			}
		}()
	}
	// Stream 2: small appends.
	type failure struct {
		payload string
		err     error
	}
	var mu sync.Mutex
	var failed []failure
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				p := fmt.Sprintf("small-%d-%d", w, i)
				if _, err := c.Append(ctx, 2, []byte(p)); err != nil {
					mu.Lock()
					failed = append(failed, failure{p, err})
					mu.Unlock()
				}
			}
		}()
	}
	time.Sleep(2 * time.Second)
	close(stop)
	wg.Wait()
	stored := map[string]bool{}
	pos := AtStart()
	for {
		res, err := c.Read(ctx, 2, pos, 10000)
		require.NoError(t, err)
		if len(res.Records) == 0 {
			break
		}
		for _, r := range res.Records {
			stored[string(r.Payload)] = true
		}
		pos = AtOrdinal(res.Records[len(res.Records)-1].Ordinal + 1)
	}
	appendedAnyway, tooLarge := 0, 0
	for _, f := range failed {
		if stored[f.payload] {
			appendedAnyway++
		}
		if errors.Is(f.err, types.ErrRecordTooLarge) {
			tooLarge++
		}
	}
	t.Logf("%d failed with ErrRecordTooLarge", tooLarge)
	t.Logf("%d pipeline calls; %d small appends failed, %d of them appended anyway; first: %v", g.opened(), len(failed), appendedAnyway, func() error {
		if len(failed) == 0 {
			return nil
		}
		return failed[0].err
	}())
	require.Zero(t, len(failed), "small appends to another stream failed")
}
