package conformance_test

import (
	"slices"
	"testing"

	"github.com/stretchr/testify/assert"

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
