package config

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

const examplesDir = "../../examples"

// TestExamplesLoad loads every sample configuration and checks that the
// plugin settings it uses, commented-out alternatives included, are ones
// the plugin accepts (its ConfigKeys, read from the plugin's source so
// the host does not link the plugins).
func TestExamplesLoad(t *testing.T) {
	for _, backend := range []string{"fs", "s3", "gcs", "azure"} {
		t.Run(backend, func(t *testing.T) {
			path := filepath.Join(examplesDir, "aof2-"+backend+".hcl")
			c, err := Load([]string{"-config", path}, nil, WithDefaultFile(""), SkipPluginLookup())
			require.NoError(t, err)
			require.Equal(t, backend, c.Tier2.Plugin)
			require.True(t, c.Tier2Enabled())

			known := pluginConfigKeys(t, backend)
			require.NotEmpty(t, known)
			for name := range c.Tier2.Settings {
				require.Contains(t, known, name, "setting %q of %s", name, path)
			}
			src, err := os.ReadFile(path)
			require.NoError(t, err)
			for _, name := range commentedSettings(string(src)) {
				require.Contains(t, known, name, "commented setting %q of %s", name, path)
			}
			for _, v := range c.Tier2.Settings {
				require.NotContains(t, strings.ToLower(v), "secret", "no literal secrets in %s", path)
			}
		})
	}
}

var commentedSetting = regexp.MustCompile(`^\s*#\s*([a-z_]+)\s*=`)

// commentedSettings returns the names assigned in comments inside the
// settings map.
func commentedSettings(src string) []string {
	var names []string
	in := false
	for line := range strings.SplitSeq(src, "\n") {
		switch {
		case strings.Contains(line, "settings = {"):
			in = true
		case in && strings.TrimSpace(line) == "}":
			in = false
		case in:
			if m := commentedSetting.FindStringSubmatch(line); m != nil {
				names = append(names, m[1])
			}
		}
	}
	return names
}

// pluginConfigKeys reads `var ConfigKeys = []string{...}` from the
// plugin package's source.
func pluginConfigKeys(t *testing.T, backend string) []string {
	dir := filepath.Join("..", "..", "plugins", backend)
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	var keys []string
	for _, e := range entries {
		if !strings.HasSuffix(e.Name(), ".go") || strings.HasSuffix(e.Name(), "_test.go") {
			continue
		}
		f, err := parser.ParseFile(token.NewFileSet(), filepath.Join(dir, e.Name()), nil, 0)
		require.NoError(t, err)
		ast.Inspect(f, func(n ast.Node) bool {
			vs, ok := n.(*ast.ValueSpec)
			if !ok || len(vs.Names) != 1 || vs.Names[0].Name != "ConfigKeys" || len(vs.Values) != 1 {
				return true
			}
			for _, elt := range vs.Values[0].(*ast.CompositeLit).Elts {
				s, err := strconv.Unquote(elt.(*ast.BasicLit).Value)
				require.NoError(t, err)
				keys = append(keys, s)
			}
			return false
		})
	}
	return keys
}

// TestClusterExamplesLoad: the three nodes of make cluster load, each
// listed in the shared peers.
func TestClusterExamplesLoad(t *testing.T) {
	var peers []string
	for i := 1; i <= 3; i++ {
		path := filepath.Join(examplesDir, "cluster", fmt.Sprintf("n%d.hcl", i))
		c, err := Load([]string{"-config", path}, nil, WithDefaultFile(""), SkipPluginLookup())
		require.NoError(t, err)
		require.True(t, c.Clustered())
		require.Contains(t, c.Cluster.Peers, c.Cluster.NodeID+"="+c.Cluster.RaftAddr)
		if peers != nil {
			require.Equal(t, peers, c.Cluster.Peers, "every node has the same peers")
		}
		peers = c.Cluster.Peers
	}
}
