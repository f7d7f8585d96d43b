package manifest

import (
	"context"
	"encoding/json"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

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
	for _, bad := range []string{`{"version":2,"stream_id":7,"segments":[],"extra":1}`, `{"version":3,"stream_id":7,"segments":[]}`,
		`{"version":1,"stream_id":7,"log_records":4,"segments":[]}`, `not json`} {
		require.NoError(t, vfs.WriteFileAtomic(mem, ViewPath(testDir), []byte(bad)))
		r = CheckParity(mem, testDir, NewIndex(7))
		assert.True(t, r.JSONPresent)
		assert.NotEmpty(t, r.JSONError, bad)
		assert.False(t, r.OK())
		_, err := ReadView(mem, testDir)
		assert.ErrorIs(t, err, ErrCorrupt)
	}
	// A view written before log_records existed is read, and compared
	// with the log's end.
	require.NoError(t, vfs.WriteFileAtomic(mem, ViewPath(testDir), []byte(`{"version":1,"stream_id":7,"segments":[]}`)))
	r = CheckParity(mem, testDir, NewIndex(7))
	assert.True(t, r.OK(), "%+v", r)
}

// waitView waits until the JSON view on disk is the view of l's committed
// state: the writer goroutine writes it behind the commits.
func waitView(t *testing.T, fsys vfs.FS, l *Log) {
	t.Helper()
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		v, err := ReadView(fsys, testDir)
		if assert.NoError(c, err) {
			assert.Equal(c, ViewOf(l.Index()), v)
		}
	}, 10*time.Second, time.Millisecond)
}

// TestEmptyLogWritesNoView: opening the log of a new stream writes no JSON
// view (an absent view is at parity with a log without segments); the
// first commit that adds a segment has it written.
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
	require.NoError(t, l.AppendCommit(ctx, CustomEvent{SchemaID: 1}))
	require.NoError(t, l.Close())
	_, err = mem.Stat(ViewPath(testDir))
	require.True(t, vfs.IsNotExist(err), "no view for a log without segments: %v", err)

	l = openT(t, mem, opts)
	defer l.Close()
	assert.True(t, l.Replay().Parity.OK(), "reopened: still at parity, %+v", l.Replay().Parity)
	require.NoError(t, l.AppendCommit(ctx, SegmentOpened{Header: Header{SegmentID: 1}}))
	waitView(t, mem, l)
}

// TestJSONViewBehindTheLog: commits never wait for the view; the writer
// brings it up to date behind them; a view that stopped at an earlier
// commit (its write failed, or a crash came first) is compared with the
// state the log had there, online and offline, and a view that differs
// from that state is a divergence.
func TestJSONViewBehindTheLog(t *testing.T) {
	ctx := context.Background()
	mem := vfs.NewMem()
	inj := vfs.Wrap(mem, nil)
	opts := testOpts()
	opts.LogOnly = false
	l := openT(t, inj, opts)
	defer l.Close()
	require.NoError(t, l.AppendCommit(ctx, SegmentOpened{Header: Header{SegmentID: 1}}))
	waitView(t, mem, l)

	// A view write that hangs holds up no commit.
	isView := func(op vfs.Op) bool {
		return op.Kind == vfs.OpRename && strings.HasSuffix(op.Path, jsonViewName+".tmp")
	}
	hang, hung := make(chan struct{}), make(chan struct{}, 1)
	inj.SetInjector(vfs.InjectorFunc(func(op vfs.Op) vfs.Fault {
		if isView(op) {
			select {
			case hung <- struct{}{}:
			default:
			}
			<-hang
			return vfs.FaultEIO
		}
		return vfs.NoFault
	}))
	require.NoError(t, l.AppendCommit(ctx, SealSegment{Header: Header{SegmentID: 1}, DurableBytes: 3}))
	select {
	case <-hung:
	case <-time.After(10 * time.Second):
		t.Fatal("the view writer did not write after a commit that changed the view")
	}
	for i := range 3 {
		require.NoError(t, l.AppendCommit(ctx, CompressionDone{Header: Header{SegmentID: 1}, CompressedBytes: uint64(5 + i)}))
	}
	inj.SetInjector(vfs.OnMatch(0, isView, vfs.FaultEIO, true))
	close(hang)

	// The write failed: the view stands at record 1 of 5, and agrees with
	// the log there.
	behind := func(r ParityReport) {
		t.Helper()
		assert.True(t, r.OK(), "%+v", r)
		assert.True(t, r.Behind(), "%+v", r)
		assert.Equal(t, uint64(1), r.ViewRecords)
		assert.Equal(t, uint64(1), r.ComparedAt)
		assert.Equal(t, uint64(5), r.LogRecords)
	}
	r, err := l.Parity(ctx)
	require.NoError(t, err)
	behind(r)
	off, err := NewInspector(mem, testDir, 7).Parity(ctx)
	require.NoError(t, err)
	behind(off)
	f, err := NewInspector(mem, testDir, 7).Verify(ctx, VerifyOptions{})
	require.NoError(t, err)
	assert.Empty(t, codes(f, SeverityError), "%+v", f)

	// Writes work again: Parity brings the view up to date first.
	inj.SetInjector(nil)
	r, err = l.Parity(ctx)
	require.NoError(t, err)
	assert.True(t, r.OK(), "%+v", r)
	assert.False(t, r.Behind(), "%+v", r)
	v, err := ReadView(mem, testDir)
	require.NoError(t, err)
	assert.Equal(t, ViewOf(l.Index()), v)

	// A view that names record 1 but does not hold the state of record 1
	// diverges, even though an older view held it.
	v.LogRecords = 1
	b, err := json.MarshalIndent(v, "", "  ")
	require.NoError(t, err)
	require.NoError(t, vfs.WriteFileAtomic(mem, ViewPath(testDir), b))
	off, err = NewInspector(mem, testDir, 7).Parity(ctx)
	require.NoError(t, err)
	assert.Equal(t, 1, off.Segments, "%+v", off)
	assert.Equal(t, uint64(1), off.ComparedAt)
}

// TestViewFollowsSnapshots: a snapshot writes the view up to the log
// first, so that replay, which starts from the snapshot, can always check
// the view against the state at its position.
func TestViewFollowsSnapshots(t *testing.T) {
	ctx := context.Background()
	mem := vfs.NewMem()
	opts := testOpts()
	opts.LogOnly, opts.ViewInterval = false, time.Hour
	l := openT(t, mem, opts)
	require.NoError(t, l.AppendCommit(ctx, SegmentOpened{Header: Header{SegmentID: 1}}))
	waitView(t, mem, l) // the first write after a quiet hour goes at once
	require.NoError(t, l.AppendCommit(ctx, SealSegment{Header: Header{SegmentID: 1}, DurableBytes: 3}))
	v, err := ReadView(mem, testDir)
	require.NoError(t, err)
	require.Equal(t, uint64(1), v.LogRecords, "the next write waits out the interval")
	info, err := l.Snapshot(ctx)
	require.NoError(t, err)
	v, err = ReadView(mem, testDir)
	require.NoError(t, err)
	assert.GreaterOrEqual(t, v.LogRecords, info.Records)
	assert.Equal(t, ViewOf(l.Index()).Segments, v.Segments)

	// A crash (the files as they are) and a reopen: parity, nothing behind
	// the snapshot.
	crashed := mem.CrashClone(vfs.CrashOptions{Rand: rand.New(rand.NewPCG(1, 1))})
	require.NoError(t, l.Close())
	l2 := openT(t, crashed, opts)
	defer l2.Close()
	p := l2.Replay().Parity
	require.NotNil(t, p)
	assert.True(t, p.OK(), "%+v", *p)
}
