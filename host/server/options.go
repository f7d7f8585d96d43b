package server

import (
	"crypto/tls"
	"fmt"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/trace"

	"github.com/aof2/aof2/core/segment"
)

// Options configure a Server. The zero value serves plaintext without
// authentication, for loopback use.
type Options struct {
	// Token, when set, is the bearer token every request must carry
	// ("authorization: Bearer <token>"), except /healthz, /readyz and the
	// gRPC health service.
	Token string
	// TLS, when set, serves both gRPC and HTTP over TLS with this
	// configuration (certificates included).
	TLS *tls.Config
	// MaxRecordSize is the largest payload the store accepts, which sizes
	// the largest request and response; default the maximum record of a
	// default-sized segment (core.Stream.MaxRecordSize).
	MaxRecordSize int
	// Gatherer backs GET /metrics; nil leaves the route out.
	Gatherer prometheus.Gatherer
	// MetricsAuth puts /metrics behind the token too.
	MetricsAuth bool
	// MaxBlock bounds how long a durable append waits out backpressure
	// (WouldBlock) before returning it to the client, within the request's
	// own deadline; default 5s.
	MaxBlock time.Duration
	// ReadDefaultBytes is how many payload bytes a read returns when the
	// request does not say (ReadRequest.max_bytes, HTTP max_bytes), and
	// what one Tail message carries at most; default 4 MiB.
	ReadDefaultBytes int64
	// ReadMaxBytes caps one read response, payload and framing, whatever
	// the request asks (and the message size caps it in turn); default
	// 16 MiB. A response always carries at least one record when one is
	// available, however large.
	ReadMaxBytes int64
	// ReadBudgetBytes bounds the record bytes the server holds for all
	// readers at once (copied, encoded or queued for the network): a read
	// that finds it used up waits for room instead of growing memory, and
	// a read that would exceed it returns fewer records. A record larger
	// than the whole budget is still returned, alone. Default 64 MiB.
	ReadBudgetBytes int64
	// ReadStallTimeout bounds how long a response's bytes stay in the read
	// budget while the client does not take them: an HTTP write blocked
	// that long fails (the connection is closed); a gRPC response not
	// written out by then leaves the budget (the transport keeps it until
	// the client reads or the connection ends). Default 30s.
	ReadStallTimeout time.Duration
	// Registerer receives the server's metrics (the read budget's); nil
	// registers none.
	Registerer prometheus.Registerer
	// Logger receives the server's logs; default discards them.
	Logger hclog.Logger
	// TracerProvider traces every RPC and HTTP request (W3C trace context
	// from the caller is continued, so engine spans nest under them); nil
	// uses the global provider, a no-op until host/telemetry installs one.
	TracerProvider trace.TracerProvider
}

// Read limit defaults (Options.ReadDefaultBytes, ReadMaxBytes,
// ReadBudgetBytes; docs/adr-host.md#read-memory).
const (
	DefaultReadBytes        = 4 << 20
	DefaultReadMaxBytes     = 16 << 20
	DefaultReadBudgetBytes  = 64 << 20
	DefaultReadStallTimeout = 30 * time.Second
)

// framingSlack is room for everything in a message besides payload bytes:
// field tags, ids, timestamps, HTTP JSON keys.
const framingSlack = 1 << 20

// minMessageSize keeps batches of small records from being capped by a
// small MaxRecordSize.
const minMessageSize = 4 << 20

func (o Options) withDefaults() (Options, error) {
	if o.MaxRecordSize == 0 {
		o.MaxRecordSize = int(segment.MaxRecordSize(segment.DefaultCapacity))
	}
	if o.MaxRecordSize < 0 {
		return o, fmt.Errorf("server: MaxRecordSize %d is negative", o.MaxRecordSize)
	}
	if o.MaxBlock == 0 {
		o.MaxBlock = 5 * time.Second
	}
	if o.MaxBlock < 0 {
		return o, fmt.Errorf("server: MaxBlock %s is negative", o.MaxBlock)
	}
	if o.ReadDefaultBytes == 0 {
		o.ReadDefaultBytes = DefaultReadBytes
	}
	if o.ReadMaxBytes == 0 {
		o.ReadMaxBytes = max(DefaultReadMaxBytes, o.ReadDefaultBytes)
	}
	if o.ReadBudgetBytes == 0 {
		o.ReadBudgetBytes = DefaultReadBudgetBytes
	}
	switch {
	case o.ReadStallTimeout == 0:
		o.ReadStallTimeout = DefaultReadStallTimeout
	case o.ReadStallTimeout < 0:
		return o, fmt.Errorf("server: ReadStallTimeout %s is negative", o.ReadStallTimeout)
	}
	for _, l := range []struct {
		name string
		n    int64
	}{{"ReadDefaultBytes", o.ReadDefaultBytes}, {"ReadMaxBytes", o.ReadMaxBytes}, {"ReadBudgetBytes", o.ReadBudgetBytes}} {
		if l.n < 0 {
			return o, fmt.Errorf("server: %s %d is negative", l.name, l.n)
		}
	}
	if o.ReadDefaultBytes > o.ReadMaxBytes {
		return o, fmt.Errorf("server: ReadDefaultBytes %d exceeds ReadMaxBytes %d", o.ReadDefaultBytes, o.ReadMaxBytes)
	}
	if o.Logger == nil {
		o.Logger = hclog.NewNullLogger()
	}
	return o, nil
}

// maxMessage is the largest gRPC message either way: one maximum record
// plus framing, and at least minMessageSize.
func (o Options) maxMessage() int {
	return max(o.MaxRecordSize+framingSlack, minMessageSize)
}
