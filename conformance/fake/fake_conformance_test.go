package fake_test

import (
	"os"
	"testing"

	"github.com/aof2/aof2/conformance"
	"github.com/aof2/aof2/conformance/fake"
	"github.com/aof2/aof2/internal/testbin"
	"github.com/aof2/aof2/pluginapi"
)

func TestMain(m *testing.M) { os.Exit(testbin.Run(m)) }

func TestConformanceInProcess(t *testing.T) {
	conformance.Run(t, &conformance.InProcess{
		New: func() (pluginapi.Backend, error) { return fake.New(fake.Options{}), nil },
	}, conformance.Options{Large: conformance.LargeFromEnv()})
}

// The fake as a plugin process, launched as the host launches plugins.
func TestConformanceBinary(t *testing.T) {
	bin := testbin.Path(t, "aof2-plugin-fake")
	conformance.Run(t, &conformance.Binary{Path: bin, StagingDir: t.TempDir()}, conformance.Options{Large: conformance.LargeFromEnv()})
}
