package core

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/aof2/aof2/core/segment"
	"github.com/aof2/aof2/core/vfs"
	"github.com/aof2/aof2/internal/testscale"
)

// shortWorkload is a small, fixed sequence of operations; every one of its
// file-system operations is a crash or fault point.
type shortWorkload func(ctx context.Context, s *Stream, o *oracle) error

// appendWait appends, waiting out Rollover but giving up on Admission
// (a fault that will not heal within the test).
func appendWait(ctx context.Context, s *Stream, o *oracle, p []byte) (RecordID, int, error) {
	for {
		state := s.stateN.wait()
		id, err := s.Append(p, AppendOptions{})
		if err == nil {
			return id, o.appended(id, p), nil
		}
		if KindOf(err) != Rollover {
			return 0, 0, err
		}
		select {
		case <-state:
		case <-ctx.Done():
			return 0, 0, ctx.Err()
		}
	}
}

func fixedPayload(i int) []byte {
	sizes := []int{100, 70000, 3000, 400000, 20, 250000, 9000, 150000}
	return payloadFor(i, sizes[i%len(sizes)])
}

// appendFlush: appends crossing a rollover, flushed in three groups, then
// a read-back.
func appendFlush(ctx context.Context, s *Stream, o *oracle) error {
	for group := range 3 {
		var last RecordID
		var n int
		for i := range 4 {
			var err error
			if last, n, err = appendWait(ctx, s, o, fixedPayload(group*4+i)); err != nil {
				return err
			}
		}
		if err := s.Flush(ctx, last); err != nil {
			return err
		}
		o.ack(n)
	}
	_, err := countRecords(s)
	return err
}

// sealPointer: appends with explicit seals (footer + current.sealed
// replacement) in between, then a read-back through sealed segments.
func sealPointer(ctx context.Context, s *Stream, o *oracle) error {
	for round, count := range []int{3, 2, 1} {
		var n int
		for i := range count {
			var err error
			if _, n, err = appendWait(ctx, s, o, payloadFor(round*10+i, 500+i)); err != nil {
				return err
			}
		}
		if round == 2 {
			break
		}
		if err := s.Seal(ctx); err != nil {
			return err
		}
		o.ack(n)
	}
	if err := s.FlushAll(ctx); err != nil {
		return err
	}
	o.ack(len(o.ids))
	_, err := countRecords(s)
	return err
}

var shortWorkloads = map[string]shortWorkload{"append+flush": appendFlush, "seal+pointer": sealPointer}

func shortConfig(fsys vfs.FS) Config {
	return Config{FS: fsys, SegmentSize: segment.MinCapacity, Sync: SyncNone, MaxUnflushedBytes: -1,
		Preparation: segment.PrepareFallocate}
}

// walShortConfig is shortConfig with durability through the node WAL,
// checkpointed every few records.
func walShortConfig(fsys vfs.FS) Config {
	cfg := shortConfig(fsys)
	cfg.Sync, cfg.NodeWAL, cfg.WALCheckpointBytes = SyncAlways, true, 8<<10
	return cfg
}

// shortConfigs are the engine configurations the crash and fault runs
// cover: segments synced by the streams, and durability through the node
// WAL.
var shortConfigs = []struct {
	name string
	mk   func(vfs.FS) Config
}{{"segments", shortConfig}, {"node-wal", walShortConfig}}

// Deadlines of a short workload run: a fault run's is short because some
// faults (a full disk during a seal) block the workload until they heal,
// which they do not there; a run that nothing blocks (fault-free, or cut
// by a crash, after which every operation fails at once) has a long one
// that only bounds a hang, so a slow machine does not fail it.
const (
	faultRunDeadline = 500 * time.Millisecond
	freeRunDeadline  = 30 * time.Second
)

// runShort runs a workload on fsys within deadline and returns its oracle
// and error.
func runShort(fsys vfs.FS, wl shortWorkload, deadline time.Duration) (*oracle, error) {
	return runShortWith(shortConfig, fsys, wl, deadline)
}

func runShortWith(mk func(vfs.FS) Config, fsys vfs.FS, wl shortWorkload, deadline time.Duration) (*oracle, error) {
	ctx, cancel := context.WithTimeout(context.Background(), deadline)
	defer cancel()
	o := &oracle{}
	st, err := Open("/data", mk(fsys))
	if err != nil {
		return o, err
	}
	defer st.Close()
	s, err := st.Stream(1)
	if err != nil {
		return o, err
	}
	return o, wl(ctx, s, o)
}

// verifyRecovered opens fsys and checks the oracle.
func verifyRecovered(fsys vfs.FS, o *oracle) error { return verifyRecoveredWith(shortConfig, fsys, o) }

func verifyRecoveredWith(mk func(vfs.FS) Config, fsys vfs.FS, o *oracle) error {
	st, err := Open("/data", mk(fsys))
	if err != nil {
		return fmt.Errorf("reopen: %w", err)
	}
	defer st.Close()
	if b := st.Broken(); len(b) > 0 {
		return fmt.Errorf("broken after recovery: %v", b)
	}
	s, err := st.Stream(1)
	if err != nil {
		return err
	}
	return o.check(s)
}

// countOps runs a workload fault-free and returns how many operations it
// issued (it varies a little with scheduling; callers add a margin).
func countOps(t *testing.T, mk func(vfs.FS) Config, wl shortWorkload) uint64 {
	w := vfs.Wrap(vfs.NewMem(), nil)
	_, err := runShortWith(mk, w, wl, freeRunDeadline)
	require.NoError(t, err)
	return w.Ops()
}

// TestCrashAfterEveryOperation cuts the power before each file-system
// operation of the short workloads in turn, keeping only synced data or a
// random share of unsynced data, and checks the recovered stream. Under
// -short it takes every third operation (AOF2_CRASH_EVERY sets the stride).
func TestCrashAfterEveryOperation(t *testing.T) {
	every := uint64(testscale.Stride("AOF2_CRASH_EVERY", 1, 3))
	for name, wl := range shortWorkloads {
		for _, sc := range shortConfigs {
			t.Run(name+"/"+sc.name, func(t *testing.T) { crashAfterEvery(t, sc.mk, name, wl, every) })
		}
	}
}

func crashAfterEvery(t *testing.T, mk func(vfs.FS) Config, name string, wl shortWorkload, every uint64) {
	{
		{
			n := countOps(t, mk, wl) + 10
			for k := uint64(0); k < n; k += every {
				for variant := range 2 {
					rng := rand.New(rand.NewPCG(k, uint64(variant)))
					opts := vfs.CrashOptions{Rand: rng}
					if variant == 1 {
						opts.KeepProb, opts.Tear = rng.Float64(), true
					}
					mem := vfs.NewMem()
					c := newCrashAt(mem, k, opts)
					o, err := runShortWith(mk, c.fs, wl, freeRunDeadline)
					if err != nil && !c.hasCrashed() {
						t.Fatalf("crash at op %d/%d: workload failed before the crash: %v", k, n, err)
					}
					c.crash(mem, opts)
					if err := verifyRecoveredWith(mk, c.clone, o); err != nil {
						t.Fatalf("crash at op %d (variant %d): %v", k, variant, err)
					}
				}
			}
			t.Logf("%s: crashed before every %d of %d operations, two ways", name, every, n)
		}
	}
}

// TestFaultAtEveryOperation injects each fault kind at each operation
// index, once and then persistently. Whatever the workload saw, the
// process stays up, errors are typed, and once the faults stop (with or
// without a power loss on top) every acknowledged record is there. Under
// -short it takes every eighth operation (AOF2_FAULT_EVERY sets the stride).
func TestFaultAtEveryOperation(t *testing.T) {
	faults := []vfs.Fault{vfs.FaultEIO, vfs.FaultNoSpace, vfs.FaultShortWrite, vfs.FaultBitFlip}
	every := uint64(testscale.Stride("AOF2_FAULT_EVERY", 1, 8))
	for name, wl := range shortWorkloads {
		for _, sc := range shortConfigs {
			t.Run(name+"/"+sc.name, func(t *testing.T) {
				n := countOps(t, sc.mk, wl) + 10
				runs := 0
				for k := uint64(0); k < n; k += every {
					for _, f := range faults {
						for _, persistent := range []bool{false, true} {
							runs++
							if err := faultRun(sc.mk, wl, k, f, persistent); err != nil {
								t.Fatalf("%s at op %d (persistent=%v): %v", f, k, persistent, err)
							}
						}
					}
				}
				t.Logf("%s: %d fault runs over %d operations", name, runs, n)
			})
		}
	}
}

func faultRun(mk func(vfs.FS) Config, wl shortWorkload, k uint64, f vfs.Fault, persistent bool) error {
	mem := vfs.NewMem()
	w := vfs.Wrap(mem, vfs.OnIndex(k, nil, f, persistent))
	o, err := runShortWith(mk, w, wl, faultRunDeadline)
	if err != nil && !typedError(err) {
		return fmt.Errorf("untyped workload error: %w", err)
	}
	// Reopen while the faults continue: it may fail, but must not panic or
	// lose anything for the final check.
	if st, err := Open("/data", mk(w)); err == nil {
		if s, err := st.Stream(1); err == nil {
			_, _ = countRecords(s)
		}
		_ = st.Close()
	}
	if err := verifyRecoveredWith(mk, mem, o); err != nil {
		return fmt.Errorf("after the faults stopped: %w", err)
	}
	rng := rand.New(rand.NewPCG(k, uint64(f)))
	if err := verifyRecoveredWith(mk, mem.CrashClone(vfs.CrashOptions{Rand: rng, KeepProb: rng.Float64(), Tear: true}), o); err != nil {
		return fmt.Errorf("after the faults stopped and a power loss: %w", err)
	}
	return nil
}

// typedError reports whether err is one callers can branch on.
func typedError(err error) bool {
	for _, target := range []error{ErrStreamFailed, ErrWouldBlock, ErrCorrupt, ErrNoSpace, ErrClosed, context.DeadlineExceeded,
		syscall.EIO, syscall.ENOSPC} {
		if errors.Is(err, target) {
			return true
		}
	}
	return false
}

// TestDiskFullAtAllocation: ENOSPC when preparing a segment surfaces as
// WouldBlock(Admission) carrying ErrNoSpace, never a crash; appends resume
// once space is back.
func TestDiskFullAtAllocation(t *testing.T) {
	ctx := context.Background()
	w := vfs.Wrap(vfs.NewMem(), nil)
	st, err := Open("/data", shortConfig(w))
	require.NoError(t, err)
	defer st.Close()
	s, err := st.Stream(1)
	require.NoError(t, err)
	_, err = s.AppendDurable(ctx, make([]byte, 1000), AppendOptions{})
	require.NoError(t, err)
	w.SetInjector(vfs.OnMatch(0, vfs.Kinds(vfs.OpAllocate), vfs.FaultNoSpace, true))
	big := make([]byte, 400<<10)
	var blocked error
	for range 10 {
		if _, blocked = s.Append(big, AppendOptions{}); blocked != nil {
			break
		}
	}
	require.Error(t, blocked)
	if KindOf(blocked) == Rollover {
		// The preparer may not have failed yet: wait for its verdict.
		require.Eventually(t, func() bool {
			_, blocked = s.Append(big, AppendOptions{})
			return KindOf(blocked) == Admission
		}, 5*time.Second, 10*time.Millisecond)
	}
	require.Equal(t, Admission, KindOf(blocked), "got %v", blocked)
	require.ErrorIs(t, blocked, ErrNoSpace)

	w.SetInjector(nil)
	tctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	_, err = s.AppendCtx(tctx, big, AppendOptions{})
	require.NoError(t, err, "appends resume once space is back")
}

// TestFailedSyncStopsStream: a failed sync is fail-stop; the stream reports
// ErrStreamFailed from then on, and reopening recovers from disk.
func TestFailedSyncStopsStream(t *testing.T) {
	ctx := context.Background()
	mem := vfs.NewMem()
	w := vfs.Wrap(mem, nil)
	st, err := Open("/data", shortConfig(w))
	require.NoError(t, err)
	s, err := st.Stream(1)
	require.NoError(t, err)
	acked, err := s.AppendDurable(ctx, []byte("acknowledged"), AppendOptions{})
	require.NoError(t, err)
	w.SetInjector(vfs.OnMatch(0, vfs.Kinds(vfs.OpMsync, vfs.OpSync), vfs.FaultEIO, false))
	_, err = s.AppendDurable(ctx, []byte("lost"), AppendOptions{})
	require.ErrorIs(t, err, ErrStreamFailed)
	_, err = s.Append([]byte("after"), AppendOptions{})
	require.ErrorIs(t, err, ErrStreamFailed, "no retry and carry on after a failed sync")
	require.NoError(t, s.Flush(ctx, acked), "a record durable before the failure stays acknowledged")
	require.ErrorIs(t, s.FlushAll(ctx), ErrStreamFailed)
	_ = st.Close()

	st, err = Open("/data", shortConfig(mem))
	require.NoError(t, err)
	defer st.Close()
	s, err = st.Lookup(1)
	require.NoError(t, err)
	r, err := s.NewReader(AtStart())
	require.NoError(t, err)
	rec, err := r.Next()
	require.NoError(t, err)
	require.Equal(t, "acknowledged", string(rec.Payload))
}

// TestDiskFullWhileSealing: ENOSPC while writing a seal's metadata keeps
// the seal pending (writers get WouldBlock(Admission)); it completes once
// space is back, and nothing is lost.
func TestDiskFullWhileSealing(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	mem := vfs.NewMem()
	w := vfs.Wrap(mem, nil)
	st, err := Open("/data", shortConfig(w))
	require.NoError(t, err)
	s, err := st.Stream(1)
	require.NoError(t, err)
	o := &oracle{}
	_, n, err := appendWait(ctx, s, o, []byte("first"))
	require.NoError(t, err)
	// Everything that can run out of space does: creating and allocating
	// files, and writing the pointer and the manifest. Writes into a
	// segment's blocks cannot: Prepare reserved them with fallocate.
	w.SetInjector(vfs.OnMatch(

		0, func(op vfs.Op) bool {
			return vfs.Kinds(vfs.OpCreate, vfs.OpAllocate)(op) || op.Kind == vfs.OpWrite && !strings.Contains(op.Path, ".seg")
		}, vfs.FaultNoSpace, true))
	sealed := make(chan error, 1)
	go func() { sealed <- s.Seal(ctx) }()
	require.Eventually(t, func() bool {
		id, err := s.Append([]byte("x"), AppendOptions{})
		if err == nil { // the seal had not started yet: "x" went into the old segment
			o.appended(id, []byte("x"))
		}
		return KindOf(err) == Admission && errors.Is(err, ErrNoSpace)
	}, 5*time.Second, 5*time.Millisecond)
	require.NoError(t, s.Err(), "a full disk is backpressure, not a stream failure")
	w.SetInjector(nil)
	require.NoError(t, <-sealed)
	o.ack(n)
	id, err := s.AppendCtx(ctx, []byte("second"), AppendOptions{})
	require.NoError(t, err)
	n = o.appended(id, []byte("second"))
	require.NoError(t, s.FlushAll(ctx))
	o.ack(n)
	require.NoError(t, st.Close())
	require.NoError(t, verifyRecovered(mem, o))
}
