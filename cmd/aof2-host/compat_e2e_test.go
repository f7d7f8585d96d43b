package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/aof2/aof2/internal/testbin"
)

// TestServeWithOtherContractMinors serves this host with a plugin of an
// older contract minor (fewer capabilities: the host streams Put and Get
// instead of PutFile and GetFile, and reads no ranges)
// and with one of a newer minor (fields and a capability the host does not
// know): a sealed segment reaches tier 2 and reads back with each
// (docs/plugin-contract.md#versioning; the fixtures are testplugin's
// older-minor and newer-minor modes, picked by the binary's name).
func TestServeWithOtherContractMinors(t *testing.T) {
	bin := hostBinaries(t) // skips under -short
	src := testbin.Path(t, "testplugin")
	for _, mode := range []string{"older-minor", "newer-minor"} {
		t.Run(mode, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
			defer cancel()
			dir := t.TempDir()
			data, err := os.ReadFile(src)
			require.NoError(t, err)
			require.NoError(t, os.WriteFile(filepath.Join(dir, "aof2-plugin-"+mode), data, 0o755))
			serveWithPlugin(t, ctx, bin, dir, mode)
		})
	}
}

// TestServeRefusesABackendAWriterCannotUse: a plugin without conditional
// writes cannot carry the prefix claim; serve says so and exits instead
// of starting and uploading nothing, and plugins check warns.
func TestServeRefusesABackendAWriterCannotUse(t *testing.T) {
	bin := hostBinaries(t) // skips under -short
	dir := t.TempDir()
	data, err := os.ReadFile(testbin.Path(t, "testplugin"))
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "aof2-plugin-unconditional"), data, 0o755))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	args := append([]string{"serve"}, defaultHostArgs(filepath.Join(t.TempDir(), "data"))...)
	args = append(args, "-plugin-dir", dir, "-tier2-plugin", "unconditional")
	out, err := exec.CommandContext(ctx, filepath.Join(bin, "aof2-host"), args...).CombinedOutput()
	require.Error(t, err, "serve must exit: %s", out)
	require.NoError(t, ctx.Err(), "serve must exit on its own: %s", out)
	require.Contains(t, string(out), "does not advertise if_absent, if_match, which a writer needs")

	t.Setenv("AOF2_PLUGIN_DIR", dir)
	t.Setenv("AOF2_TIER2_PLUGIN", "unconditional")
	t.Setenv("AOF2_DATA_DIR", filepath.Join(t.TempDir(), "check"))
	var stdout, stderr bytes.Buffer
	require.Equal(t, exitOK, run(ctx, []string{"plugins", "check"}, &stdout, &stderr), stderr.String())
	require.Contains(t, stdout.String(), "a writer host refuses this backend: it lacks if_absent, if_match")
}
