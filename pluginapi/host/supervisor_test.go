package host_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/aof2/aof2/conformance/fake"
	"github.com/aof2/aof2/internal/testwait"
	"github.com/aof2/aof2/pluginapi"
	"github.com/aof2/aof2/pluginapi/host"
)

func supervise(t *testing.T, path string, cfg map[string]string, mutate func(*host.SupervisorConfig)) (*host.Supervisor, *prometheus.Registry) {
	t.Helper()
	reg := prometheus.NewRegistry()
	sc := host.SupervisorConfig{
		Launch:     host.LaunchConfig{Path: path, Logger: quietLogger(), StartTimeout: 5 * time.Second, Configure: pluginapi.ConfigureRequest{Config: cfg}},
		MinBackoff: 20 * time.Millisecond, MaxBackoff: 200 * time.Millisecond,
		PollInterval: 10 * time.Millisecond, Registerer: reg, Logger: quietLogger(),
	}
	if mutate != nil {
		mutate(&sc)
	}
	s, err := host.NewSupervisor(t.Context(), sc)
	require.NoError(t, err)
	t.Cleanup(func() { _ = s.Close(context.Background()) })
	return s, reg
}

// slowBody yields data in small pieces, calling hook once after `at` bytes.
type slowBody struct {
	data []byte
	off  int
	at   int
	hook func()
}

func (b *slowBody) Read(p []byte) (int, error) {
	if b.off >= len(b.data) {
		return 0, io.EOF
	}
	if b.hook != nil && b.off >= b.at {
		h := b.hook
		b.hook = nil
		h()
	}
	n := copy(p[:min(len(p), 64<<10)], b.data[b.off:])
	b.off += n
	return n, nil
}

// putRetrying retries retryable errors the way core/tier2 will.
func putRetrying(ctx context.Context, b pluginapi.Backend, req pluginapi.PutRequest, data []byte) (pluginapi.ObjectInfo, []error) {
	var errs []error
	for range 20 {
		info, err := b.Put(ctx, req, bytes.NewReader(data))
		if err == nil {
			return info, errs
		}
		errs = append(errs, err)
		if !pluginapi.Retryable(err) {
			return info, errs
		}
		time.Sleep(50 * time.Millisecond)
	}
	return pluginapi.ObjectInfo{}, errs
}

func getAll(t *testing.T, b pluginapi.Backend, key string) []byte {
	t.Helper()
	_, rc, err := b.Get(t.Context(), pluginapi.GetRequest{Key: key})
	require.NoError(t, err)
	defer func() { _ = rc.Close() }()
	data, err := io.ReadAll(rc)
	require.NoError(t, err)
	return data
}

// The plugin is SIGKILLed in the middle of an upload: the host stays up,
// the call fails with the retryable ErrPluginCrashed, the supervisor
// relaunches the plugin, the retried upload succeeds and the object is
// intact; the dead upload left nothing behind.
func TestSupervisorRestartsAfterKillMidPut(t *testing.T) {
	root := t.TempDir()
	s, reg := supervise(t, bin(t, "aof2-plugin-fs"), map[string]string{"root": root}, nil)
	ctx := t.Context()
	data := bytes.Repeat([]byte("0123456789abcdef"), 1<<20) // 16 MiB
	req := pluginapi.PutRequest{Key: "streams/1/segments/00000000000000000001.seg.zst", Size: uint64(len(data)), CRC64: pluginapi.CRC64(data)}
	victim := s.Current().Pid()
	body := &slowBody{data: data, at: 5 << 20, hook: func() {
		require.NoError(t, syscall.Kill(victim, syscall.SIGKILL))
		time.Sleep(100 * time.Millisecond)
	}}
	_, err := s.Put(ctx, req, body)
	require.ErrorIs(t, err, pluginapi.ErrPluginCrashed)
	require.True(t, pluginapi.Retryable(err))

	require.NoError(t, s.WaitReady(ctx))
	require.NotEqual(t, victim, s.Current().Pid())
	_, err = s.Head(ctx, req.Key)
	require.ErrorIs(t, err, pluginapi.ErrNotFound, "the killed upload became visible")

	info, errs := putRetrying(ctx, s, req, data)
	require.Empty(t, errs)
	require.Equal(t, req.CRC64, info.CRC64)
	require.Equal(t, data, getAll(t, s, req.Key))
	require.Equal(t, 1, s.Restarts())
	require.InDelta(t, 1, restartsMetric(t, reg), 0)
	tmp, err := os.ReadDir(filepath.Join(root, "tmp"))
	require.NoError(t, err)
	require.Empty(t, tmp, "the dead plugin's temporary file was not cleaned up")
}

// restartsMetric reads aof_plugin_restarts_total from the registry the
// supervisor was given.
func restartsMetric(t *testing.T, reg *prometheus.Registry) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	require.NoError(t, err)
	for _, mf := range mfs {
		if mf.GetName() == "aof_plugin_restarts_total" {
			require.Len(t, mf.GetMetric(), 1)
			require.Equal(t, "aof2-plugin-fs", mf.GetMetric()[0].GetLabel()[0].GetValue())
			return mf.GetMetric()[0].GetCounter().GetValue()
		}
	}
	t.Fatal("aof_plugin_restarts_total is not registered")
	return 0
}

// The fake plugin's Crash fault ends the process mid-stream (once, thanks
// to the marker file); the host sees ErrPluginCrashed and recovers.
func TestSupervisorFakeCrashMidStream(t *testing.T) {
	dir := t.TempDir()
	faults := filepath.Join(dir, "faults.json")
	require.NoError(t, fake.WriteFaultFile(faults, []fake.Fault{{Mode: fake.Crash, Ops: []fake.Op{fake.OpPut}, AfterBytes: 3 << 20}}))
	s, _ := supervise(t, bin(t, "aof2-plugin-fake"), map[string]string{"fault_file": faults, "crash_marker": filepath.Join(dir, "crashed")}, nil)
	ctx := t.Context()
	data := bytes.Repeat([]byte{7}, 8<<20)
	req := pluginapi.PutRequest{Key: "k", Size: uint64(len(data)), CRC64: pluginapi.CRC64(data)}
	_, errs := putRetrying(ctx, s, req, data)
	require.Len(t, errs, 1)
	require.ErrorIs(t, errs[0], pluginapi.ErrPluginCrashed)
	require.Equal(t, data, getAll(t, s, "k"))
	require.Equal(t, 1, s.Restarts())

	// Faults change at runtime: a crash while streaming a Get.
	require.NoError(t, os.Remove(filepath.Join(dir, "crashed")))
	require.NoError(t, fake.WriteFaultFile(faults, []fake.Fault{{Mode: fake.Crash, Ops: []fake.Op{fake.OpGet}, AfterBytes: 1 << 20}}))
	_, rc, err := s.Get(ctx, pluginapi.GetRequest{Key: "k"})
	if err == nil {
		_, err = io.ReadAll(rc)
		_ = rc.Close()
	}
	require.ErrorIs(t, err, pluginapi.ErrPluginCrashed)
	require.NoError(t, s.WaitReady(ctx))
	require.Equal(t, 2, s.Restarts())
}

// A backend's own Unavailable (a 5xx) is not a crash: no restart, and the
// supervisor hands the error back without re-issuing the call.
func TestSupervisorBackendUnavailableIsNotACrash(t *testing.T) {
	dir := t.TempDir()
	faults := filepath.Join(dir, "faults.json")
	s, _ := supervise(t, bin(t, "aof2-plugin-fake"), map[string]string{"fault_file": faults}, nil)
	// One injection only: a re-issued Head would pass and say NotFound.
	require.NoError(t, fake.WriteFaultFile(faults, []fake.Fault{{Mode: fake.ServerError, Count: 1}}))
	_, err := s.Head(t.Context(), "k")
	require.ErrorIs(t, err, pluginapi.ErrUnavailable)
	require.NotErrorIs(t, err, pluginapi.ErrPluginCrashed)
	require.NotErrorIs(t, err, host.ErrBreakerOpen)
	require.NoError(t, fake.WriteFaultFile(faults, []fake.Fault{{Mode: fake.Throttle, RetryAfter: 1500 * time.Millisecond}}))
	_, err = s.Head(t.Context(), "k")
	require.ErrorIs(t, err, pluginapi.ErrThrottled)
	ra, ok := pluginapi.RetryAfter(err)
	require.True(t, ok)
	require.Equal(t, 1500*time.Millisecond, ra)
	time.Sleep(100 * time.Millisecond)
	require.Equal(t, 0, s.Restarts())
	require.NoError(t, fake.WriteFaultFile(faults, nil))
	_, err = s.Head(t.Context(), "k")
	require.ErrorIs(t, err, pluginapi.ErrNotFound, "faults turned off")
}

// A plugin that crashes on every upload opens the breaker: calls then fail
// fast without relaunch storms, until the cooldown ends.
func TestSupervisorBreaker(t *testing.T) {
	dir := t.TempDir()
	faults := filepath.Join(dir, "faults.json")
	require.NoError(t, fake.WriteFaultFile(faults, []fake.Fault{{Mode: fake.Crash, Ops: []fake.Op{fake.OpPut}}}))
	s, _ := supervise(t, bin(t, "aof2-plugin-fake"), map[string]string{"fault_file": faults}, func(c *host.SupervisorConfig) {
		c.BreakerThreshold, c.BreakerWindow, c.BreakerCooldown = 2, time.Minute, 3*time.Second
	})
	ctx := t.Context()
	data := []byte("x")
	req := pluginapi.PutRequest{Key: "k", Size: 1, CRC64: pluginapi.CRC64(data)}
	_, err := s.Put(ctx, req, bytes.NewReader(data))
	require.ErrorIs(t, err, pluginapi.ErrPluginCrashed)
	require.NoError(t, s.WaitReady(ctx))
	_, err = s.Put(ctx, req, bytes.NewReader(data))
	require.ErrorIs(t, err, pluginapi.ErrPluginCrashed)
	// Second crash in the window: the breaker opens.
	var last error
	require.Eventually(t, func() bool {
		_, last = s.Head(ctx, "k")
		return errors.Is(last, host.ErrBreakerOpen)
	}, 2*time.Second, 10*time.Millisecond, "last error: %v", last)
	_, err = s.Head(ctx, "k")
	require.ErrorIs(t, err, host.ErrBreakerOpen)
	require.ErrorIs(t, err, pluginapi.ErrUnavailable, "an open breaker is also plain unavailability")
	require.NotErrorIs(t, err, pluginapi.ErrPluginCrashed)
	var boe *host.BreakerOpenError
	require.ErrorAs(t, err, &boe)
	require.Equal(t, "aof2-plugin-fake", boe.Plugin)
	require.WithinDuration(t, time.Now().Add(3*time.Second), boe.Until, 3*time.Second)
	require.NoError(t, fake.WriteFaultFile(faults, nil))
	require.Eventually(t, func() bool { return s.WaitReady(ctx) == nil && s.Current() != nil }, 15*time.Second, 50*time.Millisecond)
	_, err = s.Put(ctx, req, bytes.NewReader(data))
	require.NoError(t, err)
	require.Equal(t, 2, s.Restarts())
}

// Close waits for the calls in flight, refuses new ones, then kills.
func TestSupervisorCloseDrains(t *testing.T) {
	s, _ := supervise(t, bin(t, "aof2-plugin-fake"), nil, nil)
	ctx := t.Context()
	data := bytes.Repeat([]byte{1}, 4<<20)
	req := pluginapi.PutRequest{Key: "k", Size: uint64(len(data)), CRC64: pluginapi.CRC64(data)}
	release := make(chan struct{})
	started := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		_, err := s.Put(ctx, req, &slowBody{data: data, at: 1 << 20, hook: func() { close(started); <-release }})
		done <- err
	}()
	testwait.Recv(t, started, testwait.Default, "the Put to reach the plugin")
	p := s.Current()
	closed := make(chan error, 1)
	go func() { closed <- s.Close(context.Background()) }()
	time.Sleep(100 * time.Millisecond)
	select {
	case <-closed:
		t.Fatal("Close returned while a Put was in flight")
	default:
	}
	_, err := s.Head(ctx, "k")
	require.ErrorIs(t, err, host.ErrSupervisorClosed)
	close(release)
	require.NoError(t, <-done, "the in-flight Put must complete during the drain")
	require.NoError(t, <-closed)
	require.True(t, p.Exited())
}

func TestSupervisorCloseDeadline(t *testing.T) {
	s, _ := supervise(t, bin(t, "aof2-plugin-fake"), nil, nil)
	release := make(chan struct{})
	defer close(release)
	started := make(chan struct{})
	data := bytes.Repeat([]byte{1}, 4<<20)
	go func() {
		_, _ = s.Put(context.Background(), pluginapi.PutRequest{Key: "k", Size: uint64(len(data)), CRC64: pluginapi.CRC64(data)},
			&slowBody{data: data, at: 1 << 20, hook: func() { close(started); <-release }})
	}()
	testwait.Recv(t, started, testwait.Default, "the Put to reach the plugin")
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	err := s.Close(ctx)
	require.ErrorIs(t, err, context.DeadlineExceeded)
	require.ErrorContains(t, err, "killed with calls in flight")
}

// Settings changed through the supervisor survive a relaunch.
func TestSupervisorRelaunchKeepsConfiguration(t *testing.T) {
	first, second := t.TempDir(), t.TempDir()
	s, _ := supervise(t, bin(t, "aof2-plugin-fs"), map[string]string{"root": first}, nil)
	ctx := t.Context()
	_, err := s.Configure(ctx, pluginapi.ConfigureRequest{Config: map[string]string{"root": second}})
	require.NoError(t, err)
	victim := s.Current().Pid()
	require.NoError(t, syscall.Kill(victim, syscall.SIGKILL))
	require.Eventually(t, func() bool { p := s.Current(); return p != nil && p.Pid() != victim }, 5*time.Second, 10*time.Millisecond)
	data := []byte("after the restart")
	_, errs := putRetrying(ctx, s, pluginapi.PutRequest{Key: "k", Size: uint64(len(data)), CRC64: pluginapi.CRC64(data)}, data)
	require.Empty(t, errs)
	require.FileExists(t, filepath.Join(second, "objects", "k.o"))
	require.NoFileExists(t, filepath.Join(first, "objects", "k.o"))
}
