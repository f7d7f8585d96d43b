package main

import (
	"context"
	"os"
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
