package fs_test

import (
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"

	"github.com/aof2/aof2/conformance"
	"github.com/aof2/aof2/pluginapi"
	"github.com/aof2/aof2/plugins/fs"
)

var large = flag.Bool("large", false, "also round-trip a 1 GiB object")

var (
	binOnce sync.Once
	binDir  string
	binPath string
	binErr  error
)

// pluginBin builds cmd/aof2-plugin-fs once per test binary, so tests that
// launch it work under plain `go test` from a clean clone.
func pluginBin(t *testing.T) string {
	t.Helper()
	binOnce.Do(func() {
		binDir, binErr = os.MkdirTemp("", "aof2-fs-plugin-bin-*")
		if binErr != nil {
			return
		}
		binPath = filepath.Join(binDir, "aof2-plugin-fs")
		out, err := exec.Command("go", "build", "-o", binPath, "./cmd/aof2-plugin-fs").CombinedOutput()
		if err != nil {
			binErr = fmt.Errorf("building the fs plugin: %v\n%s", err, out)
		}
	})
	if binErr != nil {
		t.Fatal(binErr)
	}
	return binPath
}

func TestMain(m *testing.M) {
	flag.Parse()
	code := m.Run()
	if binDir != "" {
		_ = os.RemoveAll(binDir)
	}
	os.Exit(code)
}

func opts() conformance.Options {
	return conformance.Options{Large: *large || conformance.LargeFromEnv()}
}

func TestConformanceInProcess(t *testing.T) {
	root := t.TempDir()
	conformance.Run(t, &conformance.InProcess{
		New:    func() (pluginapi.Backend, error) { return fs.New(), nil },
		Config: map[string]string{"root": root},
	}, opts())
}

func TestConformanceBinary(t *testing.T) {
	root := t.TempDir()
	conformance.Run(t, &conformance.Binary{
		Path:       pluginBin(t),
		Config:     map[string]string{"root": root},
		StagingDir: t.TempDir(),
	}, opts())
}
