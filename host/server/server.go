package server

import (
	"context"
	"errors"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/contrib/instrumentation/google.golang.org/grpc/otelgrpc"
	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/encoding"
	"google.golang.org/grpc/encoding/proto"
	"google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/reflection"

	aof2v1 "github.com/aof2/aof2/api/proto/aof2/v1"
)

// Server serves the client API over gRPC and HTTP.
type Server struct {
	node Node
	opts Options
	auth tokenAuth

	grpc  *grpc.Server
	http  *http.Server
	admin *http.Server // pprof (ServeAdmin)

	// reads is the read budget every Read, HTTP read and Tail draws on.
	reads *readBudget

	// stopped is cancelled when Shutdown starts: long-lived streams (Tail,
	// health Watch) end, and readiness turns false.
	stopped context.Context
	stop    context.CancelFunc

	// conns are the gRPC listener's connections, and tails the Tail calls
	// under way: a tail whose client stopped reading is blocked in Send,
	// and a Read's answer the client does not take is queued in the
	// transport (trackedConn.unsent), where Shutdown cannot end them but
	// by closing their connection.
	conns sync.Map // *trackedConn → struct{}
	tails sync.Map // *tailCall → struct{}
}

// tailCall is one gRPC Tail under way, on conn.
type tailCall struct {
	conn net.Conn
	done chan struct{}
}

// New builds a server for node. Nothing listens until ServeGRPC or
// ServeHTTP.
// HTTP/2 flow-control windows of the gRPC listener: fixed, which turns off
// gRPC's bandwidth-delay estimator. The estimator answers received data
// with a ping, one more write per request on every connection; with 64
// clients on their own connections, each sending one durable append at a
// time, that was a third of the host's system calls, and fixed windows
// took it from 23–27 k to 30–37 k rec/s (docs/performance.md). The sizes
// are the estimator's own ceiling (16 MiB per connection), which also
// bounds what a client can have the host buffer unread.
const (
	grpcStreamWindow = 4 << 20
	grpcConnWindow   = 16 << 20
)

func New(node Node, opts Options) (*Server, error) {
	opts, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	s := &Server{node: node, opts: opts, auth: newTokenAuth(opts.Token), reads: newReadBudget(opts.ReadBudgetBytes, opts.ReadStallTimeout, opts.Registerer)}
	s.stopped, s.stop = context.WithCancel(context.Background())

	var tp []otelgrpc.Option
	var hp []otelhttp.Option
	if opts.TracerProvider != nil {
		tp = append(tp, otelgrpc.WithTracerProvider(opts.TracerProvider))
		hp = append(hp, otelhttp.WithTracerProvider(opts.TracerProvider))
	}
	gopts := []grpc.ServerOption{
		grpc.StatsHandler(otelgrpc.NewServerHandler(tp...)),
		grpc.StatsHandler(budgetStats{}),
		grpc.ForceServerCodecV2(budgetCodec{b: s.reads, base: encoding.GetCodecV2(proto.Name)}),
		grpc.MaxRecvMsgSize(opts.maxMessage()),
		grpc.MaxSendMsgSize(opts.maxMessage()),
		grpc.InitialWindowSize(grpcStreamWindow), grpc.InitialConnWindowSize(grpcConnWindow),
		grpc.ChainUnaryInterceptor(s.unaryErrors, s.auth.unary),
		grpc.ChainStreamInterceptor(s.streamErrors, s.auth.stream),
	}
	if opts.TLS != nil {
		gopts = append(gopts, grpc.Creds(credentials.NewTLS(opts.TLS.Clone())))
	}
	s.grpc = grpc.NewServer(gopts...)
	aof2v1.RegisterLogServer(s.grpc, &logService{s: s})
	aof2v1.RegisterAdminServer(s.grpc, &adminService{s: s})
	grpc_health_v1.RegisterHealthServer(s.grpc, &healthService{s: s})
	// Server reflection, so that grpcurl and similar tools work without
	// the .proto files; behind the token like every other call but health.
	reflection.Register(s.grpc)

	s.http = &http.Server{
		Handler:           otelhttp.NewHandler(s.Handler(), "aof2.http", hp...),
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          opts.Logger.StandardLogger(nil),
	}
	s.admin = &http.Server{
		Handler:           s.AdminHandler(),
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          opts.Logger.StandardLogger(nil),
	}
	if opts.TLS != nil {
		s.http.TLSConfig = opts.TLS.Clone()
		s.admin.TLSConfig = opts.TLS.Clone()
	}
	return s, nil
}

// ServeGRPC serves gRPC on l until Shutdown; it returns nil after Shutdown.
func (s *Server) ServeGRPC(l net.Listener) error {
	if err := s.grpc.Serve(trackingListener{l, s}); !errors.Is(err, grpc.ErrServerStopped) {
		return err
	}
	return nil // Shutdown came first (it may, when a host stops at once)
}

// ServeHTTP serves HTTP on l (over TLS when Options.TLS is set) until
// Shutdown; it returns nil after Shutdown.
func (s *Server) ServeHTTP(l net.Listener) error { return serveHTTP(s.http, l) }

// ServeAdmin serves the admin handler (AdminHandler: pprof) on l, over
// TLS when Options.TLS is set, until Shutdown; it returns nil after
// Shutdown. The host serves it only when admin.listen is set.
func (s *Server) ServeAdmin(l net.Listener) error { return serveHTTP(s.admin, l) }

func serveHTTP(h *http.Server, l net.Listener) error {
	var err error
	if h.TLSConfig != nil {
		err = h.ServeTLS(l, "", "")
	} else {
		err = h.Serve(l)
	}
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

// Shutdown stops accepting, ends tails and health watches, and lets
// in-flight requests finish until ctx is done; then it cuts the rest off
// and returns ctx's error.
func (s *Server) Shutdown(ctx context.Context) error {
	s.stop()
	var wg sync.WaitGroup
	var grpcErr, httpErr error
	wg.Add(2)
	go func() {
		defer wg.Done()
		grpcErr = s.stopGRPC(ctx)
	}()
	go func() {
		defer wg.Done()
		if httpErr = s.http.Shutdown(ctx); httpErr != nil {
			_ = s.http.Close()
		}
	}()
	wg.Wait()
	if err := s.admin.Shutdown(ctx); err != nil {
		_ = s.admin.Close() // a profile still being taken
	}
	return errors.Join(grpcErr, httpErr)
}

func (s *Server) stopGRPC(ctx context.Context) error {
	go s.cutStalledReads(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.grpc.GracefulStop()
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		s.grpc.Stop()
		<-done
		return ctx.Err()
	}
}

// untilStopped returns a context that is also cancelled, with cause
// errShuttingDown, when Shutdown starts: for calls that would otherwise
// wait forever.
func (s *Server) untilStopped(ctx context.Context) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancelCause(ctx)
	unhook := context.AfterFunc(s.stopped, func() { cancel(errShuttingDown) })
	return ctx, func() { unhook(); cancel(nil) }
}

// stopping reports whether Shutdown has started.
func (s *Server) stopping() bool { return s.stopped.Err() != nil }

// unaryErrors and streamErrors are the outermost interceptors: every
// error a handler (or authentication) returns goes through the error table.
func (s *Server) unaryErrors(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	resp, err := handler(ctx, req)
	if err != nil {
		s.logFault(info.FullMethod, err)
		return nil, toStatus(err).Err()
	}
	return resp, nil
}

func (s *Server) streamErrors(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	if err := handler(srv, ss); err != nil {
		s.logFault(info.FullMethod, err)
		return toStatus(err).Err()
	}
	return nil
}

// logFault logs errors that are the server's (or its disk's) problem
// rather than the client's, with the full message the client does not
// get.
func (s *Server) logFault(where string, err error) {
	switch c := classify(err); {
	case c.grpc == codes.Internal, c.grpc == codes.DataLoss,
		c.reason == aof2v1.ErrorReason_STREAM_FAILED, c.reason == aof2v1.ErrorReason_NO_SPACE:
		s.opts.Logger.Error("request failed", "request", where, "error", err)
	default:
		s.opts.Logger.Debug("request refused", "request", where, "code", c.code(), "error", err)
	}
}

// ready reports whether the server takes traffic: the node is ready and
// Shutdown has not started.
func (s *Server) ready() bool { return !s.stopping() && s.node.Ready() }

// cutStalledReads closes the connection of every Tail still under way,
// and of every Read answer still not written out, tailShutdownGrace after
// Shutdown started (a tail was told to end, a read has its answer ready:
// they are blocked sending to a client that does not read): graceful stop
// would otherwise wait for them until its deadline, then cut everybody
// off.
func (s *Server) cutStalledReads(ctx context.Context) {
	t := time.NewTimer(tailShutdownGrace)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
		return
	}
	s.tails.Range(func(k, _ any) bool {
		tc := k.(*tailCall)
		select {
		case <-tc.done:
		default:
			_ = tc.conn.Close()
		}
		return true
	})
	s.conns.Range(func(k, _ any) bool {
		if c := k.(*trackedConn); c.unsent.Load() > 0 {
			_ = c.Close()
		}
		return true
	})
}

// trackingListener records the gRPC listener's connections
// (cutStalledReads), each with a remote address that leads back to it
// (connAddr): a call finds its connection through its peer's address.
// Remote addresses alone do not tell connections apart: every client of a
// Unix socket has the same, empty one.
type trackingListener struct {
	net.Listener
	s *Server
}

func (l trackingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	tc := &trackedConn{Conn: c}
	tc.addr = &connAddr{Addr: c.RemoteAddr(), conn: tc}
	tc.forget = func() { l.s.conns.Delete(tc) }
	l.s.conns.Store(tc, struct{}{})
	return tc, nil
}

type trackedConn struct {
	net.Conn
	addr   *connAddr
	forget func()
	once   sync.Once
	// unsent counts the Read answers handed to the transport and not
	// given back yet (budgetCodec).
	unsent atomic.Int64
}

func (c *trackedConn) Close() error {
	c.once.Do(c.forget)
	return c.Conn.Close()
}

// connOf returns the connection a gRPC call came on, when the tracking
// listener accepted it.
func connOf(ctx context.Context) *trackedConn {
	if p, ok := peer.FromContext(ctx); ok {
		if ca, ok := p.Addr.(*connAddr); ok {
			return ca.conn
		}
	}
	return nil
}

// RemoteAddr is the connection's own remote address, with the connection.
func (c *trackedConn) RemoteAddr() net.Addr { return c.addr }

// connAddr is an accepted connection's remote address (Network and String
// are the connection's) and the connection it belongs to.
type connAddr struct {
	net.Addr // nil when the connection reports none
	conn     *trackedConn
}

func (a *connAddr) Network() string {
	if a.Addr == nil {
		return ""
	}
	return a.Addr.Network()
}

func (a *connAddr) String() string {
	if a.Addr == nil {
		return ""
	}
	return a.Addr.String()
}
