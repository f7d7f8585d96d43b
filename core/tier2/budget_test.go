package tier2

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/aof2/aof2/conformance/fake"
	"github.com/aof2/aof2/pluginapi"
	pluginhost "github.com/aof2/aof2/pluginapi/host"
)

// The plugin crashes on every upload and the supervisor's breaker opens
// after the first crash: the store's retry of the crashed attempt fails
// fast with the supervisor's breaker error, which a caller of the store
// matches with tier2.ErrBreakerOpen, and the store gives up at once.
func TestSupervisorBreakerIsErrBreakerOpen(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and launches a plugin binary")
	}
	dir := t.TempDir()
	faults := filepath.Join(dir, "faults.json")
	require.NoError(t, fake.WriteFaultFile(faults, []fake.Fault{{Mode: fake.Crash, Ops: []fake.Op{fake.OpPut}}}))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	sup, err := pluginhost.NewSupervisor(ctx, pluginhost.SupervisorConfig{
		Launch: pluginhost.LaunchConfig{Path: fakePlugin(t), DisableAutoMTLS: true, Logger: nullLogger(),
			Configure: pluginapi.ConfigureRequest{Config: map[string]string{"fault_file": faults}}},
		PollInterval: 10 * time.Millisecond, BreakerThreshold: 1, BreakerCooldown: time.Hour,
		Logger: nullLogger(),
	})
	require.NoError(t, err)
	t.Cleanup(func() { _ = sup.Close(context.Background()) })

	reg := prometheus.NewRegistry()
	st, err := New(sup, Config{Registerer: reg, Logger: nullLogger(), Backoff: Backoff{Initial: time.Millisecond}})
	require.NoError(t, err)
	e := &env{t: t, store: st, reg: reg}

	_, err = st.UploadManifestChunk(ctx, 1, 1, payload(1<<20, 52))
	require.ErrorIs(t, err, ErrBreakerOpen)
	require.ErrorIs(t, err, pluginhost.ErrBreakerOpen, "one sentinel for both breakers")
	var boe *pluginhost.BreakerOpenError
	require.ErrorAs(t, err, &boe, "the supervisor's breaker tripped, not the store's")
	assert.Equal(t, 1.0, e.requests(ClassPut, OutcomeCrashed))
	assert.Equal(t, 1.0, e.requests(ClassPut, OutcomeBreakerOpen))
	assert.Equal(t, uint64(2), st.Stats().Attempts[OpUpload], "the crashed attempt and one that failed fast")
	assert.Equal(t, 0, sup.Restarts())
}
