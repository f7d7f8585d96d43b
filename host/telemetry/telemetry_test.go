package telemetry

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"
)

func TestFromEnv(t *testing.T) {
	for _, tc := range []struct {
		name     string
		env      map[string]string
		on       bool
		protocol string
		ignored  []string
		err      string
	}{
		{name: "nothing set: off"},
		{name: "exporter otlp", env: map[string]string{EnvTracesExporter: "otlp"}, on: true, protocol: ProtocolHTTPProtobuf},
		{name: "exporter OTLP, spaced", env: map[string]string{EnvTracesExporter: " OTLP "}, on: true, protocol: ProtocolHTTPProtobuf},
		{name: "endpoint", env: map[string]string{EnvEndpoint: "http://collector:4318"}, on: true, protocol: ProtocolHTTPProtobuf},
		{name: "traces endpoint", env: map[string]string{EnvTracesEndpoint: "http://collector:4318/v1/traces"}, on: true, protocol: ProtocolHTTPProtobuf},
		{name: "empty endpoint: off", env: map[string]string{EnvEndpoint: " "}},
		{name: "exporter none beats endpoint", env: map[string]string{EnvTracesExporter: "none", EnvEndpoint: "http://c:4318"}},
		{name: "none beats otlp", env: map[string]string{EnvTracesExporter: "otlp,none"}},
		{name: "SDK disabled beats everything", env: map[string]string{EnvSDKDisabled: "TRUE", EnvTracesExporter: "otlp", EnvEndpoint: "http://c:4318"}},
		{name: "SDK disabled false", env: map[string]string{EnvSDKDisabled: "false", EnvTracesExporter: "otlp"}, on: true, protocol: ProtocolHTTPProtobuf},
		{name: "console only: ignored, off", env: map[string]string{EnvTracesExporter: "console", EnvEndpoint: "http://c:4318"}, ignored: []string{"console"}},
		{name: "otlp and zipkin", env: map[string]string{EnvTracesExporter: "otlp,zipkin"}, on: true, protocol: ProtocolHTTPProtobuf, ignored: []string{"zipkin"}},
		{name: "grpc", env: map[string]string{EnvEndpoint: "http://c:4317", EnvProtocol: "grpc"}, on: true, protocol: ProtocolGRPC},
		{name: "traces protocol wins", env: map[string]string{EnvEndpoint: "http://c:4317", EnvProtocol: "grpc", EnvTracesProtocol: "http/protobuf"}, on: true, protocol: ProtocolHTTPProtobuf},
		{name: "http/json", env: map[string]string{EnvTracesExporter: "otlp", EnvTracesProtocol: "HTTP/JSON"}, on: true, protocol: ProtocolHTTPJSON},
		{name: "bad protocol", env: map[string]string{EnvTracesExporter: "otlp", EnvProtocol: "udp"}, err: EnvProtocol + `="udp"`},
		{name: "bad protocol while off: no error", env: map[string]string{EnvProtocol: "udp"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st, err := FromEnv(func(k string) (string, bool) { v, ok := tc.env[k]; return v, ok })
			if tc.err != "" {
				require.ErrorContains(t, err, tc.err)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tc.on, st.Enabled)
			require.Equal(t, tc.protocol, st.Protocol)
			require.Equal(t, tc.ignored, st.Ignored)
			if !tc.on {
				require.NotEmpty(t, st.Reason, "off says why")
			}
		})
	}
}

// receiver is a local OTLP trace receiver over HTTP (POST /v1/traces) and
// gRPC, recording what it is sent.
type receiver struct {
	http     *httptest.Server
	grpcAddr string

	mu       sync.Mutex
	httpReqs int
	grpcReqs int
	spans    []string
	services []string
	versions []string
	json     bool
}

func newReceiver(t *testing.T) *receiver {
	r := &receiver{}
	r.http = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if req.Method != http.MethodPost || req.URL.Path != "/v1/traces" {
			http.NotFound(w, req)
			return
		}
		body, err := io.ReadAll(req.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		r.mu.Lock()
		defer r.mu.Unlock()
		r.httpReqs++
		if req.Header.Get("Content-Type") == "application/json" {
			r.json = true
			return
		}
		var msg coltracepb.ExportTraceServiceRequest
		if err := proto.Unmarshal(body, &msg); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		r.record(&msg)
	}))
	t.Cleanup(r.http.Close)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	srv := grpc.NewServer()
	coltracepb.RegisterTraceServiceServer(srv, grpcReceiver{r: r})
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(srv.Stop)
	r.grpcAddr = lis.Addr().String()
	return r
}

// record notes the spans and resources of a request; r.mu is held.
func (r *receiver) record(msg *coltracepb.ExportTraceServiceRequest) {
	for _, rs := range msg.ResourceSpans {
		for _, kv := range rs.GetResource().GetAttributes() {
			switch kv.Key {
			case "service.name":
				r.services = append(r.services, kv.GetValue().GetStringValue())
			case "service.version":
				r.versions = append(r.versions, kv.GetValue().GetStringValue())
			}
		}
		for _, ss := range rs.ScopeSpans {
			for _, sp := range ss.Spans {
				r.spans = append(r.spans, sp.Name)
			}
		}
	}
}

type grpcReceiver struct {
	coltracepb.UnimplementedTraceServiceServer
	r *receiver
}

func (g grpcReceiver) Export(_ context.Context, msg *coltracepb.ExportTraceServiceRequest) (*coltracepb.ExportTraceServiceResponse, error) {
	g.r.mu.Lock()
	defer g.r.mu.Unlock()
	g.r.grpcReqs++
	g.r.record(msg)
	return &coltracepb.ExportTraceServiceResponse{}, nil
}

// keepGlobals restores the global OpenTelemetry state Setup changes.
func keepGlobals(t *testing.T) {
	tp, prop, eh := otel.GetTracerProvider(), otel.GetTextMapPropagator(), otel.GetErrorHandler()
	t.Cleanup(func() {
		otel.SetTracerProvider(tp)
		otel.SetTextMapPropagator(prop)
		otel.SetErrorHandler(eh)
	})
}

// TestSetup: for each environment, Setup either exports a span to the
// local receiver over the protocol asked for, or leaves the global
// provider alone and sends nothing.
func TestSetup(t *testing.T) {
	for _, tc := range []struct {
		name     string
		env      map[string]string // {http} and {grpc} stand for the receiver's addresses
		wantHTTP bool
		wantGRPC bool
		json     bool
		service  string
		err      string
	}{
		{name: "off by default"},
		{name: "endpoint: http/protobuf", env: map[string]string{EnvEndpoint: "{http}"}, wantHTTP: true, service: "aof2-test"},
		{name: "traces endpoint, exporter otlp", env: map[string]string{EnvTracesExporter: "otlp", EnvTracesEndpoint: "{http}/v1/traces"}, wantHTTP: true, service: "aof2-test"},
		{name: "OTEL_SERVICE_NAME overrides", env: map[string]string{EnvEndpoint: "{http}", "OTEL_SERVICE_NAME": "renamed"}, wantHTTP: true, service: "renamed"},
		{name: "http/json", env: map[string]string{EnvEndpoint: "{http}", EnvProtocol: "http/json"}, wantHTTP: true, json: true},
		{name: "grpc", env: map[string]string{EnvEndpoint: "{grpc}", EnvProtocol: "grpc"}, wantGRPC: true, service: "aof2-test"},
		{name: "grpc by traces protocol", env: map[string]string{EnvTracesEndpoint: "{grpc}", EnvProtocol: "http/protobuf", EnvTracesProtocol: "grpc"}, wantGRPC: true, service: "aof2-test"},
		{name: "SDK disabled", env: map[string]string{EnvEndpoint: "{http}", EnvSDKDisabled: "true"}},
		{name: "exporter none", env: map[string]string{EnvEndpoint: "{http}", EnvTracesExporter: "none"}},
		{name: "console only", env: map[string]string{EnvEndpoint: "{http}", EnvTracesExporter: "console"}},
		{name: "SDK sampler from env: always_off", env: map[string]string{EnvEndpoint: "{http}", "OTEL_TRACES_SAMPLER": "always_off"}},
		{name: "bad protocol", env: map[string]string{EnvEndpoint: "{http}", EnvTracesProtocol: "carrier-pigeon"}, err: EnvTracesProtocol},
	} {
		t.Run(tc.name, func(t *testing.T) {
			keepGlobals(t)
			r := newReceiver(t)
			for _, k := range []string{EnvSDKDisabled, EnvTracesExporter, EnvEndpoint, EnvTracesEndpoint, EnvProtocol, EnvTracesProtocol,
				"OTEL_SERVICE_NAME", "OTEL_RESOURCE_ATTRIBUTES", "OTEL_TRACES_SAMPLER", "OTEL_TRACES_SAMPLER_ARG"} {
				t.Setenv(k, "")
			}
			for k, v := range tc.env {
				v = strings.ReplaceAll(v, "{http}", r.http.URL)
				v = strings.ReplaceAll(v, "{grpc}", "http://"+r.grpcAddr)
				t.Setenv(k, v)
			}
			before := otel.GetTracerProvider()
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			shutdown, err := Setup(ctx, "aof2-test", "1.2.3", hclog.NewNullLogger())
			require.NotNil(t, shutdown)
			if tc.err != "" {
				require.ErrorContains(t, err, tc.err)
				require.Same(t, before, otel.GetTracerProvider())
				return
			}
			require.NoError(t, err)
			on := tc.wantHTTP || tc.wantGRPC
			if !on && tc.env["OTEL_TRACES_SAMPLER"] == "" {
				require.Same(t, before, otel.GetTracerProvider(), "off: the global provider is left alone")
			}
			_, span := otel.Tracer("telemetry-test").Start(ctx, "probe")
			span.End()
			require.NoError(t, shutdown(ctx), "shutdown flushes")

			r.mu.Lock()
			defer r.mu.Unlock()
			require.Equal(t, tc.wantHTTP, r.httpReqs > 0, "HTTP requests: %d", r.httpReqs)
			require.Equal(t, tc.wantGRPC, r.grpcReqs > 0, "gRPC requests: %d", r.grpcReqs)
			require.Equal(t, tc.json, r.json)
			if on && !tc.json {
				require.Contains(t, r.spans, "probe")
				require.Contains(t, r.services, tc.service)
				require.Contains(t, r.versions, "1.2.3")
			}
			if on {
				require.ElementsMatch(t, []string{"traceparent", "tracestate", "baggage"}, otel.GetTextMapPropagator().Fields(),
					"W3C trace context and baggage are propagated")
			}
		})
	}
}
