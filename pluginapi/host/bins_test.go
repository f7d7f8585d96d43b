package host_test

import (
	"os"
	"testing"

	"github.com/aof2/aof2/internal/testbin"
)

// bin returns the path of a binary the host tests launch (testplugin,
// aof2-plugin-fs, aof2-plugin-fake), built once per run (internal/testbin).
func bin(t testing.TB, name string) string {
	t.Helper()
	return testbin.Path(t, name)
}

func TestMain(m *testing.M) { os.Exit(testbin.Run(m)) }
