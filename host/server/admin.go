package server

import (
	"net/http"
	"net/http/pprof"
)

// AdminHandler serves Go's runtime profiles under /debug/pprof/ (heap,
// goroutine, CPU profile, execution trace), behind the token when one is
// configured. The profiles can hold payload bytes (a heap profile shows
// memory): the host serves this only on its own opt-in listener
// (admin.listen), never on the client API's, and refuses a non-loopback
// one without a token (host/config).
func (s *Server) AdminHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /debug/pprof/", pprof.Index)
	mux.HandleFunc("GET /debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("GET /debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("GET /debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("POST /debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("GET /debug/pprof/trace", pprof.Trace)
	return s.auth.middleware(mux)
}
