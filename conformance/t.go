package conformance

import (
	"context"
	"testing"
)

// T is the part of *testing.T the suite uses. Run adapts a *testing.T;
// the aof2-conformance command supplies its own implementation so a
// backend author can certify a plugin binary without Go test wiring. It
// satisfies testify's require.TestingT.
type T interface {
	Helper()
	Name() string
	Errorf(format string, args ...any)
	FailNow()
	Failed() bool
	Logf(format string, args ...any)
	Skipf(format string, args ...any)
	Cleanup(func())
	Context() context.Context
	TempDir() string
	// Run runs f as a subtest named name and reports whether it passed.
	Run(name string, f func(T)) bool
}

type testingT struct{ *testing.T }

func (t testingT) Run(name string, f func(T)) bool {
	return t.T.Run(name, func(tt *testing.T) { f(testingT{tt}) })
}

// Wrap adapts a *testing.T to T.
func Wrap(t *testing.T) T { return testingT{t} }
