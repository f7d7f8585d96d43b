// Package conformance is the executable form of the AOF2 backend contract.
//
// A backend author calls Run from a _test.go file with a Harness for their
// backend: InProcess (served over a real gRPC connection inside the test,
// so coverage and debuggers work), Binary (the built plugin launched
// exactly as the host launches it) or Reattach (an already-running
// plugin). The suite runs one subtest per behaviour, in files split by
// behaviour; every failure names the contract rule it broke (see Rule).
// Optional features the backend does not advertise are skipped, after
// checking that they answer Unimplemented.
//
// Everything is written under a random key prefix per run and deleted at
// the end. The aof2-conformance command runs the same suite against a
// plugin binary without Go test wiring and prints a JSON report.
package conformance

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"regexp"
	"testing"
	"time"
)

// Options tune a run.
type Options struct {
	// Large adds a 1 GiB object to the size checks (64 MiB always runs).
	Large bool
	// Timeout bounds each behaviour (default 2 minutes).
	Timeout time.Duration
	// Quick skips the 64 MiB object, for tests of the suite itself.
	Quick bool
	// Run, when set, is a regular expression selecting behaviours by name
	// (like go test -run); the others are not run. Cleanup always runs.
	Run string
	// Bench, when set, makes Certify measure Put/Get throughput after the
	// suite (RunBenchmarks) and put it in the Report. Run ignores it.
	Bench *BenchOptions
}

// LargeFromEnv reports whether AOF2_CONFORMANCE_LARGE asks for the 1 GiB case.
func LargeFromEnv() bool { return os.Getenv("AOF2_CONFORMANCE_LARGE") == "1" }

// Run runs the whole suite against h.
func Run(t *testing.T, h Harness, opts ...Options) {
	RunT(Wrap(t), h, opts...)
}

type behaviour struct {
	name string
	fn   func(T, *suite)
}

// behaviours lists the suite in run order; each file registers its own.
func behaviours() []behaviour {
	var all []behaviour
	all = append(all, infoBehaviours()...)
	all = append(all, roundTripBehaviours()...)
	all = append(all, integrityBehaviours()...)
	all = append(all, preconditionBehaviours()...)
	all = append(all, rangeBehaviours()...)
	all = append(all, errorBehaviours()...)
	all = append(all, directBehaviours()...)
	all = append(all, listBehaviours()...)
	all = append(all, concurrencyBehaviours()...)
	all = append(all, raceBehaviours()...)
	all = append(all, fileBehaviours()...)
	return all
}

// Behaviours lists the behaviour names in run order (for reports).
func Behaviours() []string {
	var names []string
	for _, b := range behaviours() {
		names = append(names, b.name)
	}
	return append(names, "Cleanup", "Shutdown")
}

// RunT is Run over any T (used by the aof2-conformance command).
func RunT(t T, h Harness, opts ...Options) {
	var o Options
	if len(opts) > 0 {
		o = opts[0]
	}
	if o.Timeout <= 0 {
		o.Timeout = 2 * time.Minute
	}
	s := &suite{h: h, opts: o, prefix: randomPrefix()}
	ctx, cancel := context.WithTimeout(t.Context(), o.Timeout)
	tgt, err := h.Start(ctx, StartOptions{})
	cancel()
	if err != nil {
		t.Errorf("%s", RuleProbe.msg("starting the backend (%s harness): got %v, want a configured and probed backend", h.Name(), err))
		t.FailNow()
	}
	s.tgt = tgt
	if r, ok := t.(*reportT); ok {
		i := tgt.Info
		r.rep.Backend, r.rep.Version, r.rep.ChunkSize, r.rep.KeyPrefix = i.Name, i.Version, tgt.ChunkSize, s.prefix
		r.rep.Contract = fmt.Sprintf("v%d.%d", i.ContractMajor, i.ContractMinor)
	}
	t.Logf("backend %q %s, contract v%d.%d, chunk size %d, key prefix %q",
		tgt.Info.Name, tgt.Info.Version, tgt.Info.ContractMajor, tgt.Info.ContractMinor, tgt.ChunkSize, s.prefix)
	var sel *regexp.Regexp
	if o.Run != "" {
		if sel, err = regexp.Compile(o.Run); err != nil {
			t.Errorf("Options.Run: %v", err)
			t.FailNow()
		}
	}
	for _, b := range behaviours() {
		if sel != nil && !sel.MatchString(b.name) {
			continue
		}
		t.Run(b.name, func(t T) { b.fn(t, s) })
	}
	t.Run("Cleanup", s.cleanup)
	t.Run("Shutdown", func(t T) {
		if err := tgt.Close(); err != nil {
			t.Errorf("%v", err)
		}
	})
}

func randomPrefix() string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return "aof2-conformance-" + hex.EncodeToString(b[:]) + "/"
}
