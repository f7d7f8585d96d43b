package manifest

import (
	"context"
	"errors"
	"math/rand/v2"
	"runtime"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/aof2/aof2/core/types"
	"github.com/aof2/aof2/core/vfs"
	"github.com/aof2/aof2/internal/testwait"
)

func TestLogAppendCommitReopen(t *testing.T) {
	ctx := context.Background()
	mem := vfs.NewMem()
	l := openT(t, mem, testOpts())
	r := rand.New(rand.NewPCG(1, 2))
	var recs []Record
	for i := range 500 {
		rec := genRecord(r, uint64(i), 200)
		recs = append(recs, rec)
		require.NoError(t, l.Append(rec))
		if i%7 == 0 {
			require.NoError(t, l.Commit(ctx))
		}
	}
	require.NoError(t, l.Commit(ctx))
	want := fold(7, recs)
	assert.Equal(t, want.Segments(), l.Index().Segments())
	require.NoError(t, l.Close())
	require.ErrorIs(t, l.Append(recs[0]), ErrClosed)
	require.ErrorIs(t, l.Commit(ctx), ErrClosed)
	require.ErrorIs(t, l.Close(), ErrClosed)

	l2 := openT(t, mem, testOpts())
	defer l2.Close()
	got := l2.Index()
	assert.Equal(t, want.Segments(), got.Segments())
	assert.Equal(t, uint64(500), got.Records)
	st := l2.Replay()
	assert.Zero(t, st.CorruptionEvents)
	assert.False(t, st.NeedsRepair)
	assert.Greater(t, st.ChunksInspected, 3, "500 records of up to ~300 bytes span several 16 KiB chunks")
	assert.Zero(t, st.JournalLagBytes)
}

func TestLogGroupCommitConcurrent(t *testing.T) {
	ctx := context.Background()
	mem := vfs.NewMem()
	l := openT(t, mem, testOpts())
	const writers, each = 8, 60
	var wg sync.WaitGroup
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := rand.New(rand.NewPCG(uint64(w), 9))
			for i := range each {
				rec := CustomEvent{Header: Header{SegmentID: types.SegmentID(w + 1), LogicalOffset: uint64(i)}, SchemaID: 1, Blob: make([]byte, r.IntN(300))}
				assert.NoError(t, l.AppendCommit(ctx, rec))
				got, ok := l.Segment(types.SegmentID(w + 1))
				// Acknowledged means applied: the writer's own record is visible.
				assert.True(t, ok)
				assert.GreaterOrEqual(t, got.CustomEvents, uint64(i+1))
			}
		}()
	}
	wg.Wait()
	require.NoError(t, l.Close())
	l2 := openT(t, mem, testOpts())
	defer l2.Close()
	for w := range writers {
		s, ok := l2.Segment(types.SegmentID(w + 1))
		require.True(t, ok)
		assert.Equal(t, uint64(each), s.CustomEvents)
		assert.Equal(t, uint64(each-1), s.LastLogicalOffset, "records of one writer stay in order")
	}
}

func TestOptionsValidate(t *testing.T) {
	cases := []struct {
		name string
		o    Options
		key  string
	}{
		{"capacity too small", Options{ChunkCapacity: 8 << 10}, ConfigKeyChunkCapacity},
		{"capacity too large", Options{ChunkCapacity: 2 << 20}, ConfigKeyChunkCapacity},
		{"capacity unaligned", Options{ChunkCapacity: 20000}, ConfigKeyChunkCapacity},
		{"rotation too long", Options{RotationPeriod: 2 * time.Hour}, ConfigKeyRotationPeriod},
		{"rotation too short", Options{RotationPeriod: time.Microsecond}, ConfigKeyRotationPeriod},
		{"snapshot too small", Options{SnapshotEveryBytes: 100}, ConfigKeySnapshotEveryBytes},
		{"view interval too long", Options{ViewInterval: 2 * time.Hour}, ConfigKeyViewInterval},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Open(context.Background(), vfs.NewMem(), testDir, 7, c.o)
			require.ErrorIs(t, err, ErrInvalidConfig)
			var ce *ConfigError
			require.ErrorAs(t, err, &ce)
			assert.Equal(t, c.key, ce.Key)
			assert.Contains(t, err.Error(), c.key)
		})
	}
	for _, ok := range []Options{{}, {ChunkCapacity: MinChunkCapacity}, {ChunkCapacity: MaxChunkCapacity}, {RotationPeriod: -1}} {
		assert.NoError(t, ok.Validate())
	}
}

func TestOptionsApplyEnv(t *testing.T) {
	env := func(v string, ok bool) func(string) (string, bool) {
		return func(k string) (string, bool) {
			if k == EnvLogOnly {
				return v, ok
			}
			return "", false
		}
	}
	for _, c := range []struct {
		v    string
		set  bool
		want bool
	}{{"1", true, true}, {"true", true, true}, {"0", true, false}, {"", true, false}, {"", false, true}} {
		o := Options{LogOnly: !c.set} // unset leaves the config value alone
		require.NoError(t, o.ApplyEnv(env(c.v, c.set)))
		assert.Equal(t, c.want, o.LogOnly, "value %q set %v", c.v, c.set)
	}
	o := Options{}
	err := o.ApplyEnv(env("maybe", true))
	var ce *ConfigError
	require.ErrorAs(t, err, &ce)
	assert.Equal(t, EnvLogOnly, ce.Key)
}

func TestAppendRejects(t *testing.T) {
	l := openT(t, vfs.NewMem(), testOpts())
	defer l.Close()
	long := string(make([]byte, MaxKeyLen+1))
	cases := []struct {
		rec  Record
		want error
	}{
		{nil, ErrInvalidRecord},
		{SnapshotMarker{SnapshotID: 1}, ErrInvalidRecord},
		{Unknown{RecordType: 99, Payload: []byte{1}}, ErrInvalidRecord},
		{UploadStarted{Key: ""}, ErrInvalidRecord},
		{UploadDone{Key: long}, ErrInvalidRecord},
		{CustomEvent{Blob: make([]byte, MaxKeyLen+1)}, ErrInvalidRecord},
		{CustomEvent{Blob: make([]byte, MinChunkCapacity)}, ErrRecordTooLarge},
	}
	for _, c := range cases {
		assert.ErrorIs(t, l.Append(c.rec), c.want, "%T", c.rec)
	}
	// An atomic batch larger than a chunk is refused as a whole.
	big := CustomEvent{Blob: make([]byte, 6000)}
	require.ErrorIs(t, l.AppendCommit(context.Background(), big, big, big), ErrRecordTooLarge)
	assert.Zero(t, l.Index().Records, "nothing of a refused batch was appended")
	assert.Equal(t, ErrEmptyRecord, Unknown{RecordType: 99}.validate())
}

func TestAppendCommitIsAtomicAcrossRotation(t *testing.T) {
	ctx := context.Background()
	mem := vfs.NewMem()
	l := openT(t, mem, testOpts())
	filler := CustomEvent{Header: Header{SegmentID: 1}, Blob: make([]byte, 5000)}
	require.NoError(t, l.AppendCommit(ctx, filler, filler, filler)) // ~15 KiB of a 16 KiB chunk
	batch := []Record{filler, SealSegment{Header: Header{SegmentID: 1}, DurableBytes: 9}}
	require.NoError(t, l.AppendCommit(ctx, batch...))
	chunks := l.SealedChunks()
	require.Len(t, chunks, 1, "the batch did not fit the first chunk, so it rotated before it")
	assert.Equal(t, int64(chunkHeaderLen)+3*frameBytes(t, filler), int64(chunks[0].CommittedLen), "the batch went to chunk 1 whole")
	require.NoError(t, l.Close())
}

func TestRotationTimer(t *testing.T) {
	ctx := context.Background()
	mem := vfs.NewMem()
	clk := newManualClock()
	const period = 250 * time.Millisecond
	opts := testOpts()
	opts.Clock, opts.RotationPeriod = clk, period
	sealed := make(chan SealedChunk, 4)
	opts.OnChunkSealed = func(c SealedChunk) { sealed <- c }
	handled := make(chan struct{})
	opts.afterTick = func() { handled <- struct{}{} }
	l := openT(t, mem, opts)
	defer l.Close()
	running := func() bool {
		l.mu.Lock()
		defer l.mu.Unlock()
		return l.mu.bgRunning
	}
	// The timer runs only while records wait: tick once it runs, and wait
	// for the tick to be handled, so that a tick still in flight during an
	// AppendCommit cannot seal its record's chunk.
	tick := func() {
		t.Helper()
		testwait.Until(t, testwait.Default, time.Millisecond, func() bool { return clk.Live() == 1 }, "the rotation timer to start")
		clk.Tick()
		testwait.Recv(t, handled, testwait.Default, "the rotation timer to handle the tick")
	}
	stopped := func(msg string) {
		t.Helper()
		testwait.Until(t, testwait.Default, time.Millisecond, func() bool { return !running() && clk.Live() == 0 }, "%s", msg)
	}

	require.False(t, running(), "nothing uncommitted: no timer")
	require.NoError(t, l.AppendCommit(ctx, SegmentOpened{Header: Header{SegmentID: 1}}))
	require.True(t, running(), "a committed record in an open chunk: the timer runs until the chunk is sealed")
	tick()
	require.Len(t, sealed, 0, "committed less than a period ago: the chunk stays open")
	clk.Advance(period)
	tick()
	require.Len(t, sealed, 1, "committed a period ago: the timer seals the chunk")
	c := <-sealed
	assert.Equal(t, uint64(0), c.Index)
	assert.Equal(t, "streams/7/manifest/00000000000000000000.mlog", c.Tier2Key())
	stopped("the timer to stop once every committed record is in a sealed chunk")

	// An uncommitted record: committed and sealed at the next tick.
	require.NoError(t, l.Append(SealSegment{Header: Header{SegmentID: 1}, DurableBytes: 5}))
	tick()
	require.Len(t, sealed, 1, "the rotation timer did not seal the chunk")
	c = <-sealed
	assert.Equal(t, uint64(1), c.Index)
	s, ok := l.Segment(1)
	require.True(t, ok)
	assert.True(t, s.Sealed, "the timer committed the appended record")
	stopped("the timer to stop once nothing waits")

	// A chunk sealed by a commit (Rotate) leaves nothing for the timer.
	require.NoError(t, l.AppendCommit(ctx, CompressionStarted{Header: Header{SegmentID: 1}, JobID: 3}))
	require.NoError(t, l.Rotate(ctx))
	require.Len(t, sealed, 1)
	<-sealed
	tick()
	require.Len(t, sealed, 0, "nothing left for the timer to seal")
	stopped("the timer to stop at its next tick: the commit sealed its chunk")
	names, err := mem.List(testDir + "/manifest")
	require.NoError(t, err)
	assert.Equal(t, []string{chunkName(0), chunkName(1), chunkName(2)}, names)

	// Disabled: a committed record stays in its open chunk.
	opts.RotationPeriod = -1
	l2 := openT(t, vfs.NewMem(), opts)
	defer l2.Close()
	require.NoError(t, l2.AppendCommit(ctx, SegmentOpened{Header: Header{SegmentID: 1}}))
	l2.mu.Lock()
	assert.False(t, l2.mu.bgRunning, "no timer when rotation is disabled")
	l2.mu.Unlock()
}

func TestFailStopOnSyncError(t *testing.T) {
	ctx := context.Background()
	mem := vfs.NewMem()
	inj := vfs.Wrap(mem, nil)
	l := openT(t, inj, testOpts())
	require.NoError(t, l.AppendCommit(ctx, SegmentOpened{Header: Header{SegmentID: 1}}))
	inj.SetInjector(vfs.OnMatch(0, vfs.Kinds(vfs.OpSync), vfs.FaultEIO, false))
	err := l.AppendCommit(ctx, SealSegment{Header: Header{SegmentID: 1}})
	require.ErrorIs(t, err, ErrFailed)
	require.ErrorIs(t, err, syscall.EIO)
	inj.SetInjector(nil)
	// Every later call fails the same way, even though the disk recovered.
	require.ErrorIs(t, l.Append(CompressionStarted{Header: Header{SegmentID: 1}}), ErrFailed)
	require.ErrorIs(t, l.Commit(ctx), ErrFailed)
	_, err = l.Snapshot(ctx)
	require.ErrorIs(t, err, ErrFailed)
	require.ErrorIs(t, l.Err(), ErrFailed)
	require.NoError(t, l.Close())

	// Reopening recovers from disk: the first record is there; the failed
	// one may or may not be (it was never acknowledged).
	l2 := openT(t, mem, testOpts())
	defer l2.Close()
	s, ok := l2.Segment(1)
	require.True(t, ok)
	assert.True(t, s.Tier0)
	assert.Zero(t, l2.Replay().CorruptionEvents)
}

func TestCommitHonoursContextWhileWaiting(t *testing.T) {
	l := openT(t, vfs.NewMem(), testOpts())
	defer l.Close()
	require.NoError(t, l.Append(SegmentOpened{Header: Header{SegmentID: 1}}))
	l.commitTok <- struct{}{} // another committer holds the token
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	err := l.Commit(ctx)
	<-l.commitTok
	require.True(t, errors.Is(err, context.DeadlineExceeded))
	require.NoError(t, l.Commit(context.Background()), "the record is still pending and commits later")
	_, ok := l.Segment(1)
	assert.True(t, ok)
}

func TestAutomaticSnapshot(t *testing.T) {
	ctx := context.Background()
	mem := vfs.NewMem()
	opts := testOpts()
	opts.SnapshotEveryBytes = 2 * MinChunkCapacity
	l := openT(t, mem, opts)
	defer l.Close()
	blob := make([]byte, 2000)
	for i := range 40 { // ~80 KiB: five 16 KiB chunks
		require.NoError(t, l.AppendCommit(ctx, CustomEvent{Header: Header{SegmentID: 1, LogicalOffset: uint64(i)}, Blob: blob}))
	}
	require.Eventually(t, func() bool {
		l.mu.Lock()
		defer l.mu.Unlock()
		return len(l.mu.snapshots) > 0
	}, 10*time.Second, time.Millisecond, "the background goroutine takes a snapshot once enough bytes are sealed")
	require.Eventually(t, func() bool { return l.Index().LastSnapshotID > 0 }, 10*time.Second, time.Millisecond)
}

func TestOnChunkSealedMayCallBack(t *testing.T) {
	ctx := context.Background()
	mem := vfs.NewMem()
	opts := testOpts()
	var l *Log
	var calls int
	opts.OnChunkSealed = func(c SealedChunk) {
		calls++
		// Runs with no token held: calling back into the Log is fine.
		assert.NoError(t, l.MarkUploaded(ctx, c.Index))
		assert.NoError(t, l.AppendCommit(ctx, CustomEvent{Header: Header{SegmentID: 9}, SchemaID: uint32(c.Index)}))
	}
	l = openT(t, mem, opts)
	defer l.Close()
	require.NoError(t, l.AppendCommit(ctx, SegmentOpened{Header: Header{SegmentID: 1}}))
	done := make(chan struct{})
	go func() {
		defer close(done)
		assert.NoError(t, l.Rotate(ctx))
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("OnChunkSealed calling back into the Log deadlocked")
	}
	assert.Equal(t, 1, calls)
	assert.True(t, l.SealedChunks()[0].Uploaded)
	s, _ := l.Segment(9)
	assert.Equal(t, uint64(1), s.CustomEvents)
}

func TestRecordsByPointerAndCallerSliceUntouched(t *testing.T) {
	ctx := context.Background()
	mem := vfs.NewMem()
	l := openT(t, mem, testOpts())
	recs := []Record{&SegmentOpened{Header: Header{SegmentID: 1}, BaseOffset: 5}, &SealSegment{Header: Header{SegmentID: 1}, DurableBytes: 6}}
	require.NoError(t, l.AppendCommit(ctx, recs...))
	assert.Zero(t, recs[0].GetHeader().TimestampMS, "the caller's records are not modified")
	var nilRec *SealSegment
	require.ErrorIs(t, l.Append(nilRec), ErrInvalidRecord)
	require.ErrorIs(t, l.Append(&SnapshotMarker{}), ErrInvalidRecord)
	s, ok := l.Segment(1)
	require.True(t, ok)
	assert.True(t, s.Sealed, "a pointer record is applied like its value")
	assert.Equal(t, uint64(5), s.BaseOffset)
	require.NoError(t, l.Close())
	l2 := openT(t, mem, testOpts())
	defer l2.Close()
	s2, _ := l2.Segment(1)
	assert.Equal(t, s, s2, "what was applied is what replay rebuilds")
}

func TestCloseStopsGoroutines(t *testing.T) {
	before := runtime.NumGoroutine()
	mem := vfs.NewMem()
	for range 20 {
		opts := testOpts()
		opts.RotationPeriod = time.Millisecond
		opts.SnapshotEveryBytes = MinChunkCapacity
		opts.Clock = nil // the real ticker
		l := openT(t, mem, opts)
		require.NoError(t, l.Append(SegmentOpened{Header: Header{SegmentID: 1}}))
		require.NoError(t, l.Close())
	}
	deadline := time.Now().Add(10 * time.Second)
	for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	require.LessOrEqual(t, runtime.NumGoroutine(), before, "every goroutine a Log started stopped with Close")
}
