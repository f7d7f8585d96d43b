package conformance_test

import (
	"slices"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/aof2/aof2/conformance"
	"github.com/aof2/aof2/conformance/fake"
	"github.com/aof2/aof2/pluginapi"
)

func harnessFor(wrap func(*fake.Backend) pluginapi.Backend) *conformance.InProcess {
	return &conformance.InProcess{New: func() (pluginapi.Backend, error) { return wrap(fake.New(fake.Options{})), nil }}
}

func TestCertifyPassesTheFake(t *testing.T) {
	rep := conformance.Certify(t.Context(), harnessFor(func(b *fake.Backend) pluginapi.Backend { return b }), conformance.Options{})
	for _, c := range rep.Cases {
		assert.NotEqual(t, "fail", c.Status, "%s: %v", c.Name, c.Messages)
	}
	assert.True(t, rep.OK())
	names := make([]string, 0, len(rep.Cases))
	for _, c := range rep.Cases {
		names = append(names, c.Name)
	}
	for _, b := range conformance.Behaviours() {
		assert.True(t, slices.Contains(names, b), "behaviour %s missing from the report", b)
	}
}

func TestSuiteSkipsAndChecksUnadvertisedFeatures(t *testing.T) {
	none := pluginapi.Capabilities{}
	h := &conformance.InProcess{New: func() (pluginapi.Backend, error) { return fake.New(fake.Options{Capabilities: &none}), nil }}
	rep := conformance.Certify(t.Context(), h, conformance.Options{Quick: true})
	for _, c := range rep.Cases {
		assert.NotEqual(t, "fail", c.Status, "%s: %v", c.Name, c.Messages)
	}
	assert.Positive(t, rep.Skipped)
}

func TestCertifyReportsVersionsAndThroughput(t *testing.T) {
	rep := conformance.Certify(t.Context(), harnessFor(func(b *fake.Backend) pluginapi.Backend { return b }),
		conformance.Options{Quick: true, Run: "^Info$", Bench: &conformance.BenchOptions{ObjectSize: 1 << 20, Objects: 3, Concurrency: 2}})
	require.True(t, rep.OK())
	assert.Equal(t, conformance.SuiteVersion, rep.SuiteVersion)
	assert.Equal(t, conformance.SuiteContract(), rep.SuiteContract)
	assert.Nil(t, rep.Plugin, "an in-process run has no plugin binary")
	require.NotNil(t, rep.Benchmarks)
	b := rep.Benchmarks
	assert.Empty(t, b.Error)
	assert.Equal(t, 1<<20, b.ObjectSize)
	assert.Equal(t, 3, b.Objects)
	assert.Equal(t, 2, b.Concurrency)
	assert.Positive(t, b.PutDuration)
	assert.Positive(t, b.GetDuration)
	for _, c := range rep.Cases {
		if c.Status == "pass" {
			assert.Positive(t, c.Duration, "%s has no duration", c.Name)
		}
	}
}

func TestRunBenchmarksReportsAFailingBackend(t *testing.T) {
	h := harnessFor(func(b *fake.Backend) pluginapi.Backend {
		require.NoError(t, b.Inject(fake.Fault{Mode: fake.ServerError, Ops: []fake.Op{fake.OpGet}}))
		return b
	})
	_, err := conformance.RunBenchmarks(t.Context(), h, conformance.BenchOptions{ObjectSize: 64 << 10, Objects: 2})
	require.ErrorIs(t, err, pluginapi.ErrUnavailable)
}
