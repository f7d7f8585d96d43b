package manifest

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/aof2/aof2/core/vfs"
)

// injectWorkload is a short deterministic workload: Open, steps, Close.
type injectWorkload struct {
	name       string
	opts       func() Options
	commitOnly bool
	maxKey     int
	steps      int
}

var injectWorkloads = []injectWorkload{
	{name: "commit", commitOnly: true, maxKey: 40, steps: 40, opts: func() Options {
		o := testOpts()
		o.ChunkCapacity = 64 << 10 // the whole workload fits: no rotation
		return o
	}},
	{name: "rotation", maxKey: 600, steps: 40, opts: testOpts},
	{name: "rotation json", maxKey: 600, steps: 25, opts: func() Options {
		o := testOpts()
		o.LogOnly = false
		return o
	}},
}

// run runs w against fsys from the oracle's state. It returns the first
// error a call returned (nil if none).
func (w injectWorkload) run(ctx context.Context, fsys vfs.FS, o *oracle) (firstErr error) {
	l, err := Open(ctx, fsys, testDir, 7, w.opts())
	if err != nil {
		return err
	}
	d := &driver{r: rand.New(rand.NewPCG(99, 1)), o: o, l: l, seq: 1 << 20, commitOnly: w.commitOnly}
	for range w.steps {
		if !d.step(ctx, w.maxKey) {
			break
		}
	}
	firstErr = l.Err()
	if cerr := l.Close(); firstErr == nil {
		firstErr = cerr
	}
	return firstErr
}

// baseState prepares a disk holding a few chunks and a snapshot, so that
// the injected run's Open has chunks and snapshots to read.
func baseState(t *testing.T, w injectWorkload) (*vfs.MemFS, *oracle) {
	ctx := context.Background()
	mem := vfs.NewMem()
	o := newOracle(7)
	l, err := Open(ctx, mem, testDir, 7, w.opts())
	require.NoError(t, err)
	d := &driver{r: rand.New(rand.NewPCG(1, 1)), o: o, l: l, commitOnly: w.commitOnly}
	for range 30 {
		require.True(t, d.step(ctx, w.maxKey))
	}
	require.NoError(t, l.Commit(ctx))
	o.ack()
	require.NoError(t, l.Close())
	return mem, o
}

// verifyRecovery reopens fsys without faults and checks the oracle.
func verifyRecovery(ctx context.Context, fsys vfs.FS, o *oracle, opts Options) error {
	l, err := Open(ctx, fsys, testDir, 7, opts)
	if err != nil {
		return fmt.Errorf("recovery failed: %w", err)
	}
	defer l.Close()
	if st := l.Replay(); st.CorruptionEvents != 0 {
		return fmt.Errorf("a failed operation looked like corruption: %+v", st.Corruptions)
	}
	return o.check(l.Index())
}

// TestErrorInjectionAtEachOp fails each file-system operation of the
// commit and rotation workloads in turn, with EIO, ENOSPC and a short
// write. Whatever the fault: no panic, errors wrap a sentinel or the
// errno, a write-path failure is fail-stop, and both a process restart
// (the page cache as the failed process left it) and a power loss right
// after recover with every acknowledged record and no corruption.
func TestErrorInjectionAtEachOp(t *testing.T) {
	ctx := context.Background()
	for _, w := range injectWorkloads {
		t.Run(w.name, func(t *testing.T) {
			base, baseOracle := baseState(t, w)
			// Count the operations of a clean run.
			counter := vfs.Wrap(base.CrashClone(vfs.CrashOptions{Rand: rand.New(rand.NewPCG(0, 0)), KeepProb: 1}), nil)
			require.NoError(t, w.run(ctx, counter, baseOracle.clone()))
			total := counter.Ops()
			require.Greater(t, total, uint64(100))
			if w.commitOnly {
				names, err := counter.List(mdirT)
				require.NoError(t, err)
				require.Len(t, names, 2, "the commit workload never rotates (chunk 0 sealed by the second Open, chunk 1 active): %v", names)
			}
			outcomes := map[string]int{}
			for _, fault := range []vfs.Fault{vfs.FaultEIO, vfs.FaultNoSpace, vfs.FaultShortWrite} {
				for i := range total {
					mem := base.CrashClone(vfs.CrashOptions{Rand: rand.New(rand.NewPCG(0, 0)), KeepProb: 1})
					inj := vfs.Wrap(mem, vfs.OnIndex(i, nil, fault, false))
					o := baseOracle.clone()
					err := w.run(ctx, inj, o)
					where := fmt.Sprintf("%s at op %d of %d", fault, i, total)
					switch {
					case err == nil:
						outcomes["no error surfaced"]++
					case errors.Is(err, ErrFailed):
						outcomes["fail-stop"]++
						want := syscall.EIO
						if fault == vfs.FaultNoSpace {
							want = syscall.ENOSPC
						}
						require.ErrorIs(t, err, want, where)
					default:
						outcomes["error"]++
						require.True(t, errors.Is(err, syscall.EIO) || errors.Is(err, syscall.ENOSPC), "%s: %v", where, err)
					}
					powerLoss := mem.CrashClone(vfs.CrashOptions{Rand: rand.New(rand.NewPCG(i, 7))})
					if err := verifyRecovery(ctx, powerLoss, o.clone(), w.opts()); err != nil {
						t.Fatalf("%s, then power loss: %v", where, err)
					}
					if err := verifyRecovery(ctx, mem, o, w.opts()); err != nil {
						t.Fatalf("%s, then restart: %v", where, err)
					}
				}
			}
			t.Logf("%d ops × 3 faults: %v", total, outcomes)
			assert.Greater(t, outcomes["fail-stop"], 0)
		})
	}
}

// TestBitFlipOnRead flips a bit in each read of Open's replay: a flipped
// read is either reported as corruption (and the stream needs repair) or
// it changed nothing the replay relies on; replay never returns a shorter
// log silently.
func TestBitFlipOnRead(t *testing.T) {
	ctx := context.Background()
	w := injectWorkloads[1]
	base, o := baseState(t, w)
	counter := vfs.Wrap(base, nil)
	l, err := Open(ctx, counter, testDir, 7, w.opts())
	require.NoError(t, err)
	require.NoError(t, l.Close())
	reads := 0
	for i := range counter.Ops() {
		mem := base.CrashClone(vfs.CrashOptions{Rand: rand.New(rand.NewPCG(0, 0)), KeepProb: 1})
		flipped := false
		inj := vfs.Wrap(mem, vfs.InjectorFunc(func(op vfs.Op) vfs.Fault {
			if op.Index == i && op.Kind == vfs.OpRead {
				flipped = true
				return vfs.FaultBitFlip
			}
			return vfs.NoFault
		}))
		res, err := replay(ctx, inj, mdirT, 7, SystemClock)
		require.NoError(t, err)
		if !flipped {
			continue
		}
		reads++
		st := res.stats
		if st.CorruptionEvents == 0 {
			require.NoError(t, o.clone().check(res.index), "read %d: an unreported flip changed the replay", i)
		} else if !st.NeedsRepair {
			// Only a damaged snapshot may be survived without repair, and
			// then the fallback replay must be complete.
			require.NoError(t, o.clone().check(res.index), "read %d", i)
		}
	}
	require.GreaterOrEqual(t, reads, 3, "the snapshot, the chunk header and the chunk body")
}
