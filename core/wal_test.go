package core

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"

	"github.com/aof2/aof2/core/segment"
	"github.com/aof2/aof2/core/vfs"
)

// walStore opens a store with the node WAL on fsys.
func walStore(t *testing.T, fsys vfs.FS, cpBytes int64) *Store {
	t.Helper()
	st, err := Open("/data", Config{FS: fsys, NodeWAL: true, WALCheckpointBytes: cpBytes, MaxUnflushedBytes: -1})
	require.NoError(t, err)
	return st
}

// TestNodeWALRecordsSurviveWithoutSegmentSyncs: acknowledged appends on
// several streams come back after a power loss that keeps nothing unsynced
// — the segments were never synced, so every record comes from the WAL,
// at the id its append returned.
func TestNodeWALRecordsSurviveWithoutSegmentSyncs(t *testing.T) {
	for _, tc := range []struct {
		name    string
		cpBytes int64
	}{{"no checkpoint", 1 << 30}, {"checkpoint every 4 KiB", 4 << 10}} {
		t.Run(tc.name, func(t *testing.T) {
			mem := vfs.NewMem()
			st := walStore(t, mem, tc.cpBytes)
			const streams, each = 4, 50
			oracles := make([]*oracle, streams)
			var wg sync.WaitGroup
			for i := range streams {
				oracles[i] = &oracle{}
				s, err := st.Stream(StreamID(i + 1))
				require.NoError(t, err)
				wg.Add(1)
				go func() {
					defer wg.Done()
					for j := range each {
						p := []byte(fmt.Sprintf("stream %d record %d", i+1, j))
						id, err := s.AppendDurable(context.Background(), p, AppendOptions{ExtID: uint64(j)})
						if err != nil {
							t.Error(err)
							return
						}
						oracles[i].ack(oracles[i].appended(id, p))
					}
				}()
			}
			wg.Wait()
			crashed := mem.CrashClone(vfs.CrashOptions{Rand: rand.New(rand.NewPCG(1, 2))})
			require.NoError(t, st.Close())

			require.Positive(t, testutil.ToFloat64(st.wal.m.commits))
			require.InDelta(t, streams*each, testutil.ToFloat64(st.wal.m.records), 0)
			st2 := walStore(t, crashed, tc.cpBytes)
			defer st2.Close()
			require.Empty(t, st2.Broken())
			require.Positive(t, testutil.ToFloat64(st2.wal.m.replayed), "the segments were never synced: the WAL gave the records back")
			for i := range streams {
				s, err := st2.Lookup(StreamID(i + 1))
				require.NoError(t, err)
				require.NoError(t, oracles[i].check(s), "stream %d", i+1)
				// Appends go on, and the ids handed out before stay unique:
				// the replayed tail was sealed.
				id, err := s.AppendDurable(context.Background(), []byte("after"), AppendOptions{})
				require.NoError(t, err)
				last := oracles[i].ids[len(oracles[i].ids)-1]
				require.Greater(t, id.Segment(), last.Segment(), "stream %d: the tail the WAL replayed into must be sealed", i+1)
			}
		})
	}
}

// TestNodeWALCleanCloseReplaysNothing: after a clean close the checkpoint
// is at the WAL's end; the stream's tail goes on where it was.
func TestNodeWALCleanCloseReplaysNothing(t *testing.T) {
	mem := vfs.NewMem()
	st := walStore(t, mem, 0)
	s, err := st.Stream(7)
	require.NoError(t, err)
	o := &oracle{}
	for j := range 20 {
		p := []byte(fmt.Sprintf("record %d", j))
		id, err := s.AppendDurable(context.Background(), p, AppendOptions{})
		require.NoError(t, err)
		o.ack(o.appended(id, p))
	}
	require.NoError(t, st.Close())
	names, err := mem.List("/data/wal/segments")
	require.NoError(t, err)
	require.Empty(t, names, "a clean close removes the WAL")

	st2 := walStore(t, mem, 0)
	defer st2.Close()
	s2, err := st2.Lookup(7)
	require.NoError(t, err)
	require.NoError(t, o.check(s2))
	require.Zero(t, st2.wal.last, "nothing to replay")
	id, err := s2.AppendDurable(context.Background(), []byte("next"), AppendOptions{})
	require.NoError(t, err)
	last := o.ids[len(o.ids)-1]
	require.Equal(t, last.Segment(), id.Segment(), "a clean close keeps the tail going")
}

// TestNodeWALOffRefusesUnreplayedWAL: a store that crashed with the node
// WAL on is not opened with it off (its acknowledged records may be only
// in the WAL); opened with it on once and closed cleanly, it opens either
// way.
func TestNodeWALOffRefusesUnreplayedWAL(t *testing.T) {
	mem := vfs.NewMem()
	st := walStore(t, mem, 0)
	s, err := st.Stream(1)
	require.NoError(t, err)
	id, err := s.AppendDurable(context.Background(), []byte("only in the WAL"), AppendOptions{})
	require.NoError(t, err)
	crashed := mem.CrashClone(vfs.CrashOptions{Rand: rand.New(rand.NewPCG(3, 4))})
	require.NoError(t, st.Close())

	_, err = Open("/data", Config{FS: crashed})
	require.ErrorIs(t, err, ErrWALPresent)

	st = walStore(t, crashed, 0)
	require.NoError(t, st.Close())
	st, err = Open("/data", Config{FS: crashed})
	require.NoError(t, err)
	defer st.Close()
	s, err = st.Lookup(1)
	require.NoError(t, err)
	rec, err := s.ReadAt(context.Background(), id)
	require.NoError(t, err)
	require.Equal(t, "only in the WAL", string(rec.Payload))
}

func TestWALEntryRoundTrip(t *testing.T) {
	e := walEntry{stream: 9, id: RecordID(5<<32 | 64), capacity: 1 << 20, ts: -3, ext: 11, payload: []byte("x")}
	got, err := decodeWALEntry(e.appendEncoded(nil))
	require.NoError(t, err)
	require.Equal(t, e, got)
	for _, bad := range [][]byte{nil, make([]byte, walEntryHeader), append([]byte{2}, make([]byte, walEntryHeader)...)} {
		_, err := decodeWALEntry(bad)
		require.ErrorIs(t, err, ErrCorrupt)
	}
}

func FuzzDecodeWALEntry(f *testing.F) {
	e := walEntry{stream: 1, id: RecordID(1<<32 | 64), capacity: 64 << 10, payload: []byte("p")}
	f.Add(e.appendEncoded(nil))
	f.Add(encodeWALCheckpoint(RecordID(2<<32 | 64)))
	f.Fuzz(func(t *testing.T, b []byte) {
		if e, err := decodeWALEntry(b); err == nil {
			require.Equal(t, b, e.appendEncoded(nil))
		}
		if id, err := decodeWALCheckpoint(b); err == nil {
			require.Equal(t, b, encodeWALCheckpoint(id))
		}
	})
}

// TestNodeWALDiskFull: when the WAL's next segment file cannot be
// allocated (ENOSPC), appends get WouldBlock(Admission) carrying
// ErrNoSpace and durable waiters get it too instead of hanging; once space
// is back the queued records become durable and appends go on, with
// nothing lost across a power loss.
func TestNodeWALDiskFull(t *testing.T) {
	ctx := context.Background()
	mem := vfs.NewMem()
	w := vfs.Wrap(mem, nil)
	cfg := Config{FS: w, NodeWAL: true, SegmentSize: segment.MinCapacity, MaxUnflushedBytes: -1}
	st, err := Open("/data", cfg)
	require.NoError(t, err)
	s, err := st.Stream(1)
	require.NoError(t, err)
	o := &oracle{}
	p := make([]byte, 200<<10)
	// The stream's own segments may grow; only the WAL's allocations fail.
	w.SetInjector(vfs.InjectorFunc(func(op vfs.Op) vfs.Fault {
		if op.Kind == vfs.OpAllocate && strings.HasPrefix(op.Path, "/data/wal/") {
			return vfs.FaultNoSpace
		}
		return vfs.NoFault
	}))
	var blocked error
	for i := 0; i < 20 && blocked == nil; i++ {
		// The append itself waits out WouldBlock(Admission) until its
		// context ends (a record queued before the WAL stalled gets the
		// error from the durability wait instead): bound it.
		cctx, ccancel := context.WithTimeout(ctx, 2*time.Second)
		var id RecordID
		if id, blocked = s.AppendDurable(cctx, p, AppendOptions{}); blocked == nil {
			o.ack(o.appended(id, p))
		}
		ccancel()
	}
	require.Error(t, blocked, "a 1 MiB WAL segment fills within 20 records of 200 KiB")
	require.ErrorIs(t, blocked, ErrWouldBlock)
	require.ErrorIs(t, blocked, ErrNoSpace)
	_, err = s.Append(p, AppendOptions{})
	require.Equal(t, Admission, KindOf(err), "appends back off while the WAL cannot take entries: %v", err)

	w.SetInjector(nil)
	tctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	id, err := s.AppendCtx(tctx, p, AppendOptions{})
	require.NoError(t, err, "appends resume once space is back")
	o.appended(id, p)
	require.NoError(t, s.Flush(tctx, id))
	o.ack(len(o.ids))

	crashed := mem.CrashClone(vfs.CrashOptions{Rand: rand.New(rand.NewPCG(9, 9))})
	require.NoError(t, st.Close())
	cfg.FS = crashed
	st2, err := Open("/data", cfg)
	require.NoError(t, err)
	defer st2.Close()
	s2, err := st2.Lookup(1)
	require.NoError(t, err)
	// The record whose durable append failed may or may not be there: the
	// oracle allows an unacknowledged record only where it was appended.
	n, err := countRecords(s2)
	require.NoError(t, err)
	require.GreaterOrEqual(t, n, o.acked)
}

// TestNodeWALQueueBound: past maxWALQueue queued bytes appends get
// WouldBlock(Flush), and an appender waiting it out in AppendCtx goes on
// once the committer has taken the queue.
func TestNodeWALQueueBound(t *testing.T) {
	st := walStore(t, vfs.NewMem(), 0)
	defer st.Close()
	s, err := st.Stream(1)
	require.NoError(t, err)
	w := st.wal
	w.roundMu.Lock() // no round until the test says so
	w.queued.Store(maxWALQueue)
	_, err = s.Append([]byte("x"), AppendOptions{})
	require.Equal(t, Flush, KindOf(err), "got %v", err)
	require.ErrorIs(t, err, errWALQueueFull)

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	done := make(chan error, 1)
	go func() {
		_, err := s.AppendCtx(ctx, []byte("y"), AppendOptions{})
		done <- err
	}()
	w.roundMu.Unlock()
	require.NoError(t, <-done)
}

// TestNodeWALFailedOpenKeepsShutdownUnclean: an open that fails at the WAL
// (after the streams recovered) must not leave the streams marked as
// closed cleanly, or the next open would not seal the tail the WAL
// replays into, and an id handed out before the crash could go to
// another payload.
func TestNodeWALFailedOpenKeepsShutdownUnclean(t *testing.T) {
	mem := vfs.NewMem()
	st := walStore(t, mem, 0)
	s, err := st.Stream(1)
	require.NoError(t, err)
	last, err := s.AppendDurable(context.Background(), []byte("acknowledged"), AppendOptions{})
	require.NoError(t, err)
	crashed := mem.CrashClone(vfs.CrashOptions{Rand: rand.New(rand.NewPCG(5, 6))})
	require.NoError(t, st.Close())

	w := vfs.Wrap(crashed, vfs.InjectorFunc(func(op vfs.Op) vfs.Fault {
		if strings.HasPrefix(op.Path, "/data/wal/") {
			return vfs.FaultEIO
		}
		return vfs.NoFault
	}))
	_, err = Open("/data", Config{FS: w, NodeWAL: true, MaxUnflushedBytes: -1})
	require.Error(t, err)

	st = walStore(t, crashed, 0)
	defer st.Close()
	s, err = st.Lookup(1)
	require.NoError(t, err)
	rec, err := s.ReadAt(context.Background(), last)
	require.NoError(t, err)
	require.Equal(t, "acknowledged", string(rec.Payload))
	id, err := s.AppendDurable(context.Background(), []byte("next"), AppendOptions{})
	require.NoError(t, err)
	require.Greater(t, id.Segment(), last.Segment(), "the tail the WAL replayed into is sealed")
}

// TestNodeWALAcceptLossWhenItDoesNotRecover: a WAL whose own recovery
// fails (its first segment's header damaged) fails the open; accepting
// its loss opens the store with every record the segments hold (at least
// those of the sealed segment; of the 20 after it, acknowledged by the WAL,
// whatever reached the segment before the power loss), the WAL's files
// kept aside, and appends going on at ids never handed out.
func TestNodeWALAcceptLossWhenItDoesNotRecover(t *testing.T) {
	mem := vfs.NewMem()
	st := walStore(t, mem, 1<<30)
	s, err := st.Stream(1)
	require.NoError(t, err)
	o := &oracle{}
	for i := range 50 {
		if i == 30 {
			require.NoError(t, s.Seal(context.Background())) // synced: the segment holds them
		}
		p := []byte(fmt.Sprintf("record %d", i))
		id, err := s.AppendDurable(context.Background(), p, AppendOptions{})
		require.NoError(t, err)
		n := o.appended(id, p)
		if i < 30 {
			o.ack(n)
		}
	}
	crashed := mem.CrashClone(vfs.CrashOptions{})
	require.NoError(t, st.Close())
	names, err := crashed.List("/data/wal/segments")
	require.NoError(t, err)
	var first string
	for _, n := range names {
		if _, ok := segment.ParseFileName(n); ok && (first == "" || n < first) {
			first = n
		}
	}
	require.NotEmpty(t, first)
	flipOnDisk(t, crashed, "/data/wal/segments/"+first, 20, 6) // in the segment header

	cfg := Config{FS: crashed, NodeWAL: true, WALCheckpointBytes: 1 << 30, MaxUnflushedBytes: -1}
	_, err = Open("/data", cfg)
	require.Error(t, err, "a WAL that does not recover fails the open")

	cfg.NodeWALAcceptLoss = true
	st, err = Open("/data", cfg)
	require.NoError(t, err)
	rep := st.NodeWALLoss()
	require.NotNil(t, rep)
	require.Contains(t, rep.Cause, "recover")
	require.Len(t, rep.Streams, 1)
	require.Equal(t, StreamID(1), rep.Streams[0].Stream)
	held := rep.Streams[0].Records
	require.GreaterOrEqual(t, held, uint64(30), "the sealed segment's records")
	kept, err := crashed.List("/data/" + rep.KeptIn + "/segments")
	require.NoError(t, err)
	require.Contains(t, kept, first)
	s, err = st.Lookup(1)
	require.NoError(t, err)
	require.NoError(t, o.check(s))
	id, err := s.AppendDurable(context.Background(), []byte("after"), AppendOptions{})
	require.NoError(t, err)
	require.Greater(t, id, o.ids[49], "no id handed out before is given again")
	require.NoError(t, st.Close())

	cfg.NodeWALAcceptLoss = false
	st, err = Open("/data", cfg)
	require.NoError(t, err)
	defer st.Close()
	require.Nil(t, st.NodeWALLoss())
	s, err = st.Lookup(1)
	require.NoError(t, err)
	n, err := countRecords(s)
	require.NoError(t, err)
	require.Equal(t, int(held)+1, n)
}

// TestNodeWALRecordsPlacedAfterAcceptedDamage: a stream whose segment is
// damaged before the WAL's checkpoint (so the WAL has no copy of the
// damaged record) while the WAL holds its records after the checkpoint:
// the open keeps those entries for the stream (checkpoints stop, another
// stream goes on appending), and accepting the stream's loss fills the
// damage and writes them back after its intact records, so only the
// damaged record is lost; then checkpoints resume, and a reopen replays
// the WAL without contradiction.
func TestNodeWALRecordsPlacedAfterAcceptedDamage(t *testing.T) {
	ctx := context.Background()
	mem := vfs.NewMem()
	cfg := Config{FS: mem, NodeWAL: true, WALCheckpointBytes: 1 << 30, MaxUnflushedBytes: -1}
	st, err := Open("/data", cfg)
	require.NoError(t, err)
	s1, err := st.Stream(1)
	require.NoError(t, err)
	s2, err := st.Stream(2)
	require.NoError(t, err)
	before := writeDurable(t, s1, 50, 100)
	writeDurable(t, s2, 5, 100)
	require.NoError(t, st.wal.checkpoint(st.wal.last)) // segments synced: the mark proves the 50
	after := writeDurable(t, s1, 10, 100)              // only in the WAL
	crashed := mem.CrashClone(vfs.CrashOptions{})
	require.NoError(t, st.Close())
	flipOnDisk(t, crashed, tailPathIn(t, crashed, "/data/streams/1/segments"), int64(before.ids[10].Offset())+30, 2)

	cfg.FS = crashed
	st, err = Open("/data", cfg)
	require.NoError(t, err)
	s1, err = st.Lookup(1)
	require.NoError(t, err)
	require.ErrorIs(t, s1.Info().Refused, ErrDamaged)
	require.Error(t, st.wal.blockedErr(), "the WAL keeps the damaged stream's entries")
	s2, err = st.Lookup(2)
	require.NoError(t, err)
	_, err = s2.AppendDurable(ctx, []byte("stream 2 goes on"), AppendOptions{})
	require.NoError(t, err)

	rep, err := s1.AcceptLoss(ctx)
	require.NoError(t, err)
	require.Equal(t, uint64(10), rep.FromNodeWAL, "the WAL's records written back")
	require.Zero(t, rep.NodeWALKept)
	require.Equal(t, uint64(59), rep.Records, "only the damaged record is lost")
	require.NoError(t, st.wal.blockedErr(), "checkpoints resume")
	got := readEvery(t, s1)
	require.Len(t, got, 59)
	want := append(append([]RecordID{}, before.ids[:10]...), before.ids[11:]...)
	want = append(want, after.ids...)
	wantPayloads := append(append([][]byte{}, before.payloads[:10]...), before.payloads[11:]...)
	wantPayloads = append(wantPayloads, after.payloads...)
	for i, r := range got {
		require.Equal(t, want[i], r.ID, "record %d", i)
		require.Equal(t, wantPayloads[i], r.Payload, "record %d", i)
	}
	next, err := s1.AppendDurable(ctx, []byte("after the accepted loss"), AppendOptions{})
	require.NoError(t, err)
	require.Greater(t, next, after.ids[9])
	require.NoError(t, st.Close())

	st, err = Open("/data", cfg)
	require.NoError(t, err)
	defer st.Close()
	require.NoError(t, st.wal.blockedErr())
	s1, err = st.Lookup(1)
	require.NoError(t, err)
	require.NoError(t, s1.Info().Refused)
	require.Len(t, readEvery(t, s1), 60)
}

// tailPathIn is the newest segment file in dir.
func tailPathIn(t *testing.T, fsys vfs.FS, dir string) string {
	t.Helper()
	names, err := fsys.List(dir)
	require.NoError(t, err)
	var last string
	for _, n := range names {
		if _, ok := segment.ParseFileName(n); ok && n > last {
			last = n
		}
	}
	require.NotEmpty(t, last)
	return dir + "/" + last
}
