package server_test

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	aof2v1 "github.com/aof2/aof2/api/proto/aof2/v1"
	"github.com/aof2/aof2/api/wire"
	"github.com/aof2/aof2/core"
	"github.com/aof2/aof2/host/server"
	"github.com/aof2/aof2/host/server/servertest"
)

// startCold serves a store with a stand-in cold tier whose stream 1 holds
// three sealed segments of four records ("r0".."r11"), segment 2 evicted,
// and hydrations held until the test releases them.
func startCold(t *testing.T) (*servertest.Host, *servertest.Cold) {
	t.Helper()
	cold := servertest.NewCold()
	cfg := smallConfig()
	cfg.Tiering = cold
	h := start(t, cfg, server.Options{})
	s, err := h.Store.Stream(1)
	require.NoError(t, err)
	ctx := ctxT(t)
	for i := range 12 {
		_, err := s.AppendDurable(ctx, fmt.Appendf(nil, "r%d", i), core.AppendOptions{})
		require.NoError(t, err)
		if i%4 == 3 {
			require.NoError(t, s.Seal(ctx))
		}
	}
	require.NoError(t, cold.Evict(s, 2))
	cold.Hold()
	return h, cold
}

// TestGRPCReadNoWaitHydration: with no_wait_hydration a read stops before
// a segment in a colder tier (returning what precedes it, or WOULD_BLOCK
// of kind hydration with a RetryInfo when nothing does) instead of waiting
// for it, while the hydration goes on in the background: once it is done
// a retry reads the segment. A read that waits (the default) blocks until
// the hydration or its deadline.
func TestGRPCReadNoWaitHydration(t *testing.T) {
	h, cold := startCold(t)
	log, _, _ := dial(t, h.GRPCAddr)
	ctx := ctxT(t)

	resp, err := log.Read(ctx, &aof2v1.ReadRequest{StreamId: 1, NoWaitHydration: true})
	require.NoError(t, err)
	require.Len(t, resp.Records, 4, "segment 1, up to the cold segment")
	require.Equal(t, "r3", string(resp.Records[3].Payload))
	require.False(t, resp.End)
	next := resp.Next

	_, err = log.Read(ctx, &aof2v1.ReadRequest{StreamId: 1, Start: next, NoWaitHydration: true})
	st := requireStatus(t, err, codes.Unavailable, aof2v1.ErrorReason_WOULD_BLOCK)
	var retry *errdetails.RetryInfo
	for _, d := range st.Details() {
		switch d := d.(type) {
		case *errdetails.ErrorInfo:
			require.Equal(t, "hydration", d.Metadata[wire.MetaKind])
		case *errdetails.RetryInfo:
			retry = d
		}
	}
	require.NotNil(t, retry)
	require.Equal(t, 250*time.Millisecond, retry.RetryDelay.AsDuration())
	require.Eventually(t, func() bool { return cold.Hydrations() == 1 }, 10*time.Second, time.Millisecond,
		"the hydration started in the background")

	wctx, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
	defer cancel()
	_, err = log.Read(wctx, &aof2v1.ReadRequest{StreamId: 1, Start: next})
	require.Equal(t, codes.DeadlineExceeded, status.Code(err), "a read that waits waits for the held hydration")

	cold.Release()
	resp = retryRead(t, func() (*aof2v1.ReadResponse, error) {
		return log.Read(ctx, &aof2v1.ReadRequest{StreamId: 1, Start: next, NoWaitHydration: true})
	})
	require.Len(t, resp.Records, 8)
	require.Equal(t, "r4", string(resp.Records[0].Payload))
	require.True(t, resp.End)
	require.Equal(t, 1, cold.Hydrations(), "one hydration served every retry")
}

// retryRead retries a no-wait read while it answers WOULD_BLOCK, after the
// delay it asks for, for at most ten seconds.
func retryRead(t *testing.T, read func() (*aof2v1.ReadResponse, error)) *aof2v1.ReadResponse {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, err := read()
		if err == nil {
			return resp
		}
		st := requireStatus(t, err, codes.Unavailable, aof2v1.ErrorReason_WOULD_BLOCK)
		require.True(t, time.Now().Before(deadline), "still WOULD_BLOCK after 10s: %v", err)
		delay := 10 * time.Millisecond
		for _, d := range st.Details() {
			if r, ok := d.(*errdetails.RetryInfo); ok {
				delay = r.RetryDelay.AsDuration()
			}
		}
		time.Sleep(delay)
	}
}

// TestHTTPReadNoWaitHydration: ?no_wait_hydration=true answers 503 with
// Retry-After and the would_block/hydration body instead of waiting, and
// a retry after the hydration finished reads the segment.
func TestHTTPReadNoWaitHydration(t *testing.T) {
	h, cold := startCold(t)
	url := h.HTTPURL + "/v1/streams/1/records?text=1&no_wait_hydration=true"

	r := do(t, "GET", url, "", nil)
	require.Equal(t, http.StatusOK, r.code, "%s", r.body)
	var rr readResp
	r.json(t, &rr)
	require.Len(t, rr.Records, 4, "segment 1, up to the cold segment")
	require.False(t, rr.End)
	require.NotNil(t, rr.Next.Ordinal, "the next record was not seen: continue by ordinal")
	from := "&ordinal=" + strconv.FormatUint(*rr.Next.Ordinal, 10)

	r = do(t, "GET", url+from, "", nil)
	require.Equal(t, http.StatusServiceUnavailable, r.code, "%s", r.body)
	require.Equal(t, "1", r.header.Get("Retry-After"))
	var e errBody
	r.json(t, &e)
	require.Equal(t, "would_block", e.Code)
	require.Equal(t, "hydration", e.Kind)
	require.Equal(t, int64(250), e.RetryAfterMS)
	require.Eventually(t, func() bool { return cold.Hydrations() == 1 }, 10*time.Second, time.Millisecond,
		"the hydration started in the background")

	cold.Release()
	deadline := time.Now().Add(10 * time.Second)
	for r = do(t, "GET", url+from, "", nil); r.code == http.StatusServiceUnavailable; r = do(t, "GET", url+from, "", nil) {
		require.True(t, time.Now().Before(deadline), "still 503 after 10s: %s", r.body)
		e = errBody{}
		r.json(t, &e)
		time.Sleep(time.Duration(e.RetryAfterMS) * time.Millisecond)
	}
	require.Equal(t, http.StatusOK, r.code, "%s", r.body)
	rr = readResp{}
	r.json(t, &rr)
	require.Len(t, rr.Records, 8)
	require.Equal(t, "r4", *rr.Records[0].Text)
	require.Equal(t, 1, cold.Hydrations())
}
