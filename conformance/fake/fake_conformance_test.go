package fake_test

import (
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/aof2/aof2/conformance"
	"github.com/aof2/aof2/conformance/fake"
	"github.com/aof2/aof2/pluginapi"
)

func TestConformanceInProcess(t *testing.T) {
	conformance.Run(t, &conformance.InProcess{
		New: func() (pluginapi.Backend, error) { return fake.New(fake.Options{}), nil },
	}, conformance.Options{Large: conformance.LargeFromEnv()})
}

// The fake as a plugin process, launched as the host launches plugins.
func TestConformanceBinary(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "aof2-plugin-fake")
	if out, err := exec.Command("go", "build", "-o", bin, "./cmd/aof2-plugin-fake").CombinedOutput(); err != nil {
		t.Fatalf("building the fake plugin: %v\n%s", err, out)
	}
	conformance.Run(t, &conformance.Binary{Path: bin, StagingDir: t.TempDir()}, conformance.Options{Large: conformance.LargeFromEnv()})
}
