package config

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// load writes src (when not empty) to a file and loads it with env and
// extra args, without looking for a plugin binary.
func load(t *testing.T, src string, env map[string]string, args ...string) (*Config, error) {
	t.Helper()
	if src != "" {
		path := writeFile(t, t.TempDir(), "aof2.hcl", src)
		args = append([]string{"-config", path}, args...)
	}
	var environ []string
	for k, v := range env {
		environ = append(environ, k+"="+v)
	}
	return Load(args, environ, WithDefaultFile(""), SkipPluginLookup())
}

func mustLoad(t *testing.T, src string, env map[string]string, args ...string) *Config {
	t.Helper()
	c, err := load(t, src, env, args...)
	require.NoError(t, err)
	return c
}

func writeFile(t *testing.T, dir, name, content string) string {
	t.Helper()
	path := filepath.Join(dir, name)
	require.NoError(t, os.WriteFile(path, []byte(content), 0o600))
	return path
}

// tlsFiles writes a self-signed certificate and its key (the certificate
// doubles as a client CA) and returns their paths.
func tlsFiles(t *testing.T, dir string) (cert, key string) {
	t.Helper()
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "aof2-test"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
		DNSNames:              []string{"localhost"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &priv.PublicKey, priv)
	require.NoError(t, err)
	keyDER, err := x509.MarshalECPrivateKey(priv)
	require.NoError(t, err)
	cert = writeFile(t, dir, "cert.pem", string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})))
	key = writeFile(t, dir, "key.pem", string(pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER})))
	return cert, key
}

// fakePlugin writes an executable aof2-plugin-<name> into dir.
func fakePlugin(t *testing.T, dir, name string) string {
	t.Helper()
	path := filepath.Join(dir, PluginPrefix+name)
	require.NoError(t, os.WriteFile(path, []byte("#!/bin/sh\nexit 1\n"), 0o755))
	return path
}

// inWD joins elem under the working directory: what Load makes of a
// relative path.
func inWD(t *testing.T, elem ...string) string {
	t.Helper()
	wd, err := os.Getwd()
	require.NoError(t, err)
	return filepath.Join(append([]string{wd}, elem...)...)
}
