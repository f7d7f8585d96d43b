package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestPluginsCheck launches the fs plugin binary named by a config file the
// way serve would, and prints what it advertises; a missing plugin is a
// clear error.
func TestPluginsCheck(t *testing.T) {
	bin := hostBinaries(t)
	dir := t.TempDir()
	cfg := filepath.Join(dir, "aof2.hcl")
	hcl := fmt.Sprintf("data_dir = %q\nplugin_dir = %q\ntier2 {\n  plugin = \"fs\"\n  settings = { root = %q }\n}\n",
		filepath.Join(dir, "data"), bin, filepath.Join(dir, "tier2"))
	require.NoError(t, os.WriteFile(cfg, []byte(hcl), 0o644))
	require.NoError(t, os.MkdirAll(filepath.Join(dir, "data"), 0o755))

	var out, errOut bytes.Buffer
	require.Equal(t, exitOK, run(context.Background(), []string{"plugins", "check", "-config", cfg, "-write"}, &out, &errOut), errOut.String())
	for _, want := range []string{"backend", "contract", "v1.", "capabilities", "put_file=true", "write probe ok"} {
		require.Contains(t, out.String(), want)
	}

	bad := filepath.Join(dir, "bad.hcl")
	require.NoError(t, os.WriteFile(bad, []byte(fmt.Sprintf("plugin_dir = %q\ntier2 { plugin = \"nosuch\" }\n", bin)), 0o644))
	out.Reset()
	errOut.Reset()
	require.NotEqual(t, exitOK, run(context.Background(), []string{"plugins", "check", "-config", bad}, &out, &errOut))
	require.Contains(t, errOut.String(), "tier2.plugin")
}
