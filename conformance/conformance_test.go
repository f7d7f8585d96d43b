package conformance_test

import (
	"bytes"
	"context"
	"errors"
	"io"
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

// The suite is only worth something if it fails broken backends, naming
// the rule they break.
func TestSuiteCatchesBrokenBackends(t *testing.T) {
	cases := []struct {
		name  string
		wrap  func(*fake.Backend) pluginapi.Backend
		rules []string
		run   string
	}{
		{"put stores nothing", func(b *fake.Backend) pluginapi.Backend {
			require.NoError(t, b.Inject(fake.Fault{Mode: fake.DropPut, Ops: []fake.Op{fake.OpPut}}))
			return b
		}, []string{"ROUND-TRIP"}, "Sizes"},
		{"acknowledges a wrong checksum", func(b *fake.Backend) pluginapi.Backend {
			require.NoError(t, b.Inject(fake.Fault{Mode: fake.WrongChecksum, Ops: []fake.Op{fake.OpHead}}))
			return b
		}, []string{"HEAD"}, "Head"},
		{"commits on a failed body", func(b *fake.Backend) pluginapi.Backend { return commitsAnyway{b} }, []string{"CHECKSUM"}, "Checksum"},
		{"unsorted list", func(b *fake.Backend) pluginapi.Backend { return unsortedList{b} }, []string{"LIST-ORDER"}, "List"},
		{"delete of a missing key fails", func(b *fake.Backend) pluginapi.Backend { return strictDelete{b} }, []string{"DELETE"}, "Delete"},
		{"accepts unknown settings", func(b *fake.Backend) pluginapi.Backend { return lenientConfig{b} }, []string{"CONFIG-UNKNOWN"}, "Config"},
		{"wrong bytes on get", func(b *fake.Backend) pluginapi.Backend {
			require.NoError(t, b.Inject(fake.Fault{Mode: fake.WrongBytes, Ops: []fake.Op{fake.OpGet}, KeyPrefix: "aof2-conformance-"}))
			return b
		}, []string{"ROUND-TRIP"}, "Sizes|Ranges"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			rep := conformance.Certify(t.Context(), harnessFor(c.wrap), conformance.Options{Quick: true, Run: c.run})
			require.False(t, rep.OK(), "the suite passed a broken backend")
			var broken []string
			for _, cs := range rep.Cases {
				broken = append(broken, cs.Rules...)
			}
			for _, r := range c.rules {
				assert.Contains(t, broken, r, "rule %s not reported; failures: %v", r, broken)
			}
		})
	}
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

// commitsAnyway stores whatever arrived even when the body failed.
type commitsAnyway struct{ *fake.Backend }

func (b commitsAnyway) Put(ctx context.Context, req pluginapi.PutRequest, body io.Reader) (pluginapi.ObjectInfo, error) {
	data, _ := io.ReadAll(body)
	req.Size, req.CRC64 = uint64(len(data)), pluginapi.CRC64(data)
	info, err := b.Backend.Put(context.WithoutCancel(ctx), req, bytes.NewReader(data))
	return info, errors.Join(err, ctx.Err())
}

type unsortedList struct{ *fake.Backend }

func (b unsortedList) List(ctx context.Context, req pluginapi.ListRequest, page func([]pluginapi.ObjectInfo) error) error {
	var all []pluginapi.ObjectInfo
	err := b.Backend.List(ctx, req, func(p []pluginapi.ObjectInfo) error { all = append(all, p...); return nil })
	if err != nil {
		return err
	}
	slices.Reverse(all)
	if len(all) == 0 {
		return nil
	}
	return page(all)
}

type strictDelete struct{ *fake.Backend }

func (b strictDelete) Delete(ctx context.Context, key string) error {
	if _, err := b.Head(ctx, key); err != nil {
		return err
	}
	return b.Backend.Delete(ctx, key)
}

type lenientConfig struct{ *fake.Backend }

func (b lenientConfig) Configure(ctx context.Context, req pluginapi.ConfigureRequest) (pluginapi.ConfigureResult, error) {
	delete(req.Config, "aof2_conformance_no_such_setting")
	return b.Backend.Configure(ctx, req)
}
