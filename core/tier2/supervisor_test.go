package tier2

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/aof2/aof2/conformance/fake"
	"github.com/aof2/aof2/internal/testbin"
	"github.com/aof2/aof2/pluginapi"
	pluginhost "github.com/aof2/aof2/pluginapi/host"
)

// fakePlugin returns the fake backend's plugin binary, built once per run
// (internal/testbin).
func fakePlugin(t *testing.T) string {
	t.Helper()
	return testbin.Path(t, "aof2-plugin-fake")
}

func TestMain(m *testing.M) { os.Exit(testbin.Run(m)) }

// A real plugin process dies in the middle of an upload; the supervisor
// relaunches it and the store's retry finishes the upload, verified.
func TestPluginProcessCrashMidCall(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and launches a plugin binary")
	}
	dir := t.TempDir()
	faults, marker := filepath.Join(dir, "faults.json"), filepath.Join(dir, "crashed")
	require.NoError(t, fake.WriteFaultFile(faults, []fake.Fault{{Mode: fake.Crash, Ops: []fake.Op{fake.OpPut}, AfterBytes: 1 << 20}}))
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	sup, err := pluginhost.NewSupervisor(ctx, pluginhost.SupervisorConfig{
		Launch: pluginhost.LaunchConfig{Path: fakePlugin(t), DisableAutoMTLS: true, Logger: nullLogger(),
			Configure: pluginapi.ConfigureRequest{Config: map[string]string{"fault_file": faults, "crash_marker": marker}}},
		MinBackoff: 10 * time.Millisecond, MaxBackoff: 100 * time.Millisecond, PollInterval: 10 * time.Millisecond,
		Logger: nullLogger(),
	})
	require.NoError(t, err)
	t.Cleanup(func() { _ = sup.Close(context.Background()) })

	reg := prometheus.NewRegistry()
	st, err := New(sup, Config{Registerer: reg, Logger: nullLogger(), Backoff: Backoff{Initial: 20 * time.Millisecond}})
	require.NoError(t, err)
	e := &env{t: t, store: st, reg: reg}

	data := payload(4<<20, 51)
	up, err := st.UploadManifestChunk(ctx, 1, 1, data)
	require.NoError(t, err)
	assert.False(t, up.AlreadyPresent, "the crashed attempt stored nothing")
	assert.Equal(t, 1, sup.Restarts())
	assert.Equal(t, 1.0, e.requests(ClassPut, OutcomeCrashed))

	// The relaunched process holds the object (the fake is in memory, so a
	// second crash would lose it: the Get side is covered in-process).
	got, _, err := st.Fetch(ctx, up.Key, Expect{ETag: up.ETag})
	require.NoError(t, err)
	assert.Equal(t, data, got)
	assert.Equal(t, BreakerClosed, st.Health().State)
}
