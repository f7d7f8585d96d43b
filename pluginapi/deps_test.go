package pluginapi_test

import (
	"os/exec"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// goList runs `go list` with args and returns the fields of its output.
func goList(t *testing.T, args ...string) []string {
	t.Helper()
	out, err := exec.Command("go", append([]string{"list"}, args...)...).CombinedOutput()
	require.NoError(t, err, "go list %s\n%s", strings.Join(args, " "), out)
	return strings.Fields(string(out))
}

// A backend author's whole world is pluginapi + conformance: neither they
// nor the plugins may depend on the engine (docs/plugin-contract.md).
func TestNoEngineDependencies(t *testing.T) {
	deps := goList(t, "-deps", "-test", "-f", "{{.ImportPath}}",
		"github.com/aof2/aof2/pluginapi/...",
		"github.com/aof2/aof2/conformance/...",
		"github.com/aof2/aof2/plugins/...",
		"github.com/aof2/aof2/cmd/aof2-conformance")
	for _, p := range deps {
		if strings.HasPrefix(p, "github.com/aof2/aof2/core") {
			t.Errorf("the plugin side depends on the engine package %s", p)
		}
	}
}

// A plugin binary links the contract and Serve, never the host's
// machinery: no launcher or supervisor (pluginapi/host) and no Prometheus
// client, whose metrics live on the host.
func TestPluginBinariesLinkNoHostMachinery(t *testing.T) {
	mains := goList(t, "-f", "{{if eq .Name \"main\"}}{{.ImportPath}}{{end}}",
		"github.com/aof2/aof2/plugins/...",
		"github.com/aof2/aof2/conformance/fake/...",
		"github.com/aof2/aof2/pluginapi/internal/...")
	var bins []string
	for _, m := range mains {
		if strings.Contains(m, "/cmd/") || strings.HasSuffix(m, "/testplugin") {
			bins = append(bins, m)
		}
	}
	// fs, s3, gcs, azure, the fake and the host tests' testplugin.
	require.GreaterOrEqual(t, len(bins), 6, "plugin binaries found: %v", bins)
	for _, bin := range bins {
		for _, p := range goList(t, "-deps", "-f", "{{.ImportPath}}", bin) {
			if strings.HasPrefix(p, "github.com/prometheus/client_golang") || p == "github.com/aof2/aof2/pluginapi/host" {
				t.Errorf("plugin binary %s links %s", bin, p)
			}
		}
	}
}
