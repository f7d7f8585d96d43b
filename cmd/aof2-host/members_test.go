package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/aof2/aof2/client"
	"github.com/aof2/aof2/core"
	"github.com/aof2/aof2/host/config"
	"github.com/aof2/aof2/host/server"
	"github.com/aof2/aof2/host/server/servertest"
	"github.com/aof2/aof2/internal/testcert"
)

// TestMemberClientOptions: a member dials another member's client API as
// their shared API setup says — with its token over plaintext, with its
// token and its own certificate over mutual TLS — and the API the same
// configuration serves accepts it. Over mTLS, a client without the
// member's certificate is refused: the certificate is what gets it in.
func TestMemberClientOptions(t *testing.T) {
	dir := t.TempDir()
	cert, key := testcert.Files(t, dir)
	for _, tc := range []struct {
		name string
		tls  string
	}{
		{"plaintext", ""},
		{"mutual TLS", "  tls {\n    cert_file = \"" + cert + "\"\n    key_file = \"" + key + "\"\n    client_ca_file = \"" + cert + "\"\n  }\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src := "listen {\n  grpc = \"127.0.0.1:0\"\n  http = \"127.0.0.1:0\"\n  auth_token = \"s3cret\"\n" + tc.tls + "}\n"
			path := filepath.Join(t.TempDir(), "aof2.hcl")
			require.NoError(t, os.WriteFile(path, []byte(src), 0o600))
			cfg, err := config.Load([]string{"-config", path, "-data-dir", t.TempDir()}, nil, config.WithDefaultFile(""), config.SkipPluginLookup())
			require.NoError(t, err)
			serverTLS, err := cfg.TLSConfig()
			require.NoError(t, err)
			h := servertest.Start(t, core.Config{}, server.Options{Token: cfg.Token(), TLS: serverTLS})

			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			opts, err := memberClientOptions(cfg)
			require.NoError(t, err)
			c, err := client.Dial(ctx, h.GRPCAddr, opts...)
			require.NoError(t, err)
			defer c.Close()
			ids, err := c.Append(ctx, 1, []byte("from a member"))
			require.NoError(t, err)
			require.Len(t, ids, 1)

			if serverTLS != nil {
				roots := x509.NewCertPool()
				pemBytes, err := os.ReadFile(cert)
				require.NoError(t, err)
				require.True(t, roots.AppendCertsFromPEM(pemBytes))
				actx, cancel := context.WithTimeout(ctx, 3*time.Second)
				defer cancel()
				anon, err := client.Dial(actx, h.GRPCAddr, client.WithTLS(&tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12}), client.WithToken("s3cret"))
				if err == nil {
					defer anon.Close()
					_, err = anon.Append(actx, 1, []byte("no certificate"))
				}
				require.Error(t, err, "a client without the member's certificate")
				// And nothing of its got in: the stream holds the member's record alone.
				info, err := c.Info(ctx, 1)
				require.NoError(t, err)
				require.EqualValues(t, 1, info.Records, "nothing appended without the certificate")
			}
		})
	}
}
