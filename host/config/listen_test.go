package config

import (
	"crypto/tls"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/aof2/aof2/internal/testcert"
)

func TestIsLoopback(t *testing.T) {
	for addr, want := range map[string]bool{
		"127.0.0.1:7400":       true,
		"127.9.8.7:1":          true,
		"localhost:7400":       true,
		"LOCALHOST:7400":       true,
		"[::1]:7400":           true,
		"[::ffff:127.0.0.1]:1": true,
		"0.0.0.0:7400":         false,
		":7400":                false,
		"[::]:7400":            false,
		"10.0.0.1:7400":        false,
		"example.com:7400":     false,
		"localhost.evil:1":     false,
		"nonsense":             false,
	} {
		require.Equal(t, want, IsLoopback(addr), addr)
	}
}

func TestRemoteListenNeedsProtection(t *testing.T) {
	dir := t.TempDir()
	cert, key := testcert.Files(t, dir)
	tokenFile := writeFile(t, dir, "token", "  s3cret-token\n")
	emptyFile := writeFile(t, dir, "empty", " \n")
	tlsBlock := "  tls {\n    cert_file = \"" + cert + "\"\n    key_file = \"" + key + "\"\n  }\n"

	for _, tc := range []struct {
		name, src string
		env       map[string]string
		args      []string
		refused   []string // keys named in the error; empty means accepted
	}{
		{name: "loopback default"},
		{name: "all interfaces, no auth", src: "listen {\n  grpc = \"0.0.0.0:7400\"\n}\n", refused: []string{"aof2.hcl:2:10: listen.grpc = \"0.0.0.0:7400\": listens beyond loopback"}},
		{name: "empty host, no auth", args: []string{"-listen-http", ":7401"}, refused: []string{"flag -listen-http: listen.http = \":7401\""}},
		{name: "both remote", env: map[string]string{"AOF2_LISTEN_GRPC": "[::]:1", "AOF2_LISTEN_HTTP": "10.1.2.3:2"}, refused: []string{"listen.grpc", "listen.http"}},
		{name: "hostname is not loopback", src: "listen {\n  http = \"db.internal:80\"\n}\n", refused: []string{"listen.http"}},
		{name: "token", src: "listen {\n  grpc = \"0.0.0.0:7400\"\n  auth_token = \"t\"\n}\n"},
		{name: "token from env", src: "listen {\n  grpc = \"0.0.0.0:7400\"\n}\n", env: map[string]string{"AOF2_LISTEN_AUTH_TOKEN": "t"}},
		{name: "token file", src: "listen {\n  grpc = \"0.0.0.0:7400\"\n  auth_token_file = \"" + tokenFile + "\"\n}\n"},
		{name: "tls", src: "listen {\n  grpc = \"0.0.0.0:7400\"\n" + tlsBlock + "}\n"},
		{name: "explicit insecure", src: "listen {\n  grpc = \"0.0.0.0:7400\"\n  allow_insecure_remote = true\n}\n"},
		{name: "explicit insecure by flag", src: "listen {\n  grpc = \"0.0.0.0:7400\"\n}\n", args: []string{"-listen-allow-insecure-remote"}},
		{name: "admin on loopback", args: []string{"-listen-admin", "127.0.0.1:7402"}},
		{name: "admin beyond loopback, no token", args: []string{"-listen-admin", "0.0.0.0:7402", "-listen-allow-insecure-remote"}, refused: []string{"listen.admin", "runtime profiles"}},
		{name: "admin beyond loopback with a token", args: []string{"-listen-admin", "0.0.0.0:7402", "-listen-auth-token", "t"}},
		{name: "metrics behind the token", src: "listen {\n  auth_token = \"t\"\n  metrics_auth = true\n}\n"},
		{name: "metrics auth without a token", args: []string{"-listen-metrics-auth"}, refused: []string{"listen.metrics_auth", "no token to require"}},
		{name: "metrics max streams below -1", args: []string{"-listen-metrics-max-streams", "-2"}, refused: []string{"listen.metrics_max_streams", "want -1"}},
		{name: "missing token file", args: []string{"-listen-auth-token-file", dir + "/absent"}, refused: []string{"listen.auth_token_file", "cannot read the token file"}},
		{name: "empty token file", args: []string{"-listen-auth-token-file", emptyFile}, refused: []string{"listen.auth_token_file", "the token file is empty"}},
		{name: "unreadable cert", src: "listen {\n  tls {\n    cert_file = \"" + dir + "/absent\"\n    key_file = \"" + key + "\"\n  }\n}\n", refused: []string{"aof2.hcl:3:17: listen.tls.cert_file", "cannot load"}},
		{name: "key does not match", src: "listen {\n  tls {\n    cert_file = \"" + cert + "\"\n    key_file = \"" + tokenFile + "\"\n  }\n}\n", refused: []string{"listen.tls.cert_file"}},
		{name: "client CA is not PEM", src: "listen {\n" + tlsBlock[:len(tlsBlock)-4] + "    client_ca_file = \"" + tokenFile + "\"\n  }\n}\n", refused: []string{"listen.tls.client_ca_file", "holds no PEM certificate"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := load(t, tc.src, tc.env, tc.args...)
			if len(tc.refused) == 0 {
				require.NoError(t, err)
				return
			}
			for _, w := range tc.refused {
				require.ErrorContains(t, err, w)
			}
		})
	}
}

func TestTokenAndTLS(t *testing.T) {
	dir := t.TempDir()
	cert, key := testcert.Files(t, dir)
	tokenFile := writeFile(t, dir, "token", "\n  s3cret-token \n")

	c := mustLoad(t, "", nil, "-listen-auth-token-file", tokenFile)
	require.Equal(t, "s3cret-token", c.Token())
	c = mustLoad(t, "", map[string]string{"AOF2_LISTEN_AUTH_TOKEN": "direct"})
	require.Equal(t, "direct", c.Token())

	c = mustLoad(t, "", nil, "-listen-tls-cert-file", cert, "-listen-tls-key-file", key)
	require.True(t, c.TLSEnabled())
	tc, err := c.TLSConfig()
	require.NoError(t, err)
	require.Len(t, tc.Certificates, 1)
	require.Equal(t, tls.NoClientCert, tc.ClientAuth)
	require.Equal(t, uint16(tls.VersionTLS12), tc.MinVersion)

	c = mustLoad(t, "", nil, "-listen-tls-cert-file", cert, "-listen-tls-key-file", key, "-listen-tls-client-ca-file", cert)
	tc, err = c.TLSConfig()
	require.NoError(t, err)
	require.Equal(t, tls.RequireAndVerifyClientCert, tc.ClientAuth)
	require.NotNil(t, tc.ClientCAs)
}
