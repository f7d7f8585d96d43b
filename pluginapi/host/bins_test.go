package host_test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
)

// Plugin binaries the host tests launch, built on first use so the tests
// work under plain `go test` from a clean clone.
var bins = map[string]string{
	"testplugin":       "github.com/aof2/aof2/pluginapi/internal/testplugin",
	"aof2-plugin-fs":   "github.com/aof2/aof2/plugins/fs/cmd/aof2-plugin-fs",
	"aof2-plugin-fake": "github.com/aof2/aof2/conformance/fake/cmd/aof2-plugin-fake",
}

var (
	binMu    sync.Mutex
	binDir   string
	binBuilt = map[string]string{}
)

func bin(t testing.TB, name string) string {
	t.Helper()
	binMu.Lock()
	defer binMu.Unlock()
	if p, ok := binBuilt[name]; ok {
		return p
	}
	if binDir == "" {
		d, err := os.MkdirTemp("", "aof2-pluginapi-bins-*")
		if err != nil {
			t.Fatal(err)
		}
		binDir = d
	}
	out := filepath.Join(binDir, name)
	if b, err := exec.Command("go", "build", "-o", out, bins[name]).CombinedOutput(); err != nil {
		t.Fatalf("building %s: %v\n%s", name, err, b)
	}
	binBuilt[name] = out
	return out
}

func TestMain(m *testing.M) {
	code := m.Run()
	if binDir != "" {
		_ = os.RemoveAll(binDir)
	}
	if code != 0 {
		fmt.Fprintln(os.Stderr, "(plugin binaries were built into a temporary directory)")
	}
	os.Exit(code)
}
