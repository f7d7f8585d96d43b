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
	// Logger receives the server's logs; default discards them.
	Logger hclog.Logger
	// TracerProvider traces every RPC and HTTP request (W3C trace context
	// from the caller is continued, so engine spans nest under them); nil
	// uses the global provider, a no-op until host/telemetry installs one.
	TracerProvider trace.TracerProvider
}

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
