package server_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	aof2v1 "github.com/aof2/aof2/api/proto/aof2/v1"
	"github.com/aof2/aof2/core"
	"github.com/aof2/aof2/host/server"
	"github.com/aof2/aof2/host/server/servertest"
	"github.com/aof2/aof2/internal/testwait"
)

// unixHost is a server listening for gRPC and HTTP on Unix sockets.
type unixHost struct {
	srv       *server.Server
	node      *servertest.Node
	grpcSock  string
	httpSock  string
	serveDone chan struct{} // closed once both serve loops returned
}

func startUnix(t *testing.T, cfg core.Config, opts server.Options) *unixHost {
	t.Helper()
	st, err := core.Open(t.TempDir(), cfg)
	require.NoError(t, err)
	node := servertest.NewNode(st)
	srv, err := server.New(node, opts)
	require.NoError(t, err)
	// A short directory: socket paths have a length limit.
	dir, err := os.MkdirTemp("", "aof2sock")
	require.NoError(t, err)
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	h := &unixHost{srv: srv, node: node, grpcSock: filepath.Join(dir, "g"), httpSock: filepath.Join(dir, "h"), serveDone: make(chan struct{})}
	gl, err := net.Listen("unix", h.grpcSock)
	require.NoError(t, err)
	hl, err := net.Listen("unix", h.httpSock)
	require.NoError(t, err)
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		if err := srv.ServeGRPC(gl); err != nil {
			t.Errorf("ServeGRPC: %v", err)
		}
	}()
	go func() {
		defer wg.Done()
		if err := srv.ServeHTTP(hl); err != nil {
			t.Errorf("ServeHTTP: %v", err)
		}
	}()
	go func() { wg.Wait(); close(h.serveDone) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
		testwait.Recv(t, h.serveDone, 10*time.Second, "the serve loops to return")
		_ = st.Close()
	})
	return h
}

// httpTransport talks HTTP over the host's Unix socket.
func (h *unixHost) httpTransport() *http.Transport {
	return &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "unix", h.httpSock)
	}}
}

func (h *unixHost) dialGRPC(t *testing.T, o ...grpc.DialOption) *grpc.ClientConn {
	t.Helper()
	o = append([]grpc.DialOption{grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.MaxCallSendMsgSize(64<<20), grpc.MaxCallRecvMsgSize(64<<20))}, o...)
	conn, err := grpc.NewClient("unix://"+h.grpcSock, o...)
	require.NoError(t, err)
	t.Cleanup(func() { _ = conn.Close() })
	return conn
}

// fill appends n records of 256 KiB to stream 1, durable.
func fill(t *testing.T, log aof2v1.LogClient, n int) {
	t.Helper()
	big := bytes.Repeat([]byte("x"), 256<<10)
	for i := 0; i < n; i++ {
		_, err := log.Append(ctxT(t), &aof2v1.AppendRequest{StreamId: 1, Records: recs(big)})
		require.NoError(t, err)
	}
}

// TestShutdownWithStalledGRPCTailUnix: TestShutdownWithStalledGRPCTail
// over a Unix-socket listener. A tail whose client stopped reading has its
// connection closed a second after Shutdown starts, so it does not hold
// Shutdown; and only its connection: a request in flight on another
// Unix-socket connection (whose remote address is the same, empty one)
// still finishes. Before, only TCP connections were tracked: the stalled
// tail held Shutdown until its context expired, which then cut every
// other request off.
func TestShutdownWithStalledGRPCTailUnix(t *testing.T) {
	h := startUnix(t, core.Config{}, server.Options{})
	healthy := h.dialGRPC(t)
	fill(t, aof2v1.NewLogClient(healthy), 40) // 10 MiB, durable
	ctx := ctxT(t)

	// A request held in flight on its own connection.
	entered, release := holdHydrations(h.node)
	hyd, err := aof2v1.NewAdminClient(healthy).Hydrate(ctx, &aof2v1.HydrateRequest{StreamId: 1})
	require.NoError(t, err)
	testwait.Recv(t, entered, testwait.Default, "the hydration to reach the node")

	// A client with fixed, small flow-control windows that never reads;
	// cut is closed when the server closes its connection (the client's
	// transport keeps reading frames, so it sees the end at once).
	cut := make(chan struct{})
	var cutOnce sync.Once
	stalled := h.dialGRPC(t, grpc.WithInitialWindowSize(64<<10), grpc.WithInitialConnWindowSize(64<<10),
		grpc.WithContextDialer(func(ctx context.Context, addr string) (net.Conn, error) {
			var d net.Dialer
			c, err := d.DialContext(ctx, "unix", h.grpcSock)
			if err != nil {
				return nil, err
			}
			return &readEndConn{Conn: c, end: func() { cutOnce.Do(func() { close(cut) }) }}, nil
		}))
	tail, err := aof2v1.NewLogClient(stalled).Tail(ctx, &aof2v1.TailRequest{StreamId: 1})
	require.NoError(t, err)
	_, err = tail.Header() // the tail is open
	require.NoError(t, err)
	time.Sleep(500 * time.Millisecond) // the server fills the window and blocks in Send

	sctx, cancel := context.WithTimeout(context.Background(), 8*time.Second) // under the 30 s stall timeout
	defer cancel()
	shut := make(chan error, 1)
	go func() { shut <- h.srv.Shutdown(sctx) }()

	// The stalled tail's connection is cut while Shutdown waits...
	testwait.Recv(t, cut, 6*time.Second, "the server to close the stalled Unix-socket tail's connection")
	// ... and the other connection's request still finishes normally.
	close(release)
	for {
		_, err := hyd.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		require.NoError(t, err, "the request on the healthy connection was cut off")
	}
	err = testwait.Recv(t, shut, 10*time.Second, "Shutdown to return")
	require.NoError(t, err, "Shutdown with a stalled Unix-socket tail open")
	testwait.Recv(t, h.serveDone, 10*time.Second, "the serve loops to return after Shutdown")
}

// TestShutdownWithStalledHTTPTailUnix: TestShutdownWithStalledHTTPTail
// over a Unix-socket listener.
func TestShutdownWithStalledHTTPTailUnix(t *testing.T) {
	h := startUnix(t, core.Config{}, server.Options{})
	fill(t, aof2v1.NewLogClient(h.dialGRPC(t)), 80) // 20 MiB, ~27 MiB of base64 JSON

	ctx := ctxT(t)
	req, err := http.NewRequestWithContext(ctx, "GET", "http://aof2/v1/streams/1/tail", nil)
	require.NoError(t, err)
	tr := h.httpTransport()
	defer tr.CloseIdleConnections()
	resp, err := tr.RoundTrip(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	_, err = io.ReadFull(resp.Body, make([]byte, 100))
	require.NoError(t, err)
	time.Sleep(500 * time.Millisecond) // socket buffers fill; the handler blocks in Write

	requireShutdownUnderStallTimeout(t, h.srv, "one stalled Unix-socket HTTP tail")
	testwait.Recv(t, h.serveDone, 10*time.Second, "the serve loops to return after Shutdown")
}

// readEndConn calls end once a Read fails: the server closed the
// connection (the client never closes it while its tail is open).
type readEndConn struct {
	net.Conn
	end func()
}

func (c *readEndConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if err != nil {
		c.end()
	}
	return n, err
}
