package server_test

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers/gorillamux"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/aof2/aof2/api"
	"github.com/aof2/aof2/host/server"
)

// TestOpenAPIDocument: api/openapi.json is a valid OpenAPI 3 document, it
// documents exactly the routes the server registers (no route missing,
// none documented that the server lacks), the server serves it at
// /openapi.json, and real answers of every JSON route validate against
// it.
func TestOpenAPIDocument(t *testing.T) {
	ctx := context.Background()
	loader := openapi3.NewLoader()
	doc, err := loader.LoadFromData(api.OpenAPI)
	require.NoError(t, err)
	require.NoError(t, doc.Validate(ctx), "not a valid OpenAPI 3 document")

	h := start(t, smallConfig(), server.Options{Gatherer: prometheus.NewRegistry()})
	var documented []string
	for path, item := range doc.Paths.Map() {
		for method := range item.Operations() {
			documented = append(documented, method+" "+path)
		}
	}
	slices.Sort(documented)
	registered := h.Server.RoutePatterns()
	slices.Sort(registered)
	require.Equal(t, registered, documented, "api/openapi.json and the server's routes differ")

	served := do(t, http.MethodGet, h.HTTPURL+"/openapi.json", "", nil)
	require.Equal(t, http.StatusOK, served.code)
	require.Equal(t, api.OpenAPI, served.body)

	// Real answers validate against the document.
	router, err := gorillamux.NewRouter(doc)
	require.NoError(t, err)
	check := func(method, path, contentType, body string) {
		t.Helper()
		req, err := http.NewRequest(method, h.HTTPURL+path, strings.NewReader(body))
		require.NoError(t, err)
		if contentType != "" {
			req.Header.Set("Content-Type", contentType)
		}
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		// The document's server is the default address: match on the path.
		req.URL.Scheme, req.URL.Host = "http", "127.0.0.1:7401"
		route, params, err := router.FindRoute(req)
		require.NoError(t, err, "%s %s is not in the document", method, path)
		in := &openapi3filter.RequestValidationInput{Request: req, PathParams: params, Route: route,
			Options: &openapi3filter.Options{AuthenticationFunc: openapi3filter.NoopAuthenticationFunc}}
		out := &openapi3filter.ResponseValidationInput{RequestValidationInput: in, Status: resp.StatusCode, Header: resp.Header,
			Body: io.NopCloser(bytes.NewReader(b)), Options: &openapi3filter.Options{IncludeResponseStatus: true}}
		require.NoError(t, openapi3filter.ValidateResponse(ctx, out), "%s %s answered %d: %s", method, path, resp.StatusCode, b)
	}
	check(http.MethodPost, "/v1/streams/1/records", "text/plain", "hello")
	check(http.MethodPost, "/v1/streams/1/records", "application/json", `{"records":[{"text":"a"},{"payload":"Yg==","ext_id":"7"}]}`)
	check(http.MethodGet, "/v1/streams/1/records?text=1", "", "")
	check(http.MethodGet, "/v1/streams/1", "", "")
	check(http.MethodGet, "/v1/streams", "", "")
	check(http.MethodPost, "/v1/streams/1/flush", "", "")
	check(http.MethodPost, "/v1/streams/1/seal", "", "")
	check(http.MethodGet, "/v1/streams/99", "", "")                      // an error answer
	check(http.MethodGet, "/v1/streams/1/records?from=nonsense", "", "") // another
	check(http.MethodGet, "/healthz", "", "")
	check(http.MethodGet, "/readyz", "", "")
	check(http.MethodGet, "/metrics", "", "")
}
