package core

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/aof2/aof2/core/segment"
	"github.com/aof2/aof2/core/vfs"
)

// checkCatalogState verifies what every catalog change must preserve: the
// chain is unbroken (checkCatalog), the active segment is the newest entry
// and the sealing one the entry before it. It holds the writer lock so the
// slots and the catalog are read together.
func (s *Stream) checkCatalogState() error {
	if err := s.checkCatalog(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	segs := s.cat.Load().segs
	ids := make([]SegmentID, len(segs))
	for i, g := range segs {
		ids[i] = g.id
	}
	if a := s.mu.active; a != nil && (len(segs) == 0 || segs[len(segs)-1] != a) {
		return fmt.Errorf("active segment %d is not the newest catalog entry: catalog %v", a.id, ids)
	}
	if g := s.mu.sealing; g != nil {
		at := len(segs) - 1
		if s.mu.active != nil {
			at--
		}
		if at < 0 || segs[at] != g {
			return fmt.Errorf("sealing segment %d is not where the catalog keeps it: catalog %v", g.id, ids)
		}
	}
	return nil
}

// stressSeed is the seed of a stress run: AOF2_STRESS_SEED replays one.
func stressSeed(t *testing.T) uint64 {
	t.Helper()
	if v := os.Getenv("AOF2_STRESS_SEED"); v != "" {
		seed, err := strconv.ParseUint(v, 10, 64)
		require.NoError(t, err)
		return seed
	}
	seed := uint64(time.Now().UnixNano())
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("replay with AOF2_STRESS_SEED=%d", seed)
		}
	})
	return seed
}

// TestCatalogStress runs appends, seals, retention drops of the head and
// reads of one stream at once, each worker drawing its operations from a
// seeded generator, and checks the catalog after every step. Every catalog
// change must go through the writer lock: a drop of the head that swapped
// the catalog outside it lost a concurrent rollover's new segment, and the
// writer then waited forever for a rollover that could not happen.
func TestCatalogStress(t *testing.T) {
	seed := stressSeed(t)
	steps := count("AOF2_STRESS_STEPS", 1500, 300)
	fsys := vfs.NewMem()
	cfg := Config{FS: fsys, SegmentSize: segment.MinCapacity, SegmentTargetBytes: 2048, Sync: SyncNone, NoManifest: true}
	st, err := Open("/data", cfg)
	require.NoError(t, err)
	defer st.Close()
	s, err := st.Stream(1)
	require.NoError(t, err)

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var dropsN atomic.Int64
	var (
		mu       sync.Mutex
		firstErr error
	)
	fail := func(worker string, step int, err error) {
		mu.Lock()
		defer mu.Unlock()
		if firstErr == nil {
			firstErr = fmt.Errorf("%s, step %d: %w", worker, step, err)
			cancel()
		}
	}
	workers := map[string]func(rng *rand.Rand, step int) error{
		"append": func(rng *rand.Rand, step int) error {
			octx, ocancel := context.WithTimeout(ctx, 10*time.Second)
			defer ocancel()
			_, err := s.AppendCtx(octx, payloadFor(step, 600+rng.IntN(800)), AppendOptions{})
			if errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil {
				return fmt.Errorf("a writer waited 10 s for an append (a lost rollover): %w", err)
			}
			return err
		},
		"seal": func(rng *rand.Rand, _ int) error {
			if rng.IntN(4) != 0 {
				return nil
			}
			return s.Seal(ctx)
		},
		"retention": func(rng *rand.Rand, _ int) error {
			segs := s.SegmentList()
			if len(segs) < 3+rng.IntN(3) {
				return nil
			}
			err := s.DropHead(segs[0].ID)
			if err == nil {
				dropsN.Add(1)
			}
			if errors.Is(err, ErrSegmentBusy) {
				return nil // the head moved, or a reader holds it
			}
			return err
		},
		"read": func(rng *rand.Rand, _ int) error {
			r, err := s.NewReader(AtStart())
			if errors.Is(err, ErrNotFound) {
				return nil
			}
			if err != nil {
				return err
			}
			defer r.Close()
			for range 1 + rng.IntN(20) {
				if _, err := r.Next(); err == io.EOF || errors.Is(err, ErrNotFound) {
					return nil
				} else if err != nil {
					return err
				}
			}
			return nil
		},
	}
	// The writer makes steps appends; the others go on until it is done.
	writerDone := make(chan struct{})
	var wg sync.WaitGroup
	for i, name := range slices.Sorted(maps.Keys(workers)) {
		op := workers[name]
		rng := rand.New(rand.NewPCG(seed, uint64(i)))
		wg.Add(1)
		go func() {
			defer wg.Done()
			if name == "append" {
				defer close(writerDone)
			}
			for step := 0; name != "append" || step < steps; step++ {
				select {
				case <-ctx.Done():
					return
				case <-writerDone:
					return
				default:
				}
				if err := op(rng, step); err != nil {
					fail(name, step, err)
					return
				}
				if err := s.checkCatalogState(); err != nil {
					fail(name, step, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	t.Logf("seed %d: %d appends, %d segments dropped by retention", seed, steps, dropsN.Load())
	require.NoError(t, firstErr)
	require.NoError(t, s.checkCatalogState())
}
