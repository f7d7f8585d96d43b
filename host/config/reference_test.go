package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestConfigDocIsCurrent: docs/config.md is what `aof2-host config
// reference -format markdown` prints today; regenerate it with `make docs`.
func TestConfigDocIsCurrent(t *testing.T) {
	got, err := os.ReadFile(filepath.Join("..", "..", "docs", "config.md"))
	require.NoError(t, err)
	require.Equal(t, ReferenceMarkdown(), string(got), "docs/config.md is stale: run `make docs`")
}

// TestReferenceNamesEveryKey: each key appears in both references with
// its variable and flag, and each flag's help says its default and
// variable (`aof2-host serve -h`).
func TestReferenceNamesEveryKey(t *testing.T) {
	text, md := Reference(), ReferenceMarkdown()
	for _, k := range keys {
		for _, want := range []string{referenceEnv(k), referenceFlag(k)} {
			require.Contains(t, text, want, k.path)
			require.Contains(t, md, want, k.path)
		}
		u := flagUsage(k)
		require.Contains(t, u, "env "+referenceEnv(k), k.path)
		if k.def != "" && k.labelled == "" && k.kind != kindList && k.kind != kindEntries {
			require.True(t, strings.Contains(u, "default "+k.def+";"), "%s: %s", k.path, u)
		}
	}
}
