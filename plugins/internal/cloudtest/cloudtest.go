// Package cloudtest is what the cloud plugins' tests share: finding the
// local servers that `make emulators-up` started, building a plugin binary
// once per test binary, and an HTTP fault proxy to put between a plugin
// and its server.
package cloudtest

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/aof2/aof2/internal/testbin"
)

// Env returns the values of the environment variables naming a local
// server. When one is missing the test is skipped with a line saying how
// to run it, except in CI (CI=true), where a missing server is a failure.
// Under -short (make test-short) every test needing a server is skipped.
func Env(t testing.TB, names ...string) map[string]string {
	t.Helper()
	if testing.Short() {
		t.Skip("needs a local cloud server: not under -short (make test or make test-cloud run it)")
	}
	out := map[string]string{}
	for _, n := range names {
		v := os.Getenv(n)
		if v == "" {
			msg := fmt.Sprintf("%s is not set: no local server for this cloud backend; run `make emulators-up` first (then `make test` or `make test-cloud`)", n)
			if os.Getenv("CI") == "true" {
				t.Fatalf("CI: %s", msg)
			}
			t.Skipf("SKIPPING CLOUD TEST: %s", msg)
		}
		out[n] = v
	}
	return out
}

// PluginBinary returns the plugin command in dir (relative to the test's
// package, e.g. "./cmd/aof2-plugin-s3"), built once per run
// (internal/testbin). TestMain calls RemoveBinaries.
func PluginBinary(t testing.TB, dir string) string {
	t.Helper()
	return testbin.Path(t, filepath.Base(dir))
}

// RemoveBinaries deletes what PluginBinary built; call it from TestMain.
func RemoveBinaries() { testbin.Cleanup() }

// Except is a conformance.Options.Run expression selecting every behaviour
// but the named ones, for a local server with a documented gap.
func Except(all []string, names ...string) string {
	var keep []string
	for _, b := range all {
		if !slices.Contains(names, b) {
			keep = append(keep, regexp.QuoteMeta(b))
		}
	}
	return "^(" + strings.Join(keep, "|") + ")$"
}
