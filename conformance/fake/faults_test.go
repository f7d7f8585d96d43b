package fake_test

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/aof2/aof2/conformance/fake"
	"github.com/aof2/aof2/pluginapi"
	pluginhost "github.com/aof2/aof2/pluginapi/host"
)

// host serves f in-process over gRPC: faults are observed exactly as the
// host will see them from a plugin.
func host(t *testing.T, f *fake.Backend) *pluginapi.Client {
	t.Helper()
	ip, err := pluginhost.ServeInProcess(f, nil)
	require.NoError(t, err)
	t.Cleanup(func() { _ = ip.Close() })
	_, _, err = ip.Setup(t.Context(), pluginapi.ConfigureRequest{})
	require.NoError(t, err)
	return ip.Client
}

func put(ctx context.Context, b pluginapi.Backend, key string, data []byte) error {
	_, err := b.Put(ctx, pluginapi.PutRequest{Key: key, Size: uint64(len(data)), CRC64: pluginapi.CRC64(data)}, bytes.NewReader(data))
	return err
}

func get(ctx context.Context, b pluginapi.Backend, key string) ([]byte, error) {
	_, rc, err := b.Get(ctx, pluginapi.GetRequest{Key: key})
	if err != nil {
		return nil, err
	}
	defer func() { _ = rc.Close() }()
	return io.ReadAll(rc)
}

var payload = bytes.Repeat([]byte("tier-2 bytes "), 200000) // ~2.5 MiB, several chunks

func TestFaultModesSeenByTheHost(t *testing.T) {
	ctx := t.Context()
	f := fake.New(fake.Options{})
	c := host(t, f)
	require.NoError(t, put(ctx, c, "obj", payload))

	cases := []struct {
		name  string
		fault fake.Fault
		check func(t *testing.T)
	}{
		{"throttle with retry-after", fake.Fault{Mode: fake.Throttle, RetryAfter: 2 * time.Second}, func(t *testing.T) {
			_, err := c.Head(ctx, "obj")
			require.ErrorIs(t, err, pluginapi.ErrThrottled)
			require.NotErrorIs(t, err, pluginapi.ErrUnavailable)
			ra, ok := pluginapi.RetryAfter(err)
			require.True(t, ok)
			require.Equal(t, 2*time.Second, ra)
		}},
		{"5xx", fake.Fault{Mode: fake.ServerError, Ops: []fake.Op{fake.OpGet}}, func(t *testing.T) {
			_, err := get(ctx, c, "obj")
			require.ErrorIs(t, err, pluginapi.ErrUnavailable)
			var e *pluginapi.Error
			require.ErrorAs(t, err, &e)
			require.Equal(t, "503", e.Metadata["backend_code"])
		}},
		{"timeout", fake.Fault{Mode: fake.Timeout, Ops: []fake.Op{fake.OpPut}}, func(t *testing.T) {
			tctx, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
			defer cancel()
			err := put(tctx, c, "timed-out", payload)
			require.ErrorIs(t, err, context.DeadlineExceeded)
			_, err = c.Head(ctx, "timed-out")
			require.ErrorIs(t, err, pluginapi.ErrNotFound)
		}},
		{"slow first byte", fake.Fault{Mode: fake.SlowFirstByte, Delay: 300 * time.Millisecond, Ops: []fake.Op{fake.OpGet}}, func(t *testing.T) {
			start := time.Now()
			got, err := get(ctx, c, "obj")
			require.NoError(t, err)
			require.Equal(t, payload, got)
			require.GreaterOrEqual(t, time.Since(start), 300*time.Millisecond)
		}},
		{"truncated stream", fake.Fault{Mode: fake.Truncate, AfterBytes: 1 << 20}, func(t *testing.T) {
			_, err := get(ctx, c, "obj")
			require.ErrorIs(t, err, pluginapi.ErrChecksum)
		}},
		{"wrong bytes", fake.Fault{Mode: fake.WrongBytes, Ops: []fake.Op{fake.OpGet}}, func(t *testing.T) {
			_, err := get(ctx, c, "obj")
			require.ErrorIs(t, err, pluginapi.ErrChecksum)
		}},
		{"wrong bytes in GetFile", fake.Fault{Mode: fake.WrongBytes, Ops: []fake.Op{fake.OpGetFile}}, func(t *testing.T) {
			_, err := c.GetFile(ctx, pluginapi.GetRequest{Key: "obj"}, filepath.Join(t.TempDir(), "out"))
			require.ErrorIs(t, err, pluginapi.ErrChecksum)
		}},
		{"wrong checksum on get", fake.Fault{Mode: fake.WrongChecksum, Ops: []fake.Op{fake.OpGet}}, func(t *testing.T) {
			_, err := get(ctx, c, "obj")
			require.ErrorIs(t, err, pluginapi.ErrChecksum)
		}},
		{"wrong checksum on put", fake.Fault{Mode: fake.WrongChecksum, Ops: []fake.Op{fake.OpPut}}, func(t *testing.T) {
			require.ErrorIs(t, put(ctx, c, "acked-wrong", payload), pluginapi.ErrChecksum)
		}},
		{"success but nothing stored", fake.Fault{Mode: fake.DropPut}, func(t *testing.T) {
			require.NoError(t, put(ctx, c, "dropped", payload))
			f.ClearFaults()
			_, err := c.Head(ctx, "dropped")
			require.ErrorIs(t, err, pluginapi.ErrNotFound)
		}},
		{"crash (in-process: dropped connection)", fake.Fault{Mode: fake.Crash, Ops: []fake.Op{fake.OpPut}, AfterBytes: 1 << 20}, func(t *testing.T) {
			require.ErrorIs(t, put(ctx, c, "crashed", payload), pluginapi.ErrUnavailable)
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			require.NoError(t, f.Inject(tc.fault))
			defer f.ClearFaults()
			tc.check(t)
		})
	}
	// Turned off, everything works again.
	got, err := get(ctx, c, "obj")
	require.NoError(t, err)
	require.Equal(t, payload, got)
	require.Equal(t, 1, f.Injected()[fake.Throttle])
}

func TestFaultRateCountAndPrefix(t *testing.T) {
	ctx := t.Context()
	f := fake.New(fake.Options{Seed: 7})
	c := host(t, f)
	require.NoError(t, f.Inject(fake.Fault{Mode: fake.ServerError, Rate: 0.3, Ops: []fake.Op{fake.OpHead}}))
	failed := 0
	for range 400 {
		if _, err := c.Head(ctx, "k"); pluginapi.CodeOf(err) == pluginapi.CodeUnavailable {
			failed++
		}
	}
	require.InDelta(t, 120, failed, 50, "a 30%% fault rate hit %d of 400 calls", failed)

	require.NoError(t, f.Inject(fake.Fault{Mode: fake.Throttle, Count: 2}))
	for i := range 4 {
		_, err := c.Head(ctx, "k")
		if i < 2 {
			require.ErrorIs(t, err, pluginapi.ErrThrottled)
		} else {
			require.ErrorIs(t, err, pluginapi.ErrNotFound, "the rule must disarm after Count injections")
		}
	}

	require.NoError(t, f.Inject(fake.Fault{Mode: fake.ServerError, KeyPrefix: "flaky/"}))
	_, err := c.Head(ctx, "flaky/x")
	require.ErrorIs(t, err, pluginapi.ErrUnavailable)
	_, err = c.Head(ctx, "solid/x")
	require.ErrorIs(t, err, pluginapi.ErrNotFound)

	require.Error(t, f.Inject(fake.Fault{Mode: "nonsense"}))
	require.Error(t, f.Inject(fake.Fault{Mode: fake.Truncate, Ops: []fake.Op{fake.OpPut}}))
}

// The control file a fake plugin process reads: changes apply at once, a
// broken file disarms everything.
func TestFaultFileReloads(t *testing.T) {
	ctx := t.Context()
	f := fake.New(fake.Options{})
	c := host(t, f)
	file := filepath.Join(t.TempDir(), "faults.json")
	_, err := c.Configure(ctx, pluginapi.ConfigureRequest{Config: map[string]string{"fault_file": file}})
	require.NoError(t, err)
	_, err = c.Head(ctx, "k")
	require.ErrorIs(t, err, pluginapi.ErrNotFound, "a missing file means no faults")
	require.NoError(t, fake.WriteFaultFile(file, []fake.Fault{{Mode: fake.Throttle}}))
	_, err = c.Head(ctx, "k")
	require.ErrorIs(t, err, pluginapi.ErrThrottled)
	require.NoError(t, fake.WriteFaultFile(file, []fake.Fault{{Mode: fake.ServerError}}))
	_, err = c.Head(ctx, "k")
	require.ErrorIs(t, err, pluginapi.ErrUnavailable)
	require.NoError(t, os.WriteFile(file, []byte("{broken"), 0o600))
	_, err = c.Head(ctx, "k")
	require.ErrorIs(t, err, pluginapi.ErrNotFound)
	require.NoError(t, fake.WriteFaultFile(file, nil))
	_, err = c.Head(ctx, "k")
	require.ErrorIs(t, err, pluginapi.ErrNotFound)
}
