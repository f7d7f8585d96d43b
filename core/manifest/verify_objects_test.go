package manifest

import (
	"context"
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestVerifyObjectsHook: VerifyOptions.Objects sees the inspection the
// local checks ran on (the folded tier-2 state included), its findings
// join Verify's, and its error aborts Verify.
func TestVerifyObjectsHook(t *testing.T) {
	ctx := context.Background()
	mem, _ := inspectFixture(t)
	in := NewInspector(mem, testDir, 7)
	var seen *Inspection
	want := Finding{Severity: SeverityError, Code: "tier2_missing", Key: "streams/7/segments/1", Message: "gone"}
	f, err := in.Verify(ctx, VerifyOptions{LogOnly: true, Objects: func(_ context.Context, got *Inspection) ([]Finding, error) {
		seen = got
		return []Finding{want}, nil
	}})
	require.NoError(t, err)
	require.NotNil(t, seen)
	require.Len(t, seen.Segments, 1)
	assert.Equal(t, "streams/7/segments/1", seen.Segments[0].Tier2.Key)
	assert.Equal(t, "e", seen.Segments[0].Tier2.ETag)
	assert.NotEmpty(t, seen.Chunks)
	assert.Contains(t, f, want)

	boom := errors.New("tier 2 unreachable")
	_, err = in.Verify(ctx, VerifyOptions{LogOnly: true, Objects: func(context.Context, *Inspection) ([]Finding, error) {
		return nil, boom
	}})
	require.ErrorIs(t, err, boom)
}
