package manifest

import (
	"bufio"
	"context"
	"encoding/json"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/aof2/aof2/core/types"
	"github.com/aof2/aof2/core/vfs"
)

// metricValue returns the value of metric name for stream streamID.
func metricValue(t *testing.T, reg *prometheus.Registry, name string, streamID types.StreamID) (float64, bool) {
	t.Helper()
	families, err := reg.Gather()
	require.NoError(t, err)
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
		for _, m := range f.GetMetric() {
			for _, lp := range m.GetLabel() {
				if lp.GetName() == "stream_id" && lp.GetValue() == strconv.FormatUint(uint64(streamID), 10) {
					switch {
					case m.GetGauge() != nil:
						return m.GetGauge().GetValue(), true
					case m.GetCounter() != nil:
						return m.GetCounter().GetValue(), true
					}
				}
			}
		}
	}
	return 0, false
}

// metricEvents returns the hclog JSON events carrying metric_name, keyed by
// metric name.
func metricEvents(t *testing.T, logs *syncBuffer) map[string][]map[string]any {
	t.Helper()
	out := map[string][]map[string]any{}
	sc := bufio.NewScanner(strings.NewReader(logs.String()))
	for sc.Scan() {
		var ev map[string]any
		require.NoError(t, json.Unmarshal(sc.Bytes(), &ev), sc.Text())
		if name, ok := ev["metric_name"].(string); ok {
			out[name] = append(out[name], ev)
		}
	}
	return out
}

// TestManifestCrashMidCommit is the test an operator reruns before flipping
// tier1_manifest_log_only and after reverting it: on stream 42, a commit is
// interrupted by a power loss after its records reached the disk and before
// its header did. Recovery must trim exactly those bytes, apply nothing
// twice, report the four replay metrics (Prometheus and hclog, stream_id
// 42), and keep the JSON view in parity when it is enabled.
func TestManifestCrashMidCommit(t *testing.T) {
	const stream = 42
	const dir = "data/streams/42"
	modes := []struct {
		name    string
		logOnly bool
		env     string // AOF2_MANIFEST_LOG_ONLY, when set
	}{
		{name: "json+log"},
		{name: "log-only", logOnly: true},
		{name: "log-only via env", env: "1"},
		{name: "json+log via env", logOnly: true, env: "0"},
	}
	for _, mode := range modes {
		t.Run(mode.name, func(t *testing.T) {
			ctx := context.Background()
			opts := Options{ChunkCapacity: DefaultChunkCapacity, RotationPeriod: -1, LogOnly: mode.logOnly, Clock: newManualClock()}
			if mode.env != "" {
				t.Setenv(EnvLogOnly, mode.env)
				require.NoError(t, opts.ApplyEnv(os.LookupEnv))
			}
			logOnly := opts.LogOnly

			mem := vfs.NewMem()
			inj := vfs.Wrap(mem, nil)
			opts.Registerer, opts.Logger = prometheus.NewRegistry(), jsonLogger(&syncBuffer{})
			l, err := Open(ctx, inj, dir, stream, opts)
			require.NoError(t, err)
			h1, h2 := Header{SegmentID: 1, LogicalOffset: 0}, Header{SegmentID: 2, LogicalOffset: 4096}
			committed := []Record{
				SegmentOpened{Header: h1},
				SealSegment{Header: h1, DurableBytes: 4096, SegmentCRC64: 0xfeed, ExtID: 5, CoordinatorWatermark: 6},
				CompressionDone{Header: h1, CompressedBytes: 1000, DictionaryID: 1},
				UploadDone{Header: h1, Key: "streams/42/segments/00000000000000000001.seg.zst", ETag: "etag-1"},
				SegmentOpened{Header: h2, BaseOffset: 4096},
			}
			require.NoError(t, l.AppendCommit(ctx, committed...))

			// Power loss at the header write of the next commit: its records
			// are written and fdatasynced, the header still has the old
			// committed_len.
			var (
				mu   sync.Mutex // the JSON view's writer does I/O on its own goroutine
				disk *vfs.MemFS // guarded by mu until l is closed
			)
			inj.SetInjector(vfs.InjectorFunc(func(op vfs.Op) vfs.Fault {
				mu.Lock()
				defer mu.Unlock()
				if disk == nil && op.Kind == vfs.OpWrite && op.Off == 0 && op.Len == chunkHeaderLen {
					disk = mem.CrashClone(vfs.CrashOptions{Rand: rand.New(rand.NewPCG(42, 42))})
					return vfs.FaultEIO // the process dies here
				}
				return vfs.NoFault
			}))
			inflight := []Record{
				SealSegment{Header: h2, DurableBytes: 8192, SegmentCRC64: 0xbeef},
				CompressionStarted{Header: h2, JobID: 2},
			}
			require.ErrorIs(t, l.AppendCommit(ctx, inflight...), ErrFailed)
			require.NotNil(t, disk)
			require.NoError(t, l.Close())

			reg, logs := prometheus.NewRegistry(), &syncBuffer{}
			opts.Registerer, opts.Logger = reg, jsonLogger(logs)
			l2, err := Open(ctx, disk, dir, stream, opts)
			require.NoError(t, err)
			st := l2.Replay()
			trimmed := frameBytes(t, inflight...)
			assert.Equal(t, trimmed, st.JournalLagBytes, "journal lag equals the trimmed bytes")
			assert.Equal(t, 1, st.ChunksInspected)
			assert.Zero(t, st.CorruptionEvents)
			assert.False(t, st.NeedsRepair)
			assert.Equal(t, fold(stream, committed).Segments(), l2.Index().Segments(), "the interrupted commit is not applied")

			want := map[string]float64{
				MetricReplayJournalLag: float64(trimmed),
				MetricReplayChunkCount: 1,
				MetricReplayCorruption: 0,
			}
			for name, v := range want {
				got, ok := metricValue(t, reg, name, stream)
				require.True(t, ok, "%s{stream_id=42} exported", name)
				assert.Equal(t, v, got, name)
			}
			lag, ok := metricValue(t, reg, MetricReplayChunkLag, stream)
			require.True(t, ok, "%s{stream_id=42} exported", MetricReplayChunkLag)
			assert.GreaterOrEqual(t, lag, 0.0)
			assert.Equal(t, st.LastChunkLag.Seconds(), lag)

			// The log query metric_name:"aof_manifest_replay_*" stream_id:42.
			events := metricEvents(t, logs)
			for _, name := range []string{MetricReplayChunkLag, MetricReplayJournalLag, MetricReplayChunkCount, MetricReplayCorruption} {
				require.Len(t, events[name], 1, "one %s event", name)
				ev := events[name][0]
				assert.Equal(t, float64(stream), ev["stream_id"], name)
				assert.True(t, strings.HasPrefix(ev["metric_name"].(string), "aof_manifest_replay_"))
			}
			assert.Equal(t, float64(trimmed), events[MetricReplayJournalLag][0]["value"])

			_, jsonErr := disk.Stat(ViewPath(dir))
			div, divOK := metricValue(t, reg, MetricShadowDivergence, stream)
			if logOnly {
				assert.True(t, vfs.IsNotExist(jsonErr), "log-only mode writes no JSON view")
				assert.False(t, divOK, "log-only mode runs no parity check at boot")
				assert.Nil(t, st.Parity)
			} else {
				require.NoError(t, jsonErr)
				require.NotNil(t, st.Parity)
				assert.True(t, st.Parity.OK(), "%+v", st.Parity)
				require.True(t, divOK)
				assert.Zero(t, div)
				require.Len(t, events[MetricShadowDivergence], 1)
				assert.Equal(t, float64(stream), events[MetricShadowDivergence][0]["stream_id"])
				v, err := ReadView(disk, dir)
				require.NoError(t, err)
				assert.Equal(t, ViewOf(l2.Index()), v)
			}

			// Recover again: nothing left to trim, nothing applied twice; new
			// commits land after the old ones.
			more := HydrationStarted{Header: h1, SourceTier: 2}
			require.NoError(t, l2.AppendCommit(ctx, more))
			require.NoError(t, l2.Close())
			opts.Registerer, opts.Logger = prometheus.NewRegistry(), nil
			l3, err := Open(ctx, disk, dir, stream, opts)
			require.NoError(t, err)
			defer l3.Close()
			assert.Zero(t, l3.Replay().JournalLagBytes)
			all := append(append([]Record{}, committed...), more)
			assert.Equal(t, fold(stream, all).Segments(), l3.Index().Segments())
			assert.Equal(t, uint64(len(all)), l3.Index().Records)
			if !logOnly {
				r, err := l3.Parity(ctx)
				require.NoError(t, err)
				assert.True(t, r.OK(), "%+v", r)
			}
		})
	}
}

// TestLogOnlyFlipAndRevert walks the rollout: parity confirmed, flag on
// (the JSON goes stale), flag off again (boot finds the JSON behind the
// log and agreeing with it where it stopped, and rewrites it from the
// log); a JSON that differs from the log is a divergence.
func TestLogOnlyFlipAndRevert(t *testing.T) {
	ctx := context.Background()
	const dir = "data/streams/42"
	mem := vfs.NewMem()
	open := func(logOnly bool, reg *prometheus.Registry) *Log {
		l, err := Open(ctx, mem, dir, 42, Options{RotationPeriod: -1, LogOnly: logOnly, Registerer: reg, Clock: newManualClock()})
		require.NoError(t, err)
		return l
	}
	l := open(false, nil)
	require.NoError(t, l.AppendCommit(ctx, SegmentOpened{Header: Header{SegmentID: 1}}))
	require.NoError(t, l.Close())

	l = open(true, nil)
	require.NoError(t, l.AppendCommit(ctx, SealSegment{Header: Header{SegmentID: 1}, DurableBytes: 7}, SegmentOpened{Header: Header{SegmentID: 2}}))
	require.NoError(t, l.Close())
	stale := CheckParity(mem, dir, l.Index())
	assert.Equal(t, 2, stale.Segments, "segment 1 changed and segment 2 is missing from the stale JSON")

	// The view stopped at the first record: it agrees with the log there,
	// is behind, not divergent, and is rewritten at boot.
	reg := prometheus.NewRegistry()
	l = open(false, reg)
	defer l.Close()
	st := l.Replay()
	require.NotNil(t, st.Parity)
	assert.True(t, st.Parity.OK(), "%+v", st.Parity)
	assert.True(t, st.Parity.Behind(), "%+v", st.Parity)
	assert.Equal(t, uint64(1), st.Parity.ComparedAt)
	assert.Equal(t, uint64(3), st.Parity.LogRecords)
	div, ok := metricValue(t, reg, MetricShadowDivergence, 42)
	require.True(t, ok)
	assert.Zero(t, div)
	v, err := ReadView(mem, dir)
	require.NoError(t, err)
	assert.Equal(t, ViewOf(l.Index()), v, "rewritten at boot")

	// A view that differs from the log where it says it stands is a
	// divergence, reported at boot and rewritten.
	require.NoError(t, l.Close())
	v.Segments[0].DurableBytes++
	b, err := json.MarshalIndent(v, "", "  ")
	require.NoError(t, err)
	require.NoError(t, vfs.WriteFileAtomic(mem, ViewPath(dir), b))
	reg = prometheus.NewRegistry()
	l = open(false, reg)
	defer l.Close()
	st = l.Replay()
	require.NotNil(t, st.Parity)
	assert.Equal(t, 1, st.Parity.Segments, "%+v", st.Parity)
	div, ok = metricValue(t, reg, MetricShadowDivergence, 42)
	require.True(t, ok)
	assert.Equal(t, 1.0, div)
	r, err := l.Parity(ctx)
	require.NoError(t, err)
	assert.True(t, r.OK(), "the JSON view was rewritten from the log at boot")
	div, _ = metricValue(t, reg, MetricShadowDivergence, 42)
	assert.Zero(t, div)
}
