// Package telemetry configures the host's OpenTelemetry tracing from the
// standard OTEL_* environment variables. Tracing is off unless they ask
// for it; the engine's spans (core/internal/tracing lists them) then go
// nowhere at the cost of a no-op call.
//
// # Environment
//
// Setup turns OTLP trace export on when
//
//   - OTEL_TRACES_EXPORTER names otlp, or
//   - OTEL_TRACES_EXPORTER is unset and OTEL_EXPORTER_OTLP_ENDPOINT or
//     OTEL_EXPORTER_OTLP_TRACES_ENDPOINT is set,
//
// unless OTEL_SDK_DISABLED is true or OTEL_TRACES_EXPORTER names none.
// Other exporter names (console, zipkin, …) are not built in: they are
// logged and ignored, as the specification asks.
//
// OTEL_EXPORTER_OTLP_TRACES_PROTOCOL, else OTEL_EXPORTER_OTLP_PROTOCOL,
// picks the transport: grpc, http/protobuf (the default) or http/json; any
// other value is an error. The exporters read the rest of their variables
// (endpoint, headers, certificates, compression, timeout) themselves, the
// SDK reads OTEL_TRACES_SAMPLER / OTEL_TRACES_SAMPLER_ARG (default
// parentbased_always_on) and OTEL_BSP_*, and the resource reads
// OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES, which override the
// service name and version Setup is given.
package telemetry

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"

	"github.com/hashicorp/go-hclog"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
)

// The environment variables Setup itself reads.
const (
	EnvSDKDisabled    = "OTEL_SDK_DISABLED"
	EnvTracesExporter = "OTEL_TRACES_EXPORTER"
	EnvEndpoint       = "OTEL_EXPORTER_OTLP_ENDPOINT"
	EnvTracesEndpoint = "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"
	EnvProtocol       = "OTEL_EXPORTER_OTLP_PROTOCOL"
	EnvTracesProtocol = "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL"

	exporterOTLP    = "otlp"
	exporterNone    = "none"
	defaultProtocol = ProtocolHTTPProtobuf
)

// OTLP transports.
const (
	ProtocolGRPC         = "grpc"
	ProtocolHTTPProtobuf = "http/protobuf"
	ProtocolHTTPJSON     = "http/json"
)

// Settings is what the environment asks of tracing.
type Settings struct {
	// Enabled is true when spans are to be exported over OTLP.
	Enabled bool
	// Protocol is the OTLP transport (set when Enabled).
	Protocol string
	// Endpoint is the endpoint variable in effect, for the log; empty
	// means the exporter's default (localhost:4317 or :4318).
	Endpoint string
	// Reason says why tracing is off (empty when Enabled).
	Reason string
	// Ignored lists the exporters OTEL_TRACES_EXPORTER names that the
	// host does not have.
	Ignored []string
}

// FromEnv works out Settings from the environment (lookup is
// os.LookupEnv in production). An unsupported protocol is an error naming
// its variable.
func FromEnv(lookup func(string) (string, bool)) (Settings, error) {
	get := func(k string) string {
		v, _ := lookup(k)
		return strings.TrimSpace(v)
	}
	var st Settings
	if strings.EqualFold(get(EnvSDKDisabled), "true") {
		st.Reason = EnvSDKDisabled + "=true"
		return st, nil
	}
	st.Endpoint = get(EnvTracesEndpoint)
	if st.Endpoint == "" {
		st.Endpoint = get(EnvEndpoint)
	}
	var exporters []string
	for e := range strings.SplitSeq(get(EnvTracesExporter), ",") {
		if e = strings.ToLower(strings.TrimSpace(e)); e != "" {
			exporters = append(exporters, e)
		}
	}
	for _, e := range exporters {
		if e != exporterOTLP && e != exporterNone {
			st.Ignored = append(st.Ignored, e)
		}
	}
	switch {
	case slices.Contains(exporters, exporterNone):
		st.Reason = EnvTracesExporter + "=none"
		return st, nil
	case len(exporters) > 0 && !slices.Contains(exporters, exporterOTLP):
		st.Reason = EnvTracesExporter + " names no supported exporter"
		return st, nil
	case len(exporters) == 0 && st.Endpoint == "":
		st.Reason = "no " + EnvTracesExporter + " and no OTLP endpoint set"
		return st, nil
	}
	st.Enabled = true
	st.Protocol, st.Reason = defaultProtocol, ""
	for _, k := range []string{EnvTracesProtocol, EnvProtocol} {
		if v := get(k); v != "" {
			p := strings.ToLower(v)
			if p != ProtocolGRPC && p != ProtocolHTTPProtobuf && p != ProtocolHTTPJSON {
				return Settings{}, fmt.Errorf("telemetry: %s=%q: want %s, %s or %s", k, v, ProtocolGRPC, ProtocolHTTPProtobuf, ProtocolHTTPJSON)
			}
			st.Protocol = p
			break
		}
	}
	return st, nil
}

// Setup configures tracing from the environment. When the environment
// asks for OTLP export it installs a global TracerProvider (batching
// spans to the exporter, with a resource naming serviceName and version)
// and the W3C trace-context and baggage propagators, and routes the SDK's
// export errors to logger. Otherwise it changes nothing and tracing stays
// a no-op. The returned shutdown flushes pending spans and stops the
// exporter within ctx; call it once when the host stops (it is never nil).
func Setup(ctx context.Context, serviceName, version string, logger hclog.Logger) (shutdown func(context.Context) error, err error) {
	if logger == nil {
		logger = hclog.NewNullLogger()
	}
	nop := func(context.Context) error { return nil }
	st, err := FromEnv(os.LookupEnv)
	if err != nil {
		return nop, err
	}
	if len(st.Ignored) > 0 {
		logger.Warn("OTEL_TRACES_EXPORTER names exporters this host does not have; ignored", "exporters", strings.Join(st.Ignored, ","))
	}
	if !st.Enabled {
		logger.Debug("OpenTelemetry tracing off", "reason", st.Reason)
		return nop, nil
	}
	var exp sdktrace.SpanExporter
	switch st.Protocol {
	case ProtocolGRPC:
		exp, err = otlptracegrpc.New(ctx)
	default: // http/protobuf and http/json: the exporter reads which from the environment
		exp, err = otlptracehttp.New(ctx)
	}
	if err != nil {
		return nop, fmt.Errorf("telemetry: OTLP %s exporter: %w", st.Protocol, err)
	}
	res, err := resource.New(ctx,
		resource.WithAttributes(semconv.ServiceName(serviceName), semconv.ServiceVersion(version)),
		resource.WithTelemetrySDK(),
		resource.WithFromEnv(), // last: OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES win
	)
	if err != nil {
		if !errors.Is(err, resource.ErrPartialResource) {
			_ = exp.Shutdown(ctx)
			return nop, fmt.Errorf("telemetry: resource: %w", err)
		}
		logger.Warn("OpenTelemetry resource is partial (check OTEL_RESOURCE_ATTRIBUTES)", "error", err)
	}
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp), sdktrace.WithResource(res))
	otel.SetErrorHandler(otel.ErrorHandlerFunc(func(err error) {
		logger.Warn("OpenTelemetry export error", "error", err)
	}))
	otel.SetTracerProvider(tp)
	otel.SetTextMapPropagator(propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{}))
	logger.Info("OpenTelemetry tracing on", "protocol", st.Protocol, "endpoint", st.Endpoint, "service", serviceName)
	return tp.Shutdown, nil
}
