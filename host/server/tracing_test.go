package server_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/aof2/aof2/client"
	"github.com/aof2/aof2/core"
	"github.com/aof2/aof2/host/server"
	"github.com/aof2/aof2/host/server/servertest"
)

// TestRequestsAreTraced: every gRPC call and HTTP request gets a server
// span from the configured provider.
func TestRequestsAreTraced(t *testing.T) {
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	h := servertest.Start(t, core.Config{}, server.Options{TracerProvider: tp})
	ctx := context.Background()
	c, err := client.Dial(ctx, h.GRPCAddr)
	require.NoError(t, err)
	_, err = c.Append(ctx, 1, []byte("traced")) // on an AppendPipeline call
	require.NoError(t, err)
	_, err = c.Info(ctx, 1)
	require.NoError(t, err)
	require.NoError(t, c.Close()) // ends the pipeline call, and its span
	resp, err := http.Post(h.HTTPURL+"/v1/streams/1/records", "application/octet-stream", strings.NewReader("over http"))
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)

	var names []string
	for _, s := range exp.GetSpans() {
		names = append(names, s.Name)
	}
	require.Contains(t, names, "aof2.v1.Log/StreamInfo")
	require.Eventually(t, func() bool {
		for _, s := range exp.GetSpans() {
			if s.Name == "aof2.v1.Log/AppendPipeline" {
				return true
			}
		}
		return false
	}, 10*time.Second, time.Millisecond, "a span for the pipeline call once it ended")
	require.Contains(t, names, "POST /v1/streams/{id}/records", "HTTP spans are named by route")
}
