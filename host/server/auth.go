package server

import (
	"context"
	"crypto/subtle"
	"errors"
	"net/http"
	"strings"
	"sync/atomic"

	"google.golang.org/grpc"
	"google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
)

// tokenAuth checks bearer tokens. Without a token (nil token) it lets
// every request through; with one, the token may be replaced (SetToken)
// but not removed, and none can be added: that changes which listeners
// the configuration allows, a restart's business.
type tokenAuth struct {
	token *atomic.Pointer[[]byte] // nil: no token
}

func newTokenAuth(token string) tokenAuth {
	if token == "" {
		return tokenAuth{}
	}
	a := tokenAuth{token: &atomic.Pointer[[]byte]{}}
	b := []byte(token)
	a.token.Store(&b)
	return a
}

func (a tokenAuth) enabled() bool { return a.token != nil }

// check accepts an Authorization header value. The comparison takes the
// same time wherever the first differing byte is.
func (a tokenAuth) check(header string) bool {
	if !a.enabled() {
		return true
	}
	scheme, tok, ok := strings.Cut(header, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return false
	}
	return subtle.ConstantTimeCompare([]byte(strings.TrimSpace(tok)), *a.token.Load()) == 1
}

// ErrTokenChange refuses a SetToken that would add or remove the token.
var ErrTokenChange = errors.New("server: a token can be replaced, not added or removed, without a restart")

// SetToken replaces the bearer token clients must present (a rotated
// listen.auth_token_file, on SIGHUP); requests already admitted are not
// affected.
func (s *Server) SetToken(token string) error {
	if !s.auth.enabled() || token == "" {
		if s.auth.enabled() || token != "" {
			return ErrTokenChange
		}
		return nil
	}
	b := []byte(token)
	s.auth.token.Store(&b)
	return nil
}

// exempt reports whether a gRPC method needs no token: the health service,
// like /healthz and /readyz, answers probes that carry none.
func exempt(fullMethod string) bool {
	return strings.HasPrefix(fullMethod, "/"+grpc_health_v1.Health_ServiceDesc.ServiceName+"/")
}

func (a tokenAuth) checkContext(ctx context.Context) error {
	if !a.enabled() {
		return nil
	}
	md, _ := metadata.FromIncomingContext(ctx)
	if vals := md.Get("authorization"); len(vals) != 1 || !a.check(vals[0]) {
		return errUnauthenticated
	}
	return nil
}

// unary and stream are the gRPC interceptors.
func (a tokenAuth) unary(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	if !exempt(info.FullMethod) {
		if err := a.checkContext(ctx); err != nil {
			return nil, err
		}
	}
	return handler(ctx, req)
}

func (a tokenAuth) stream(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	if !exempt(info.FullMethod) {
		if err := a.checkContext(ss.Context()); err != nil {
			return err
		}
	}
	return handler(srv, ss)
}

// middleware guards an HTTP handler with the token.
func (a tokenAuth) middleware(next http.Handler) http.Handler {
	if !a.enabled() {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		vals := r.Header.Values("Authorization")
		if len(vals) != 1 || !a.check(vals[0]) {
			writeErrorBody(w, errUnauthenticated)
			return
		}
		next.ServeHTTP(w, r)
	})
}
