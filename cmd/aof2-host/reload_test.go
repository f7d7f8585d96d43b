package main

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/aof2/aof2/host/config"
	"github.com/aof2/aof2/internal/testcert"
)

// TestCertReloader: new connections get the certificate the last reload
// read from the same files (a renewed certificate, SIGHUP).
func TestCertReloader(t *testing.T) {
	dir := t.TempDir()
	cert, key := testcert.Files(t, dir)
	cfgFile := filepath.Join(dir, "aof2.hcl")
	require.NoError(t, os.WriteFile(cfgFile, []byte("listen {\n  tls {\n    cert_file = \""+cert+"\"\n    key_file = \""+key+"\"\n  }\n}\n"), 0o600))
	load := func() *config.Config {
		c, err := config.Load([]string{"-config", cfgFile, "-data-dir", dir}, nil, config.WithDefaultFile(""), config.SkipPluginLookup())
		require.NoError(t, err)
		return c
	}
	c := load()
	base, err := c.TLSConfig()
	require.NoError(t, err)
	r := &certReloader{}
	wrapped := r.wrap(base)
	require.Empty(t, wrapped.Certificates)
	first, err := wrapped.GetCertificate(nil)
	require.NoError(t, err)
	require.Equal(t, base.Certificates[0].Certificate, first.Certificate)

	testcert.Files(t, dir) // a renewed certificate under the same names
	require.NoError(t, r.reload(load()))
	second, err := wrapped.Clone().GetCertificate(nil)
	require.NoError(t, err)
	require.NotEqual(t, first.Certificate, second.Certificate, "the renewed certificate is served")
}
