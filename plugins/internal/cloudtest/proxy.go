package cloudtest

import (
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
)

// Proxy is a reverse proxy in front of a server that injects faults into
// the requests a rule matches. It passes the Host header through, so
// signatures made for the proxy's address stay valid.
type Proxy struct {
	URL    string
	target *url.URL
	srv    *httptest.Server
	rp     *httputil.ReverseProxy
	mu     sync.Mutex
	rules  []*Rule
	// hostRewrite sends the target's Host instead of the proxy's.
	hostRewrite atomic.Bool
}

// RewriteHost makes the proxy send the server's own address as Host, for
// servers that route by it (fake-gcs-server's -public-host). Signed
// requests (S3 SigV4) need the default, which passes Host through.
func (p *Proxy) RewriteHost() { p.hostRewrite.Store(true) }

// Rule injects Action into the first Times requests Match accepts (Times 0:
// every one). Hits counts the requests it acted on.
type Rule struct {
	Match  func(*http.Request) bool
	Times  int64
	Action Action
	hits   atomic.Int64
}

// Hits is how many requests the rule acted on.
func (r *Rule) Hits() int64 { return r.hits.Load() }

// Action handles a faulty request; next forwards it to the server.
type Action func(w http.ResponseWriter, r *http.Request, next http.Handler)

// NewProxy starts a proxy to target (a base URL) that stops with the test.
func NewProxy(t testing.TB, target string) *Proxy {
	t.Helper()
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	p := &Proxy{target: u}
	p.rp = &httputil.ReverseProxy{Rewrite: func(pr *httputil.ProxyRequest) {
		pr.SetURL(u)
		if !p.hostRewrite.Load() {
			pr.Out.Host = pr.In.Host // keep what the client signed
		}
	}}
	p.srv = httptest.NewServer(http.HandlerFunc(p.serve))
	p.URL = p.srv.URL
	p.rp.ModifyResponse = func(resp *http.Response) error {
		// Keep resumable-upload session URLs pointing at the proxy.
		if loc := resp.Header.Get("Location"); loc != "" {
			resp.Header.Set("Location", strings.Replace(loc, u.Host, strings.TrimPrefix(p.URL, "http://"), 1))
		}
		return nil
	}
	t.Cleanup(p.srv.Close)
	return p
}

// Inject adds a rule and returns it.
func (p *Proxy) Inject(r *Rule) *Rule {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.rules = append(p.rules, r)
	return r
}

// Clear removes every rule.
func (p *Proxy) Clear() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.rules = nil
}

func (p *Proxy) serve(w http.ResponseWriter, r *http.Request) {
	p.mu.Lock()
	var act *Rule
	for _, rule := range p.rules {
		if rule.Match != nil && !rule.Match(r) {
			continue
		}
		if rule.Times > 0 && rule.hits.Load() >= rule.Times {
			continue
		}
		rule.hits.Add(1)
		act = rule
		break
	}
	p.mu.Unlock()
	if act == nil {
		p.rp.ServeHTTP(w, r)
		return
	}
	act.Action(w, r, p.rp)
}

// Respond answers with status, headers and body without reaching the server.
func Respond(status int, header map[string]string, body string) Action {
	return func(w http.ResponseWriter, r *http.Request, _ http.Handler) {
		_, _ = io.Copy(io.Discard, r.Body)
		for k, v := range header {
			w.Header().Set(k, v)
		}
		w.WriteHeader(status)
		_, _ = io.WriteString(w, body)
	}
}

// ResetAfter reads n bytes of the request body, then resets the
// connection (TCP RST) without answering: an upload cut mid-way.
func ResetAfter(n int64) Action {
	return func(w http.ResponseWriter, r *http.Request, _ http.Handler) {
		_, _ = io.CopyN(io.Discard, r.Body, n)
		hj, ok := w.(http.Hijacker)
		if !ok {
			panic(http.ErrAbortHandler)
		}
		conn, _, err := hj.Hijack()
		if err != nil {
			panic(http.ErrAbortHandler)
		}
		if tc, ok := conn.(*net.TCPConn); ok {
			_ = tc.SetLinger(0)
		}
		_ = conn.Close()
	}
}

// TruncateBody forwards the request but lets only the first n bytes of the
// response body through, then cuts the connection.
func TruncateBody(n int64) Action {
	return func(w http.ResponseWriter, r *http.Request, next http.Handler) {
		next.ServeHTTP(&truncatingWriter{ResponseWriter: w, left: n}, r)
	}
}

type truncatingWriter struct {
	http.ResponseWriter
	left int64
}

func (t *truncatingWriter) Write(p []byte) (int, error) {
	if int64(len(p)) <= t.left {
		t.left -= int64(len(p))
		return t.ResponseWriter.Write(p)
	}
	n, _ := t.ResponseWriter.Write(p[:t.left])
	t.left = 0
	if f, ok := t.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
	_ = n
	// Abort the handler: the server closes the connection mid-body.
	panic(http.ErrAbortHandler)
}

// Flush forwards to the underlying writer.
func (t *truncatingWriter) Flush() {
	if f, ok := t.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// Method matches requests with one of the methods.
func Method(methods ...string) func(*http.Request) bool {
	return func(r *http.Request) bool {
		for _, m := range methods {
			if r.Method == m {
				return true
			}
		}
		return false
	}
}

// Path matches requests whose path contains s.
func Path(s string) func(*http.Request) bool {
	return func(r *http.Request) bool {
		return strings.Contains(r.URL.Path, s) || strings.Contains(r.URL.RawPath, s)
	}
}

// All matches requests every predicate accepts.
func All(preds ...func(*http.Request) bool) func(*http.Request) bool {
	return func(r *http.Request) bool {
		for _, p := range preds {
			if !p(r) {
				return false
			}
		}
		return true
	}
}
