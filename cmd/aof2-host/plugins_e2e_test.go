package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

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

// TestPluginsCheckFreshMachine runs `aof2-host plugins check -write` with
// no configuration in an empty working directory, as the first command on
// a new machine: it creates ./data as serve would (it used to fail with
// "staging_dir: lstat …/data: no such file or directory").
func TestPluginsCheckFreshMachine(t *testing.T) {
	bin := hostBinaries(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	wd := t.TempDir()
	cmd := exec.CommandContext(ctx, filepath.Join(bin, "aof2-host"), "plugins", "check", "-write")
	cmd.Dir = wd
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "%s", out)
	require.Contains(t, string(out), "write probe ok (_aof2-probe/")
	fi, err := os.Stat(filepath.Join(wd, "data"))
	require.NoError(t, err)
	require.True(t, fi.IsDir())
}

// TestPluginsCheckProbeUnderPrefix: with credentials scoped to the prefix
// (the test plugin refuses writes outside its "scope" setting, as a cloud
// policy on bucket/prefix/* would) the write probe passes, because its
// object lies under the prefix like everything serve writes.
func TestPluginsCheckProbeUnderPrefix(t *testing.T) {
	bin := hostBinaries(t)
	dir := t.TempDir()
	cfg := filepath.Join(dir, "aof2.hcl")
	hcl := fmt.Sprintf("data_dir = %q\nplugin_dir = %q\ntier2 {\n  plugin = \"scoped\"\n  prefix = \"prod/aof2\"\n  settings = { scope = \"prod/aof2/\" }\n}\n",
		filepath.Join(dir, "data"), bin)
	require.NoError(t, os.WriteFile(cfg, []byte(hcl), 0o644))

	var out, errOut bytes.Buffer
	require.Equal(t, exitOK, run(context.Background(), []string{"plugins", "check", "-config", cfg, "-write"}, &out, &errOut), errOut.String())
	require.Contains(t, out.String(), "write probe ok (prod/aof2/_aof2-probe/")

	// The scope is enforced: a probe outside it fails the check.
	hcl = strings.Replace(hcl, `scope = "prod/aof2/"`, `scope = "other/"`, 1)
	require.NoError(t, os.WriteFile(cfg, []byte(hcl), 0o644))
	out.Reset()
	errOut.Reset()
	require.NotEqual(t, exitOK, run(context.Background(), []string{"plugins", "check", "-config", cfg, "-write"}, &out, &errOut))
	require.Contains(t, errOut.String(), "access denied")
}
