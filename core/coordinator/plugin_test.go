package coordinator

import (
	"context"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/stretchr/testify/require"

	"github.com/aof2/aof2/core"
	"github.com/aof2/aof2/core/budget"
	"github.com/aof2/aof2/core/tier2"
	"github.com/aof2/aof2/internal/testbin"
	"github.com/aof2/aof2/pluginapi"
	pluginhost "github.com/aof2/aof2/pluginapi/host"
)

func TestMain(m *testing.M) { os.Exit(testbin.Run(m)) }

// TestPluginKilledMidUpload runs the tiers against the fs backend as a
// real plugin process under the supervisor, and SIGKILLs the plugin again
// and again (≥ 100 times) while three streams write through a small tier 0
// and segments are uploaded: the host stays up, the supervisor relaunches
// the plugin, uploads resume idempotently, and every record reads back,
// from tier 2 too.
func TestPluginKilledMidUpload(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and kills a plugin binary")
	}
	kills := envInt("AOF2_PLUGIN_KILLS", 100)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	dir, root := t.TempDir(), t.TempDir()
	pluginBin := testbin.Path(t, "aof2-plugin-fs")

	sup, err := pluginhost.NewSupervisor(ctx, pluginhost.SupervisorConfig{
		Launch: pluginhost.LaunchConfig{Path: pluginBin, Logger: hclog.NewNullLogger(), StartTimeout: 10 * time.Second,
			Configure: pluginapi.ConfigureRequest{Config: map[string]string{"root": root}, StagingDir: dir}},
		MinBackoff: 5 * time.Millisecond, MaxBackoff: 50 * time.Millisecond, PollInterval: 5 * time.Millisecond,
		BreakerThreshold: 1_000_000, Logger: hclog.NewNullLogger(),
	})
	require.NoError(t, err)
	defer sup.Close(context.Background())
	remote, err := tier2.New(sup, tier2.Config{Logger: hclog.NewNullLogger(),
		Backoff: tier2.Backoff{Initial: 5 * time.Millisecond, Max: 100 * time.Millisecond, Attempts: 20},
		Breaker: tier2.BreakerConfig{Cooldown: 20 * time.Millisecond}})
	require.NoError(t, err)
	r := startRig(t, Config{DataDir: dir, Tier2: remote, ScanInterval: 10 * time.Millisecond, Logger: hclog.NewNullLogger(),
		Tier0: budget.Config{MaxBytes: 8 * segSize, Policy: budget.PolicyTier2}}, core.Config{})
	defer r.stop(t)
	st := r.st

	var killed atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		for killed.Load() < int64(kills) {
			select {
			case <-stop:
				return
			case <-time.After(20 * time.Millisecond):
			}
			if p := sup.Current(); p != nil {
				if err := syscall.Kill(p.Pid(), syscall.SIGKILL); err == nil {
					killed.Add(1)
				}
			}
		}
	})
	var ss []*core.Stream
	for id := range 3 {
		s, err := st.Stream(core.StreamID(id + 1))
		require.NoError(t, err)
		ss = append(ss, s)
	}
	n := 0
	for ; killed.Load() < int64(kills) || n%200 != 0; n++ {
		for _, s := range ss {
			_, err := s.AppendCtx(ctx, payload(n), core.AppendOptions{})
			require.NoError(t, err, "record %d", n)
		}
		if n%200 == 199 {
			for _, s := range ss {
				require.NoError(t, s.FlushAll(ctx))
			}
		}
	}
	close(stop)
	wg.Wait()
	require.GreaterOrEqual(t, killed.Load(), int64(kills))
	require.NoError(t, sup.WaitReady(ctx))
	for _, s := range ss {
		require.NoError(t, s.Seal(ctx))
		waitUploaded(t, s)
		require.Equal(t, n, readAll(t, ctx, s))
	}
	t.Logf("%d records per stream; plugin killed %d times, restarted %d times", n, killed.Load(), sup.Restarts())
	t.Logf("tier 2: %+v", remote.Stats())
	require.GreaterOrEqual(t, sup.Restarts(), kills/2)
}
