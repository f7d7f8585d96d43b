package core

import (
	"context"
	"math/rand/v2"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/aof2/aof2/core/segment"
	"github.com/aof2/aof2/core/vfs"
)

// TestFailedReservationIsRetried: the durable mark's reservation
// of the next segment id fails once (EIO writing durable.mark). The
// preparer retries, and the retry must write the reservation again before
// the segment is offered. After a power loss that loses the (never synced)
// new segment file, recovery must not hand out ids of that segment again.
func TestFailedReservationIsRetried(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	mem := vfs.NewMem()
	w := vfs.Wrap(mem, nil)
	st, err := Open("/data", shortConfig(w))
	require.NoError(t, err)
	s, err := st.Stream(1)
	require.NoError(t, err)
	_, err = s.AppendDurable(ctx, []byte("first"), AppendOptions{})
	require.NoError(t, err)
	// The round's mark write happens after the waiters are woken: let it finish.
	s.roundMu.Lock()
	//lint:ignore SA2001 the empty critical section waits for the round
	s.roundMu.Unlock()

	var failed atomic.Int32
	w.SetInjector(vfs.InjectorFunc(func(op vfs.Op) vfs.Fault {
		if op.Kind == vfs.OpWrite && strings.HasSuffix(op.Path, "durable.mark") && failed.CompareAndSwap(0, 1) {
			return vfs.FaultEIO
		}
		return vfs.NoFault
	}))
	var handedOut RecordID
	p := make([]byte, 1000)
	// No sync round (the syncer seals segment 1 after the rollover) runs
	// before the power loss: nothing of segment 2 is durable.
	s.roundMu.Lock()
	for {
		id, err := s.AppendCtx(ctx, p, AppendOptions{})
		require.NoError(t, err)
		if id.Segment() == 2 {
			handedOut = id
			break
		}
	}
	require.Equal(t, int32(1), failed.Load(), "the reservation write of segment 2 failed once")
	t.Logf("handed out %s (not durable)", handedOut)
	if mk, _ := segment.ReadMark(mem, s.markPath()); mk != nil {
		t.Logf("mark on disk: %+v", *mk)
	}

	again := appendAfterPowerLoss(t, ctx, mem, st, s)
	require.NotEqual(t, handedOut, again, "record id handed out twice")
	require.Greater(t, again.Segment(), handedOut.Segment(), "segment %d was activated, its id must not be reused", handedOut.Segment())
}

// TestMarkCreatedWithoutDurableEntryIsSyncedAgain: the first write of a
// stream's durable mark creates the file; its directory sync fails once
// (EIO). The next write syncs the directory again, so the reservation of
// segment 1 is durable before segment 1 takes records, or a power loss
// would let recovery hand out segment 1's ids again.
func TestMarkCreatedWithoutDurableEntryIsSyncedAgain(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	mem := vfs.NewMem()
	var armed, failed atomic.Int32
	w := vfs.Wrap(mem, vfs.InjectorFunc(func(op vfs.Op) vfs.Fault {
		if op.Kind == vfs.OpCreate && strings.HasSuffix(op.Path, "durable.mark") {
			armed.Store(1)
		}
		if op.Kind == vfs.OpSyncDir && armed.Load() == 1 && failed.CompareAndSwap(0, 1) {
			return vfs.FaultEIO
		}
		return vfs.NoFault
	}))
	st, err := Open("/data", shortConfig(w))
	require.NoError(t, err)
	s, err := st.Stream(1)
	require.NoError(t, err)
	s.roundMu.Lock() // no sync round before the power loss
	handedOut, err := s.AppendCtx(ctx, []byte("not durable"), AppendOptions{})
	require.NoError(t, err)
	require.Equal(t, int32(1), failed.Load(), "the mark's directory sync failed once")
	t.Logf("handed out %s (not durable)", handedOut)

	again := appendAfterPowerLoss(t, ctx, mem, st, s)
	require.NotEqual(t, handedOut, again, "record id handed out twice")
}

// appendAfterPowerLoss loses the power (only what was synced survives)
// while s's sync rounds are held (s.roundMu, released here), reopens the
// store and appends a record to stream 1: its id.
func appendAfterPowerLoss(t *testing.T, ctx context.Context, mem *vfs.MemFS, st *Store, s *Stream) RecordID {
	t.Helper()
	crashed := mem.CrashClone(vfs.CrashOptions{Rand: rand.New(rand.NewPCG(1, 2))})
	s.roundMu.Unlock()
	_ = st.Close()
	st2, err := Open("/data", shortConfig(crashed))
	require.NoError(t, err)
	t.Cleanup(func() { _ = st2.Close() })
	s2, err := st2.Stream(1)
	require.NoError(t, err)
	again, err := s2.AppendCtx(ctx, []byte("after the crash"), AppendOptions{})
	require.NoError(t, err)
	return again
}

// markRegression runs: three durable records a, b, c in segment 1 (every
// round writes the mark); with fail, the mark write of c's round fails
// once (EIO), so the mark on disk still proves a and b. Then unsynced
// appends fill segment 1 past half, so the preparer reserves segment 2 by
// writing the mark. Power loss (only synced data kept); then record b is
// damaged and c zeroed on the recovered disk. It returns the ids of a, b,
// c and the reopened store.
func markRegression(t *testing.T, fail bool) (acked []RecordID, st2 *Store, s2 *Stream) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	mem := vfs.NewMem()
	w := vfs.Wrap(mem, nil)
	cfg := shortConfig(w)
	cfg.DurableMarkInterval = time.Nanosecond
	st, err := Open("/data", cfg)
	require.NoError(t, err)
	s, err := st.Stream(1)
	require.NoError(t, err)
	settle := func() {
		s.roundMu.Lock()
		//lint:ignore SA2001 the empty critical section waits for the round
		s.roundMu.Unlock()
	}
	for i, p := range []string{"record a", "record b", "record c"} {
		if i == 2 && fail {
			var failed atomic.Int32
			w.SetInjector(vfs.InjectorFunc(func(op vfs.Op) vfs.Fault {
				if op.Kind == vfs.OpWrite && strings.HasSuffix(op.Path, "durable.mark") && failed.CompareAndSwap(0, 1) {
					return vfs.FaultEIO
				}
				return vfs.NoFault
			}))
		}
		id, err := s.AppendDurable(ctx, []byte(p), AppendOptions{})
		require.NoError(t, err)
		acked = append(acked, id)
		settle()
	}
	w.SetInjector(nil)
	s.roundMu.Lock() // no sync round from here to the power loss
	// Unsynced appends past half of segment 1: the preparer reserves segment 2.
	for range 40 {
		_, err := s.Append(make([]byte, 1000), AppendOptions{})
		require.NoError(t, err)
	}
	require.Eventually(t, func() bool {
		s.mu.Lock()
		defer s.mu.Unlock()
		return s.mu.next != nil
	}, 5*time.Second, time.Millisecond, "segment 2 prepared")
	mk, err := segment.ReadMark(mem, s.markPath())
	require.NoError(t, err)
	t.Logf("mark on disk before the power loss: %+v", *mk)

	crashed := mem.CrashClone(vfs.CrashOptions{Rand: rand.New(rand.NewPCG(1, 2))})
	s.roundMu.Unlock()
	_ = st.Close()
	// Damage b (a flipped payload byte), and zero c, on the recovered disk.
	names, err := crashed.List(s.segDir)
	require.NoError(t, err)
	var segPath string
	for _, n := range names {
		if strings.HasPrefix(n, "00000000000000000001") && strings.HasSuffix(n, ".seg") {
			segPath = s.segDir + "/" + n
		}
	}
	require.NotEmpty(t, segPath, "segment 1 in %v", names)
	f, err := crashed.OpenReadWrite(segPath)
	require.NoError(t, err)
	bOff, cOff := int64(acked[1].Offset()), int64(acked[2].Offset())
	_, err = f.WriteAt([]byte{'X'}, bOff+segment.RecordHeaderSize)
	require.NoError(t, err)
	_, err = f.WriteAt(make([]byte, segment.RecordSpan(len("record c"))), cOff)
	require.NoError(t, err)
	require.NoError(t, f.Sync())
	require.NoError(t, f.Close())

	st2, err = Open("/data", shortConfig(crashed))
	require.NoError(t, err)
	s2, _ = st2.Lookup(1)
	return acked, st2, s2
}

// TestFailedMarkWriteKeepsTheProof: a mark write that fails keeps the
// proof last written (before, markDurable reset it to zero, and the
// preparer's next reservation wrote that zeroed state as the newest mark,
// replacing on disk the proof that records a and b are durable; damage to
// acknowledged record b then read as a torn tail and b was dropped
// silently). The same damage is reported with and without the failed
// write.
func TestFailedMarkWriteKeepsTheProof(t *testing.T) {
	for _, fail := range []bool{false, true} {
		t.Run(map[bool]string{false: "control", true: "failed-mark-write"}[fail], func(t *testing.T) {
			acked, st2, s2 := markRegression(t, fail)
			defer st2.Close()
			broken := st2.Broken()
			var n int
			var cerr error
			if s2 != nil {
				n, cerr = countRecords(s2)
			}
			var damaged error
			if s2 != nil {
				for _, g := range s2.cat.Load().segs {
					if g.damage != nil {
						damaged = g.damage.err
					}
				}
			}
			t.Logf("after recovery: broken=%v records=%d (err %v) damage=%v", broken, n, cerr, damaged)
			if len(broken) == 0 && cerr == nil && damaged == nil {
				require.GreaterOrEqual(t, n, len(acked),
					"acknowledged durable records silently dropped: damage to a record the mark had proved read as a torn tail")
			}
		})
	}
}
