package server

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/aof2/aof2/api"
	aof2v1 "github.com/aof2/aof2/api/proto/aof2/v1"
	"github.com/aof2/aof2/api/wire"
	"github.com/aof2/aof2/core"
	"github.com/aof2/aof2/host/cluster"
)

// Handler returns the HTTP API:
//
//	POST /v1/streams/{id}/records   append (raw body = one record, or JSON)
//	GET  /v1/streams/{id}/records   read (?from=<id>|ordinal=<n>&limit=&max_bytes=&text=1)
//	GET  /v1/streams/{id}/tail      records as they become durable (Server-Sent Events)
//	GET  /v1/streams/{id}           stream info
//	GET  /v1/streams                list streams
//	POST /v1/streams/{id}/flush     make every appended record durable
//	POST /v1/streams/{id}/seal      seal the active segment
//	GET  /metrics                   Prometheus (when Options.Gatherer is set)
//	GET  /healthz                   200 while the process is up
//	GET  /readyz                    200 once the node is ready, else 503
//	GET  /openapi.json              this API as an OpenAPI 3 document (api/openapi.json)
//
// Ids in JSON are strings: record ids as "<segment>:<offset>" (the decimal
// uint64 is accepted too), stream ids, ext ids and timestamps as decimal
// strings, since they can exceed what a JSON number holds exactly.
// Counts are numbers. Errors are JSON {"error","code",…} with the status
// from the error table.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	for _, r := range s.routes() {
		mux.Handle(r.pattern, r.h)
	}
	return mux
}

// route is one HTTP route the server registers.
type route struct {
	pattern string // "METHOD /path", as http.ServeMux takes it
	h       http.Handler
}

// routes are the HTTP routes: api/openapi.json documents each of them
// (a test holds the two to each other).
func (s *Server) routes() []route {
	guarded := func(pattern string, h http.HandlerFunc) route { return route{pattern, s.auth.middleware(h)} }
	rs := []route{
		guarded("POST /v1/streams/{id}/records", s.httpAppend),
		guarded("GET /v1/streams/{id}/records", s.httpRead),
		guarded("GET /v1/streams/{id}/tail", s.httpTail),
		guarded("GET /v1/streams/{id}", s.httpInfo),
		guarded("GET /v1/streams", s.httpList),
		guarded("POST /v1/streams/{id}/flush", s.httpFlush),
		guarded("POST /v1/streams/{id}/seal", s.httpSeal),
		{"GET /healthz", http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			writeText(w, http.StatusOK, "ok\n")
		})},
		{"GET /readyz", http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			if !s.ready() {
				writeText(w, http.StatusServiceUnavailable, "not ready\n")
				return
			}
			writeText(w, http.StatusOK, "ready\n")
		})},
		{"GET /openapi.json", http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write(api.OpenAPI)
		})},
	}
	if s.opts.Gatherer != nil {
		var h http.Handler = promhttp.HandlerFor(s.opts.Gatherer, promhttp.HandlerOpts{})
		if s.opts.MetricsAuth {
			h = s.auth.middleware(h)
		}
		rs = append(rs, route{"GET /metrics", h})
	}
	return rs
}

func writeText(w http.ResponseWriter, code int, body string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_, _ = w.Write([]byte(body))
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v) // the status is out; a failed write means the client left
}

// writeError answers with err as the error table says, and logs the
// server's own faults.
func (s *Server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	s.logFault(r.Method+" "+r.URL.Path, err)
	var nl *cluster.NotLeaderError
	if errors.As(err, &nl) && nl.Leader.HTTP != "" {
		// 307 keeps the method and body: curl -L and most HTTP clients
		// resend the request to the leader.
		scheme := "http"
		if r.TLS != nil {
			scheme = "https"
		}
		w.Header().Set("Location", scheme+"://"+nl.Leader.HTTP+r.URL.RequestURI())
		_, _, body := httpError(err)
		writeJSON(w, http.StatusTemporaryRedirect, body)
		return
	}
	writeErrorBody(w, err)
}

func writeErrorBody(w http.ResponseWriter, err error) {
	code, h, body := httpError(err)
	for k, v := range h {
		w.Header()[k] = v
	}
	writeJSON(w, code, body)
}

// pathStream parses the {id} path segment.
func pathStream(r *http.Request) (core.StreamID, error) {
	id, err := wire.ParseStreamID(r.PathValue("id"))
	if err != nil {
		return 0, fmt.Errorf("%w: %w", err, ErrBadRequest)
	}
	return id, nil
}

// lookupPath returns the existing stream the path names.
func (s *Server) lookupPath(r *http.Request) (*core.Stream, error) {
	id, err := pathStream(r)
	if err != nil {
		return nil, err
	}
	return s.lookup(id)
}

// infoJSON is GET /v1/streams/{id}.
type infoJSON struct {
	StreamID       string `json:"stream_id"`
	Records        uint64 `json:"records"`
	DurableRecords uint64 `json:"durable_records"`
	FirstOrdinal   uint64 `json:"first_ordinal"`
	Bytes          uint64 `json:"bytes"`
	DurableBytes   uint64 `json:"durable_bytes"`
	DurableMark    string `json:"durable_mark"`
	Segments       uint32 `json:"segments"`
	Resident       uint32 `json:"resident"`
	Sealed         uint32 `json:"sealed"`
	MaxRecordSize  uint64 `json:"max_record_size"`
	// Decimal strings, like every other id (JSON numbers lose u64 bits).
	CoordinatorWatermark string `json:"coordinator_watermark"`
	LastExtID            string `json:"last_ext_id"`
	Failed               string `json:"failed,omitempty"`
	Refused              string `json:"refused,omitempty"`
}

func infoToJSON(in *aof2v1.StreamInfoResponse) infoJSON {
	return infoJSON{
		StreamID: fmt.Sprint(in.StreamId), Records: in.Records, DurableRecords: in.DurableRecords,
		FirstOrdinal: in.FirstOrdinal, Bytes: in.Bytes, DurableBytes: in.DurableBytes,
		DurableMark: wire.FormatRecordID(core.RecordID(in.DurableMark)), Segments: in.Segments,
		Resident: in.Resident, Sealed: in.Sealed, MaxRecordSize: in.MaxRecordSize, Failed: in.Failed,
		CoordinatorWatermark: strconv.FormatUint(in.CoordinatorWatermark, 10), LastExtID: strconv.FormatUint(in.LastExtId, 10),
		Refused: in.Refused,
	}
}

func (s *Server) httpInfo(w http.ResponseWriter, r *http.Request) {
	str, err := s.lookupPath(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, infoToJSON(infoToProto(str)))
}

func (s *Server) httpFlush(w http.ResponseWriter, r *http.Request) {
	str, err := s.lookupPath(r)
	if err == nil {
		err = str.FlushAll(r.Context())
	}
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, infoToJSON(infoToProto(str)))
}

func (s *Server) httpSeal(w http.ResponseWriter, r *http.Request) {
	str, err := s.lookupPath(r)
	var c *cluster.Node
	if err == nil {
		c, err = s.cluster()
	}
	switch {
	case err != nil:
	case c != nil:
		err = c.Seal(r.Context(), str.ID(), 0)
	default:
		err = str.Seal(r.Context())
	}
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, infoToJSON(infoToProto(str)))
}

type brokenJSON struct {
	StreamID string `json:"stream_id"`
	Error    string `json:"error"`
}

type listJSON struct {
	Streams []string     `json:"streams"`
	Broken  []brokenJSON `json:"broken,omitempty"`
}

func (s *Server) httpList(w http.ResponseWriter, r *http.Request) {
	resp, err := (&logService{s: s}).ListStreams(r.Context(), &aof2v1.ListStreamsRequest{})
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	out := listJSON{Streams: make([]string, len(resp.StreamIds))}
	for i, id := range resp.StreamIds {
		out.Streams[i] = fmt.Sprint(id)
	}
	for _, b := range resp.Broken {
		out.Broken = append(out.Broken, brokenJSON{StreamID: fmt.Sprint(b.StreamId), Error: b.Error})
	}
	writeJSON(w, http.StatusOK, out)
}
