package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/aof2/aof2/core"
	"github.com/aof2/aof2/host/config"
	"github.com/aof2/aof2/host/server"
	"github.com/aof2/aof2/host/server/servertest"
	"github.com/aof2/aof2/internal/testcert"
)

// TestAdminOverTLS: the admin commands reach a TLS host on loopback with
// -tls-ca-file (and a client certificate where the host requires one);
// without TLS flags, plaintext to a TLS host fails within -timeout
// instead of hanging (it hung for over ten minutes before).
func TestAdminOverTLS(t *testing.T) {
	dir := t.TempDir()
	cert, key := testcert.Files(t, dir)
	for _, tc := range []struct {
		name   string
		mutual bool
	}{{"server TLS", false}, {"mutual TLS", true}} {
		t.Run(tc.name, func(t *testing.T) {
			src := "listen {\n  tls {\n    cert_file = \"" + cert + "\"\n    key_file = \"" + key + "\"\n"
			if tc.mutual {
				src += "    client_ca_file = \"" + cert + "\"\n"
			}
			src += "  }\n}\n"
			path := filepath.Join(t.TempDir(), "aof2.hcl")
			require.NoError(t, os.WriteFile(path, []byte(src), 0o600))
			cfg, err := config.Load([]string{"-config", path, "-data-dir", t.TempDir()}, nil, config.WithDefaultFile(""), config.SkipPluginLookup())
			require.NoError(t, err)
			serverTLS, err := cfg.TLSConfig()
			require.NoError(t, err)
			h := servertest.Start(t, core.Config{}, server.Options{Token: "s3cret", TLS: serverTLS})
			_, err = h.Store.Stream(1)
			require.NoError(t, err)
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			base := []string{"flush", "-addr", h.GRPCAddr, "-token", "s3cret", "-stream", "1", "-timeout", "3s", "-connect-timeout", "3s"}

			var out, errOut bytes.Buffer
			start := time.Now()
			code := run(ctx, base, &out, &errOut)
			require.NotEqual(t, exitOK, code, "plaintext to a TLS host")
			require.Less(t, time.Since(start), 30*time.Second, "bounded by -timeout, not hung")

			args := append(base, "-tls-ca-file", cert)
			errOut.Reset()
			code = run(ctx, args, &out, &errOut)
			if tc.mutual {
				require.NotEqual(t, exitOK, code, "the host requires a client certificate")
				args = append(args, "-tls-cert-file", cert, "-tls-key-file", key)
				errOut.Reset()
				code = run(ctx, args, &out, &errOut)
			}
			require.Equal(t, exitOK, code, errOut.String())

			errOut.Reset()
			require.Equal(t, exitUsage, run(ctx, append(base, "-plaintext", "-tls"), &out, &errOut))
			require.Contains(t, errOut.String(), "-plaintext contradicts")
			errOut.Reset()
			require.Equal(t, exitUsage, run(ctx, append(base, "-tls-cert-file", cert), &out, &errOut))
		})
	}
}

// TestCallTimeout: a unary call with no deadline of its own gets -timeout;
// an earlier deadline of the caller's stays; 0 adds none.
func TestCallTimeout(t *testing.T) {
	var got time.Duration
	invoker := func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, opts ...grpc.CallOption) error {
		dl, ok := ctx.Deadline()
		if !ok {
			got = -1
			return nil
		}
		got = time.Until(dl)
		<-ctx.Done()
		return status.FromContextError(ctx.Err()).Err()
	}
	err := callTimeout(50*time.Millisecond)(context.Background(), "/aof2.v1.Admin/Dump", nil, nil, nil, invoker)
	require.ErrorContains(t, err, "/aof2.v1.Admin/Dump: no answer within 50ms (-timeout)")
	require.Equal(t, codes.DeadlineExceeded, status.Code(err))
	require.LessOrEqual(t, got, 50*time.Millisecond)

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel()
	_ = callTimeout(time.Hour)(ctx, "/m", nil, nil, nil, invoker)
	require.LessOrEqual(t, got, 10*time.Millisecond, "the caller's earlier deadline stays")

	require.NoError(t, callTimeout(0)(context.Background(), "/m", nil, nil, nil, invoker))
	require.Equal(t, time.Duration(-1), got, "0 adds no deadline")
}
