package core

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"

	"github.com/aof2/aof2/core/segment"
	"github.com/aof2/aof2/core/vfs"
)

// TestWALFailWhileStalledWakesAppenders: an appender waiting out a
// WAL stall (WouldBlock(Admission), retryBlocked waits on stateN) must be
// woken when the WAL then fails for good. The sequence is the one an
// inline round (commitInline -> round(false) -> write(wait=false)) runs:
// setStall(err) at wal.go:331, break, then FlushAll fails (EIO) and
// commitInline calls fail (wal.go:217) — with the stall still set.
// TestWALFailWhileStalledWakesAppenders: an appender waiting out a WAL
// stall (WouldBlock(Admission), on its stream's state) gets the WAL's
// failure when the WAL then fails, instead of waiting until its context
// ends (fail woke only the durability waiters).
func TestWALFailWhileStalledWakesAppenders(t *testing.T) {
	st := walStore(t, vfs.NewMem(), 0)
	defer st.Close()
	s, err := st.Stream(1)
	require.NoError(t, err)
	w := st.wal

	w.setStall(errors.New("node WAL: next segment: ENOSPC (injected)"))
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	done := make(chan error, 1)
	go func() {
		_, err := s.AppendDurable(ctx, []byte("x"), AppendOptions{})
		done <- err
	}()
	time.Sleep(200 * time.Millisecond) // the appender is blocked on stateN
	w.fail(errors.New("node WAL: sync: EIO (injected)"))
	err = <-done
	require.ErrorIs(t, err, ErrStreamFailed, "the appender must get the WAL's failure, not wait until its context ends: %v", err)
}

// TestWALCheckpointRecoversAfterTransientFault: a failed write of the
// checkpoint file (ENOSPC) is retried by the next checkpoint once space is
// back; before, it stopped checkpoints until the store was reopened, and
// the WAL kept every segment.
func TestWALCheckpointRecoversAfterTransientFault(t *testing.T) {
	mem := vfs.NewMem()
	iw := vfs.Wrap(mem, nil)
	st, err := Open("/data", Config{FS: iw, NodeWAL: true, SegmentSize: segment.MinCapacity, WALCheckpointBytes: 64 << 10, MaxUnflushedBytes: -1})
	require.NoError(t, err)
	defer st.Close()
	s, err := st.Stream(1)
	require.NoError(t, err)
	ctx := context.Background()
	p := make([]byte, 32<<10)
	var hit atomic.Int32
	iw.SetInjector(vfs.InjectorFunc(func(op vfs.Op) vfs.Fault {
		if strings.Contains(op.Path, "/data/wal/checkpoint") && (op.Kind == vfs.OpCreate || op.Kind == vfs.OpWrite) &&
			hit.CompareAndSwap(0, 1) {
			return vfs.FaultNoSpace // once: space is back for the next checkpoint
		}
		return vfs.NoFault
	}))
	for i := 0; i < 4; i++ {
		_, err := s.AppendDurable(ctx, p, AppendOptions{})
		require.NoError(t, err)
	}
	require.Eventually(t, func() bool { return hit.Load() > 0 }, 5*time.Second, 10*time.Millisecond)
	for i := 0; i < 200; i++ {
		_, err := s.AppendDurable(ctx, p, AppendOptions{})
		require.NoError(t, err)
	}
	require.NoError(t, st.wal.blockedErr(), "checkpoints stay stopped after a transient fault")
	require.Equal(t, 0.0, testutil.ToFloat64(st.wal.m.blocked))
	require.Eventually(t, func() bool { return len(st.wal.s.SegmentList()) <= 3 }, 10*time.Second, 10*time.Millisecond,
		"the WAL keeps every segment: checkpoints stay stopped after a transient fault")
}
