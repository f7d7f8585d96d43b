package core

import (
	"context"
	"math/rand/v2"
	"os"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/hashicorp/go-hclog"
	"github.com/stretchr/testify/require"

	"github.com/aof2/aof2/core/vfs"
)

// TestPowerLossNodeWAL is TestPowerLoss with the node WAL on and three
// streams appending at once, so that their records interleave in the WAL
// and one sync acknowledges several streams: the power is cut at a random
// file-system operation (sometimes again during recovery), and every
// stream's oracle must hold.
func TestPowerLossNodeWAL(t *testing.T) {
	runPowerLossCycles(t, "node WAL power-loss", 0xa0f3, 600, walPowerLossCycle)
}

// TestPowerLossNodeWALSeed reruns one seed of TestPowerLossNodeWAL.
func TestPowerLossNodeWALSeed(t *testing.T) { rerunPowerLossSeed(t, 600, walPowerLossCycle) }

func walPowerLossCycle(t *testing.T, seed, k uint64, estimate *atomic.Int64) {
	t.Helper()
	fail := func(format string, args ...any) {
		t.Helper()
		t.Fatalf("seed %d, crash at op %d (rerun: AOF2_CRASH_SEED=%d AOF2_CRASH_K=%d go test -run TestPowerLossNodeWALSeed ./core): "+format,
			append([]any{seed, k, seed, k}, args...)...)
	}
	const streams = 3
	rng := rand.New(rand.NewPCG(seed, 0xa0f4))
	mem := vfs.NewMem()
	c := newCrashAt(mem, k, crashOptions(rand.New(rand.NewPCG(seed, 1))))
	cfg := randomConfig(rng, c.fs)
	cfg.Sync, cfg.NodeWAL = SyncAlways, true
	cfg.WALCheckpointBytes = []int64{0, 2 << 10, 16 << 10}[rng.IntN(3)]
	if os.Getenv("AOF2_CRASH_DEBUG") != "" {
		cfg.Logger = hclog.New(&hclog.LoggerOptions{Output: os.Stderr, Level: hclog.Info})
	}
	ctx, cancel := c.context()
	oracles := make([]*oracle, streams)
	for i := range oracles {
		oracles[i] = &oracle{}
	}
	errs := make([]error, streams)
	st, err := Open("/data", cfg)
	if err == nil {
		var wg sync.WaitGroup
		for i := range streams {
			s, err := st.Stream(StreamID(i + 1))
			if err != nil {
				errs[i] = err
				continue
			}
			r := rand.New(rand.NewPCG(seed, uint64(10+i)))
			wg.Add(1)
			go func() {
				defer wg.Done()
				errs[i] = workload(ctx, r, s, oracles[i], 20+r.IntN(80))
			}()
		}
		wg.Wait()
	}
	for i, e := range append(errs, err) {
		if e != nil && !c.hasCrashed() {
			fail("workload %d failed before the crash: %v", i, e)
		}
	}
	recovered := powerCut(c, mem, st, cancel, cfg, seed, rng, estimate, 60)
	cfg.FS = recovered
	st, err = Open("/data", cfg)
	if err != nil {
		fail("recovery failed: %v", err)
	}
	defer st.Close()
	if b := st.Broken(); len(b) > 0 {
		fail("streams broken after recovery: %v", b)
	}
	for i := range streams {
		o := oracles[i]
		s, err := st.Stream(StreamID(i + 1))
		if err != nil {
			fail("stream %d after recovery: %v", i+1, err)
		}
		if err := o.check(s); err != nil {
			if os.Getenv("AOF2_CRASH_DEBUG") != "" {
				t.Logf("config: mode=%v prep=%v target=%d initial=%d checkpoint=%d", cfg.WriteMode, cfg.Preparation,
					cfg.SegmentTargetBytes, cfg.InitialSegmentSize, cfg.WALCheckpointBytes)
				t.Logf("recovery: %+v", st.Recovery())
				t.Logf("ids: %v acked %d", o.ids, o.acked)
			}
			fail("stream %d: %v", i+1, err)
		}
		n, err := countRecords(s)
		require.NoError(t, err)
		handedOut := append([]RecordID(nil), o.ids...)
		o.truncateTo(n)
		for j := range 3 {
			p := randomPayload(rng, 1000+j)
			id, err := s.AppendDurable(context.Background(), p, AppendOptions{})
			if err != nil {
				fail("stream %d: append after recovery: %v", i+1, err)
			}
			for _, old := range handedOut[n:] {
				if old == id {
					fail("stream %d: id %s handed out before the crash went to another payload", i+1, id)
				}
			}
			o.ack(o.appended(id, p))
		}
		if err := o.check(s); err != nil {
			fail("stream %d after appending post-recovery: %v", i+1, err)
		}
	}
}
