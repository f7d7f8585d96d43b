package tier2

import (
	"os/exec"
	"strings"
	"testing"
)

// docs/README.md#package-dependency-rules: the engine never imports a backend; tier2 sees backends only
// through pluginapi (its tests may serve plugins/fs in-process).
func TestNoPluginDependencies(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "-f", "{{.ImportPath}}", ".").CombinedOutput()
	if err != nil {
		t.Skipf("go list unavailable: %v\n%s", err, out)
	}
	for _, p := range strings.Fields(string(out)) {
		if strings.HasPrefix(p, "github.com/aof2/aof2/plugins/") || strings.HasPrefix(p, "github.com/aof2/aof2/conformance") {
			t.Errorf("core/tier2 depends on %s", p)
		}
	}
}
