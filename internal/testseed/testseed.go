// Package testseed gives a test that draws its schedule or data from a
// random generator a seed that is new on every run and can be replayed: the
// named environment variable sets it, and a failed test prints the seed and
// how to rerun it.
package testseed

import (
	"os"
	"strconv"
	"testing"
	"time"
)

// From returns the seed in the environment variable env, or one taken from
// the clock; either way a failing t logs "replay with env=seed".
func From(t testing.TB, env string) uint64 {
	t.Helper()
	seed := uint64(time.Now().UnixNano())
	if v := os.Getenv(env); v != "" {
		s, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			t.Fatalf("%s=%q: not a seed: %v", env, v, err)
		}
		seed = s
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("seed %d: replay with %s=%d go test -run '^%s$'", seed, env, seed, t.Name())
		}
	})
	return seed
}
