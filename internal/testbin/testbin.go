// Package testbin gives tests the path of a built binary of this module
// (the host, the plugins, the test plugins), built once per run instead of
// once per test.
//
// With AOF2_TEST_BIN_DIR set (the Makefile's test and test-short targets
// build every binary there first, with `go run ./internal/testbin/cmd/testbins`),
// Path returns the prebuilt one and fails the test if it is missing. Without
// it (plain `go test` from a clean clone), Path builds each binary once per
// test process into one temporary directory; the package's TestMain calls
// Run so that the directory is removed at exit.
package testbin

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"sync"
	"testing"
)

// EnvDir names the directory of prebuilt binaries.
const EnvDir = "AOF2_TEST_BIN_DIR"

// Binaries maps each binary's file name to its package. All of them live in
// one directory, so the host finds the plugins next to itself.
var Binaries = map[string]string{
	"aof2-host":          "github.com/aof2/aof2/cmd/aof2-host",
	"aof2-conformance":   "github.com/aof2/aof2/cmd/aof2-conformance",
	"aof2-plugin-fs":     "github.com/aof2/aof2/plugins/fs/cmd/aof2-plugin-fs",
	"aof2-plugin-fake":   "github.com/aof2/aof2/conformance/fake/cmd/aof2-plugin-fake",
	"aof2-plugin-s3":     "github.com/aof2/aof2/plugins/s3/cmd/aof2-plugin-s3",
	"aof2-plugin-gcs":    "github.com/aof2/aof2/plugins/gcs/cmd/aof2-plugin-gcs",
	"aof2-plugin-azure":  "github.com/aof2/aof2/plugins/azure/cmd/aof2-plugin-azure",
	"aof2-plugin-scoped": "github.com/aof2/aof2/cmd/aof2-host/testdata/scopedplugin",
	"testplugin":         "github.com/aof2/aof2/pluginapi/internal/testplugin",
}

// Names lists the binaries in a stable order.
func Names() []string {
	names := make([]string, 0, len(Binaries))
	for n := range Binaries {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

var (
	mu      sync.Mutex
	tmpDir  string
	onces   = map[string]*sync.Once{}
	results = map[string]error{}
)

// Path returns the path of the named binary (a key of Binaries), failing the
// test if it is unknown, missing from AOF2_TEST_BIN_DIR, or does not build.
func Path(t testing.TB, name string) string {
	t.Helper()
	p, err := path(name)
	if err != nil {
		t.Fatalf("testbin: %v", err)
	}
	return p
}

// Dir returns the directory holding the named binaries (all of Binaries
// when none are named), each built or found as Path does.
func Dir(t testing.TB, names ...string) string {
	t.Helper()
	if len(names) == 0 {
		names = Names()
	}
	var dir string
	for _, n := range names {
		dir = filepath.Dir(Path(t, n))
	}
	return dir
}

func path(name string) (string, error) {
	pkg, ok := Binaries[name]
	if !ok {
		return "", fmt.Errorf("unknown binary %q (add it to testbin.Binaries)", name)
	}
	if dir := os.Getenv(EnvDir); dir != "" {
		p := filepath.Join(dir, name)
		// The stat also tells go test's result cache that the result
		// depends on this file.
		if _, err := os.Stat(p); err != nil {
			return "", fmt.Errorf("%s=%s has no %s (%v): run `go run ./internal/testbin/cmd/testbins %s` (make does) or unset %s",
				EnvDir, dir, name, err, dir, EnvDir)
		}
		return p, nil
	}
	mu.Lock()
	once, ok := onces[pkg]
	if !ok {
		once = new(sync.Once)
		onces[pkg] = once
	}
	mu.Unlock()
	once.Do(func() {
		mu.Lock()
		if tmpDir == "" {
			d, err := os.MkdirTemp("", "aof2-testbin-*")
			if err != nil {
				results[pkg] = err
				mu.Unlock()
				return
			}
			tmpDir = d
		}
		dir := tmpDir
		mu.Unlock()
		out, err := exec.Command("go", "build", "-o", filepath.Join(dir, name), pkg).CombinedOutput()
		mu.Lock()
		if err != nil {
			results[pkg] = fmt.Errorf("go build %s: %v\n%s", pkg, err, out)
		}
		mu.Unlock()
	})
	mu.Lock()
	defer mu.Unlock()
	if err := results[pkg]; err != nil {
		return "", err
	}
	return filepath.Join(tmpDir, name), nil
}

// Run runs the tests and then removes what Path built; a package whose tests
// call Path uses it as its TestMain: os.Exit(testbin.Run(m)).
func Run(m *testing.M) int {
	code := m.Run()
	Cleanup()
	return code
}

// Cleanup removes the binaries Path built (never a prebuilt directory).
func Cleanup() {
	mu.Lock()
	defer mu.Unlock()
	if tmpDir != "" {
		_ = os.RemoveAll(tmpDir)
		tmpDir = ""
		onces = map[string]*sync.Once{}
		results = map[string]error{}
	}
}
