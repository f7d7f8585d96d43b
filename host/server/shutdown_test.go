package server_test

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	aof2v1 "github.com/aof2/aof2/api/proto/aof2/v1"
	"github.com/aof2/aof2/core"
	"github.com/aof2/aof2/host/server"
	"github.com/aof2/aof2/host/server/servertest"
	"github.com/aof2/aof2/internal/testwait"
)

// startHTTPAppend sends an append whose body the handler is waiting for:
// with "Expect: 100-continue" the server answers 100 only once the
// handler reads the body, so the request is provably in flight.
func startHTTPAppend(t *testing.T, hostport string, body string) (net.Conn, *bufio.Reader) {
	t.Helper()
	conn, err := net.Dial("tcp", hostport)
	require.NoError(t, err)
	t.Cleanup(func() { _ = conn.Close() })
	_, err = io.WriteString(conn, "POST /v1/streams/1/records HTTP/1.1\r\nHost: test\r\nExpect: 100-continue\r\n"+
		"Content-Type: application/octet-stream\r\nContent-Length: "+strconv.Itoa(len(body))+"\r\n\r\n")
	require.NoError(t, err)
	br := bufio.NewReader(conn)
	line, err := br.ReadString('\n')
	require.NoError(t, err)
	require.True(t, strings.HasPrefix(line, "HTTP/1.1 100"), line)
	_, err = br.ReadString('\n') // the blank line after the 100 status
	require.NoError(t, err)
	return conn, br
}

func TestShutdownDrainsInFlightAndEndsTails(t *testing.T) {
	h := start(t, smallConfig(), server.Options{})
	log, admin, _ := dial(t, h.GRPCAddr)
	ctx := ctxT(t)
	_, err := log.Append(ctx, &aof2v1.AppendRequest{StreamId: 1, Records: recs([]byte("first"))})
	require.NoError(t, err)

	tail, err := log.Tail(ctx, &aof2v1.TailRequest{StreamId: 1})
	require.NoError(t, err)
	msg, err := tail.Recv()
	require.NoError(t, err)
	require.Equal(t, "first", string(msg.Records[0].Payload))

	entered, release := holdHydrations(h.Node)
	hyd, err := admin.Hydrate(ctx, &aof2v1.HydrateRequest{StreamId: 1})
	require.NoError(t, err)
	select {
	case <-entered:
	case <-ctx.Done():
		t.Fatal("the hydration never reached the node")
	}

	app, err := log.AppendStream(ctx)
	require.NoError(t, err)
	require.NoError(t, app.Send(&aof2v1.AppendRequest{StreamId: 1, Records: recs([]byte("streamed 1"))}))
	s, err := h.Store.Lookup(1)
	require.NoError(t, err)
	require.Eventually(t, func() bool { return s.Info().Records == 2 }, 10*time.Second, time.Millisecond, "the append stream is being served")

	conn, br := startHTTPAppend(t, strings.TrimPrefix(h.HTTPURL, "http://"), "over http")

	done := make(chan struct{})
	go func() {
		defer close(done)
		h.Shutdown(t)
	}()

	// The tail ends at once (after what it had to send), telling the
	// client why.
	var tailErr error
	for tailErr == nil {
		_, tailErr = tail.Recv()
	}
	require.Equal(t, codes.Unavailable, status.Code(tailErr), "%v", tailErr)
	require.Contains(t, status.Convert(tailErr).Message(), "shutting down")

	select {
	case <-done:
		t.Fatal("Shutdown returned with requests in flight")
	case <-time.After(200 * time.Millisecond):
	}
	_, err = http.Get(h.HTTPURL + "/healthz")
	require.Error(t, err, "no new connections once shutting down")

	// Every in-flight request finishes normally.
	close(release)
	for {
		_, err := hyd.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		require.NoError(t, err)
	}
	require.NoError(t, app.Send(&aof2v1.AppendRequest{StreamId: 1, Records: recs([]byte("streamed 2"))}))
	sum, err := app.CloseAndRecv()
	require.NoError(t, err)
	require.Equal(t, uint64(2), sum.Count)
	require.True(t, sum.Durable)

	_, err = io.WriteString(conn, "over http")
	require.NoError(t, err)
	resp, err := http.ReadResponse(br, nil)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	_ = resp.Body.Close()

	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Shutdown did not return after the requests finished")
	}
	in := s.Info()
	require.Equal(t, uint64(4), in.Records)
	require.Equal(t, uint64(4), in.DurableRecords)
}

func TestShutdownDeadlineCutsOff(t *testing.T) {
	h := start(t, smallConfig(), server.Options{})
	log, admin, _ := dial(t, h.GRPCAddr)
	ctx := ctxT(t)
	_, err := log.Append(ctx, &aof2v1.AppendRequest{StreamId: 1, Records: recs([]byte("x"))})
	require.NoError(t, err)
	entered := make(chan struct{}, 1)
	h.Node.BeforeHydrate = func(ctx context.Context, _ core.SegmentID) error {
		entered <- struct{}{}
		<-ctx.Done()
		return ctx.Err()
	}
	hyd, err := admin.Hydrate(ctx, &aof2v1.HydrateRequest{StreamId: 1})
	require.NoError(t, err)
	testwait.Recv(t, entered, testwait.Default, "the hydration to reach the node")

	sctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	require.ErrorIs(t, h.Server.Shutdown(sctx), context.DeadlineExceeded)
	_, err = hyd.Recv()
	require.Error(t, err, "the held call was cut off")
}

// holdHydrations makes every hydration of node wait until release is
// closed (or its context ends); entered receives (buffered: the hook may
// run before the test waits for it) when one is held.
func holdHydrations(node *servertest.Node) (entered <-chan struct{}, release chan struct{}) {
	in, release := make(chan struct{}, 1), make(chan struct{})
	node.BeforeHydrate = func(ctx context.Context, _ core.SegmentID) error {
		select {
		case in <- struct{}{}:
		default:
		}
		select {
		case <-release:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return in, release
}

// requireShutdownUnderStallTimeout shuts srv down within 8 s, well under
// the 30 s stall timeout: a stalled client must not hold it longer.
func requireShutdownUnderStallTimeout(t *testing.T, srv *server.Server, what string) {
	t.Helper()
	sctx, cancel := context.WithTimeout(context.Background(), 8*time.Second)
	defer cancel()
	began := time.Now()
	require.NoError(t, srv.Shutdown(sctx), "Shutdown with %s open took %s", what, time.Since(began))
}
