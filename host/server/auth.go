package server

import (
	"context"
	"crypto/subtle"
	"net/http"
	"strings"

	"google.golang.org/grpc"
	"google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
)

// tokenAuth checks bearer tokens. The zero value (no token) lets every
// request through.
type tokenAuth struct {
	token []byte
}

// check accepts an Authorization header value. The comparison takes the
// same time wherever the first differing byte is.
func (a tokenAuth) check(header string) bool {
	if len(a.token) == 0 {
		return true
	}
	scheme, tok, ok := strings.Cut(header, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return false
	}
	return subtle.ConstantTimeCompare([]byte(strings.TrimSpace(tok)), a.token) == 1
}

// exempt reports whether a gRPC method needs no token: the health service,
// like /healthz and /readyz, answers probes that carry none.
func exempt(fullMethod string) bool {
	return strings.HasPrefix(fullMethod, "/"+grpc_health_v1.Health_ServiceDesc.ServiceName+"/")
}

func (a tokenAuth) checkContext(ctx context.Context) error {
	if len(a.token) == 0 {
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
	if len(a.token) == 0 {
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
