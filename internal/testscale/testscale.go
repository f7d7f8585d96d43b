// Package testscale sizes the tests' exhaustive crash, fault and power-loss
// runs for the pass they run in.
//
// Those runs exercise recovery, not concurrency, and the race detector
// makes them about ten times slower. `make test` therefore runs them twice:
// at a quarter of their size under -race (every kind of operation and fault
// still runs with the race detector on, at fewer indexes), then at full
// size without it (every operation index, every cycle; `make test`'s second
// pass). Under -short
// they take their small counts. An environment variable set for a run wins
// over all three.
package testscale

import (
	"os"
	"strconv"
	"testing"
)

// raceDivisor is how much smaller a run is under the race detector.
const raceDivisor = 4

// Count is a number of iterations: the environment variable name when set,
// short under -short, full/4 under -race, full otherwise.
func Count(name string, full, short int) int {
	switch {
	case testing.Short():
		return Env(name, short)
	case Race:
		return Env(name, max(full/raceDivisor, short))
	}
	return Env(name, full)
}

// Stride is a step over operation indexes: the environment variable name
// when set, short under -short, 4×full under -race (never coarser than
// short), full otherwise.
func Stride(name string, full, short int) int {
	switch {
	case testing.Short():
		return Env(name, short)
	case Race:
		return Env(name, min(full*raceDivisor, short))
	}
	return Env(name, full)
}

// Env is the positive integer in environment variable name, or def.
func Env(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}
