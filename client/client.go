package client

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"math"
	"net"
	"net/netip"
	"strings"

	"google.golang.org/grpc"
	"google.golang.org/grpc/connectivity"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"

	aof2v1 "github.com/aof2/aof2/api/proto/aof2/v1"
	"github.com/aof2/aof2/core/types"
)

// Identifiers, the engine's own types (core re-exports the same ones).
type (
	StreamID  = types.StreamID
	SegmentID = types.SegmentID
	RecordID  = types.RecordID
)

// HTTP/2 flow-control windows of the client's connections: fixed, which
// turns off gRPC's bandwidth-delay estimation. The estimator answers
// received data with pings, one more write and read per answer on both
// sides; with durable appends answered every sync that cost 7–10 % of the
// throughput through the host (docs/performance.md). 4 MiB per call lets
// a Tail or Read stream at 400 MB/s over a 10 ms round trip; a call whose
// messages the application does not take buffers up to that much, and the
// connection all its calls together up to 16 MiB. WithDialOptions can set
// others.
const (
	clientStreamWindow = 4 << 20
	clientConnWindow   = 16 << 20
)

// Client talks to one aof2-host. It is safe for concurrent use.
type Client struct {
	conn     *grpc.ClientConn
	redirect *redirector // follows a cluster's leader
	log      aof2v1.LogClient
	admin    aof2v1.AdminClient
	opts     options
	co       *coalescer         // nil when WithAppendCoalescing(false)
	stop     context.CancelFunc // ends the coalescer's calls at Close
}

type options struct {
	token       string
	tls         *tls.Config
	insecure    bool
	appendRetry bool
	coalesce    bool
	pipeline    bool
	maxMessage  int
	dial        []grpc.DialOption
}

// Option configures Dial.
type Option func(*options)

// WithToken sends "authorization: Bearer <token>" with every call.
func WithToken(token string) Option { return func(o *options) { o.token = token } }

// WithTLS connects over TLS with cfg (its RootCAs verify the host).
// Without WithTLS or WithInsecure, Dial connects in plaintext to a
// loopback address ("localhost", 127.0.0.0/8, ::1) and over TLS with the
// system roots to anything else.
func WithTLS(cfg *tls.Config) Option { return func(o *options) { o.tls = cfg } }

// WithInsecure connects in plaintext whatever the address. A token then
// travels unencrypted.
func WithInsecure() Option { return func(o *options) { o.insecure = true } }

// WithAppendRetry turns the automatic retry of appends that the host
// refused with WouldBlock on or off (default on). A retry waits the delay
// the host asked for and gives up when ctx would expire first; appends
// that appended part of their records are never retried.
func WithAppendRetry(on bool) Option { return func(o *options) { o.appendRetry = on } }

// WithAppendCoalescing turns coalescing of concurrent appends on or off
// (default on). With it, appends to the same stream made while another is
// in flight share the next request: each caller still gets its own ids
// once its records are durable, its records contiguous in the stream, and
// its own error for a record the host refuses. Appends with outgoing gRPC
// metadata in their context, with a coordinator watermark, or over 256 KiB
// are always sent on their own.
func WithAppendCoalescing(on bool) Option { return func(o *options) { o.coalesce = on } }

// WithAppendPipeline turns pipelining of coalesced appends on or off
// (default on): they travel on one long-lived AppendPipeline call, sent
// without waiting for earlier answers, instead of one Append call each.
// Answers and errors are the same; against a host that does not serve
// the call (an older one, or a cluster) the client uses Append calls.
func WithAppendPipeline(on bool) Option { return func(o *options) { o.pipeline = on } }

// WithMaxMessageSize bounds the messages the client sends and accepts;
// default the most gRPC allows. The host enforces its own limit.
func WithMaxMessageSize(n int) Option { return func(o *options) { o.maxMessage = n } }

// WithDialOptions adds gRPC dial options (interceptors, a custom dialer).
func WithDialOptions(opts ...grpc.DialOption) Option {
	return func(o *options) { o.dial = append(o.dial, opts...) }
}

// Dial connects to the host's gRPC address and waits until the connection
// is up or ctx is done.
func Dial(ctx context.Context, addr string, opts ...Option) (*Client, error) {
	o := options{appendRetry: true, coalesce: true, pipeline: true, maxMessage: math.MaxInt32}
	for _, opt := range opts {
		opt(&o)
	}
	if o.tls != nil && o.insecure {
		return nil, fmt.Errorf("aof2 client: WithTLS and WithInsecure exclude each other")
	}
	if o.tls == nil && !o.insecure {
		o.insecure = isLoopback(addr)
	}
	creds := insecure.NewCredentials()
	if !o.insecure {
		cfg := o.tls
		if cfg == nil {
			cfg = &tls.Config{MinVersion: tls.VersionTLS12}
		}
		creds = credentials.NewTLS(cfg)
	}
	dopts := []grpc.DialOption{
		grpc.WithTransportCredentials(creds),
		grpc.WithInitialWindowSize(clientStreamWindow), grpc.WithInitialConnWindowSize(clientConnWindow),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(o.maxMessage), grpc.MaxCallSendMsgSize(o.maxMessage)),
	}
	if o.token != "" {
		dopts = append(dopts, grpc.WithPerRPCCredentials(bearer{token: o.token, secure: !o.insecure}))
	}
	dopts = append(dopts, o.dial...)
	// Leaders are dialled with the same options, without the redirector:
	// it calls their invoker itself.
	redirect := newRedirector(func(leader string) (*grpc.ClientConn, error) { return grpc.NewClient(leader, dopts...) })
	conn, err := grpc.NewClient(addr, append(dopts, grpc.WithChainUnaryInterceptor(redirect.unary))...)
	if err != nil {
		return nil, fmt.Errorf("aof2 client: %w", err)
	}
	conn.Connect()
	for {
		st := conn.GetState()
		if st == connectivity.Ready {
			break
		}
		if !conn.WaitForStateChange(ctx, st) {
			_ = conn.Close()
			return nil, fmt.Errorf("aof2 client: connect to %s (last state %s): %w", addr, st, ctx.Err())
		}
	}
	c := &Client{conn: conn, redirect: redirect, log: aof2v1.NewLogClient(conn), admin: aof2v1.NewAdminClient(conn), opts: o}
	var life context.Context
	life, c.stop = context.WithCancel(context.Background())
	if o.coalesce {
		c.co = newCoalescer(life, c.log, o.pipeline, o.maxMessage)
	}
	return c, nil
}

// isLoopback reports whether addr ("host:port", or a gRPC target such as
// "dns:///host:port") names this machine.
func isLoopback(addr string) bool {
	if i := strings.LastIndex(addr, "/"); i >= 0 {
		addr = addr[i+1:]
	}
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		host = addr
	}
	if host == "localhost" {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.IsLoopback()
}

// Close closes the connection; calls in flight fail.
func (c *Client) Close() error {
	c.stop()
	return errors.Join(c.conn.Close(), c.redirect.close())
}

// bearer is the per-call token.
type bearer struct {
	token  string
	secure bool
}

func (b bearer) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	return map[string]string{"authorization": "Bearer " + b.token}, nil
}

func (b bearer) RequireTransportSecurity() bool { return b.secure }
