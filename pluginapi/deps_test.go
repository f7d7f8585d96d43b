package pluginapi_test

import (
	"os/exec"
	"strings"
	"testing"
)

// A backend author's whole world is pluginapi + conformance: neither they
// nor the plugins may depend on the engine (SPEC.md §2).
func TestNoEngineDependencies(t *testing.T) {
	pkgs := []string{
		"github.com/aof2/aof2/pluginapi/...",
		"github.com/aof2/aof2/conformance/...",
		"github.com/aof2/aof2/plugins/...",
		"github.com/aof2/aof2/cmd/aof2-conformance",
	}
	args := append([]string{"list", "-deps", "-test", "-f", "{{.ImportPath}}"}, pkgs...)
	out, err := exec.Command("go", args...).CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	for _, p := range strings.Fields(string(out)) {
		if strings.HasPrefix(p, "github.com/aof2/aof2/core") {
			t.Errorf("the plugin side depends on the engine package %s", p)
		}
	}
}
