package manifest

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/aof2/aof2/core/vfs"
)

func TestParity(t *testing.T) {
	x := fold(7, []Record{
		SegmentOpened{Header: Header{SegmentID: 1}},
		SealSegment{Header: Header{SegmentID: 1}, DurableBytes: 10, SegmentCRC64: 5},
		UploadDone{Header: Header{SegmentID: 1}, Key: "k", ETag: "e"},
		SegmentOpened{Header: Header{SegmentID: 2}},
	})
	logView := ViewOf(x)
	assert.True(t, Parity(logView, logView).OK())

	jv := ViewOf(x)
	jv.Segments[0].DurableBytes = 11
	jv.Segments[0].Tier2ETag = "other"
	jv.Segments = append(jv.Segments, ViewSegment{SegmentID: 9})
	jv.Segments = jv.Segments[1:] // segment 1 absent now, 9 extra
	r := Parity(jv, logView)
	assert.Equal(t, 2, r.Segments)
	assert.Equal(t, []Divergence{
		{SegmentID: 1, Field: "segment", JSON: "absent", Log: "present"},
		{SegmentID: 9, Field: "segment", JSON: "present", Log: "absent"},
	}, r.Divergences)

	jv = ViewOf(x)
	jv.Segments[0].DurableBytes = 11
	jv.Segments[0].Residency = NeedsRecovery
	r = Parity(jv, logView)
	assert.Equal(t, 1, r.Segments, "one segment, two fields")
	assert.Equal(t, []Divergence{
		{SegmentID: 1, Field: "residency", JSON: "needs_recovery", Log: "resident_in_tier0"},
		{SegmentID: 1, Field: "durable_bytes", JSON: "11", Log: "10"},
	}, r.Divergences)
}

func TestCheckParityFiles(t *testing.T) {
	mem := vfs.NewMem()
	x := fold(7, []Record{SegmentOpened{Header: Header{SegmentID: 1}}})
	r := CheckParity(mem, testDir, x)
	assert.False(t, r.JSONPresent)
	assert.Equal(t, 1, r.Segments, "no JSON view: every log segment is missing from it")

	require.NoError(t, vfs.MkdirAllSync(mem, testDir+"/warm"))
	for _, bad := range []string{`{"version":1,"stream_id":7,"segments":[],"extra":1}`, `{"version":2,"stream_id":7,"segments":[]}`, `not json`} {
		require.NoError(t, vfs.WriteFileAtomic(mem, ViewPath(testDir), []byte(bad)))
		r = CheckParity(mem, testDir, NewIndex(7))
		assert.True(t, r.JSONPresent)
		assert.NotEmpty(t, r.JSONError, bad)
		assert.False(t, r.OK())
		_, err := ReadView(mem, testDir)
		assert.ErrorIs(t, err, ErrCorrupt)
	}
}

// TestEmptyLogWritesNoView: opening the log of a new stream writes no JSON
// view (an absent view is at parity with a log without segments); the
// first commit that adds a segment writes it.
func TestEmptyLogWritesNoView(t *testing.T) {
	ctx := context.Background()
	mem := vfs.NewMem()
	opts := testOpts()
	opts.LogOnly = false
	l := openT(t, mem, opts)
	_, err := mem.Stat(ViewPath(testDir))
	require.True(t, vfs.IsNotExist(err), "no view for an empty log: %v", err)
	r, err := l.Parity(ctx)
	require.NoError(t, err)
	assert.True(t, r.OK(), "%+v", r)
	require.NoError(t, l.Close())

	l = openT(t, mem, opts)
	defer l.Close()
	assert.True(t, l.Replay().Parity.OK(), "reopened: still at parity, %+v", l.Replay().Parity)
	require.NoError(t, l.AppendCommit(ctx, SegmentOpened{Header: Header{SegmentID: 1}}))
	v, err := ReadView(mem, testDir)
	require.NoError(t, err)
	assert.Equal(t, ViewOf(l.Index()), v)
}

func TestJSONViewFollowsCommits(t *testing.T) {
	ctx := context.Background()
	mem := vfs.NewMem()
	inj := vfs.Wrap(mem, nil)
	opts := testOpts()
	opts.LogOnly = false
	l := openT(t, inj, opts)
	defer l.Close()
	require.NoError(t, l.AppendCommit(ctx, SegmentOpened{Header: Header{SegmentID: 1}}))
	v, err := ReadView(mem, testDir)
	require.NoError(t, err)
	assert.Equal(t, ViewOf(l.Index()), v)

	// A record that does not change the view does not rewrite it.
	before := inj.Ops()
	require.NoError(t, l.AppendCommit(ctx, CustomEvent{Header: Header{SegmentID: 1}, SchemaID: 1}))
	commitOnly := inj.Ops() - before
	before = inj.Ops()
	require.NoError(t, l.AppendCommit(ctx, SealSegment{Header: Header{SegmentID: 1}, DurableBytes: 3}))
	assert.Greater(t, inj.Ops()-before, commitOnly, "a view change costs an atomic file replace")

	// A failed view write is not fatal; the next commit rewrites it.
	inj.SetInjector(vfs.OnMatch(0, func(op vfs.Op) bool { return op.Kind == vfs.OpRename }, vfs.FaultEIO, false))
	require.NoError(t, l.AppendCommit(ctx, CompressionDone{Header: Header{SegmentID: 1}, CompressedBytes: 5}))
	r, err := l.Parity(ctx)
	require.NoError(t, err)
	assert.Equal(t, 1, r.Segments, "the JSON view lags after the failed write")
	off, err := NewInspector(mem, testDir, 7).Parity(ctx)
	require.NoError(t, err)
	assert.Equal(t, r, off, "the offline inspector sees the same divergence")
	require.NoError(t, l.AppendCommit(ctx, CustomEvent{Header: Header{SegmentID: 1}}))
	r, err = l.Parity(ctx)
	require.NoError(t, err)
	assert.True(t, r.OK(), "%+v", r)
	off, err = NewInspector(mem, testDir, 7).Parity(ctx)
	require.NoError(t, err)
	assert.True(t, off.OK(), "%+v", off)
}
