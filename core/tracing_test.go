package core

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/aof2/aof2/core/internal/tracing"
	"github.com/aof2/aof2/core/segment"
	"github.com/aof2/aof2/core/vfs"
)

// traced returns a tracer provider exporting synchronously into an
// in-memory exporter. Passed through Config, it keeps the test off the
// global provider (tests run in parallel).
func traced(t *testing.T) (*sdktrace.TracerProvider, *tracetest.InMemoryExporter) {
	t.Helper()
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp), sdktrace.WithSampler(sdktrace.AlwaysSample()))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	return tp, exp
}

func tracedConfig(fsys vfs.FS, tp trace.TracerProvider, every int) Config {
	return Config{FS: fsys, SegmentSize: segment.MinCapacity, Sync: SyncNone, MaxUnflushedBytes: -1,
		TracerProvider: tp, TraceAppendEvery: every}
}

func spansNamed(exp *tracetest.InMemoryExporter, name string) []tracetest.SpanStub {
	var out []tracetest.SpanStub
	for _, s := range exp.GetSpans() {
		if s.Name == name {
			out = append(out, s)
		}
	}
	return out
}

// endedSpans waits until at least n spans named name have ended (a seal
// is acknowledged, and Seal returns, just before the syncer ends its span)
// and returns them.
func endedSpans(t *testing.T, exp *tracetest.InMemoryExporter, name string, n int) []tracetest.SpanStub {
	t.Helper()
	var out []tracetest.SpanStub
	require.Eventually(t, func() bool {
		out = spansNamed(exp, name)
		return len(out) >= n
	}, 5*time.Second, time.Millisecond, "%d %s spans", n, name)
	return out
}

func attrs(s tracetest.SpanStub) map[attribute.Key]attribute.Value {
	m := map[attribute.Key]attribute.Value{}
	for _, kv := range s.Attributes {
		m[kv.Key] = kv.Value
	}
	return m
}

func hasEvent(s tracetest.SpanStub, name string) bool {
	for _, e := range s.Events {
		if e.Name == name {
			return true
		}
	}
	return false
}

// TestTracingAppendsAndSeal: one in N durable appends and flushes gets a
// span under the caller's; a seal is a root span on the syncer carrying
// the segment's records and bytes; Stream.Seal nests under the caller; the
// manifest replay at stream creation is traced too.
func TestTracingAppendsAndSeal(t *testing.T) {
	tp, exp := traced(t)
	st, err := Open("/data", tracedConfig(vfs.NewMem(), tp, 4))
	require.NoError(t, err)
	defer st.Close()
	s, err := st.Stream(3)
	require.NoError(t, err)

	ctx, parent := tp.Tracer("test").Start(context.Background(), "caller")
	var ids []RecordID
	for i := range 12 {
		id, err := s.AppendDurable(ctx, []byte(strings.Repeat("x", 100+i)), AppendOptions{})
		require.NoError(t, err)
		ids = append(ids, id)
	}
	for _, id := range ids[:8] {
		require.NoError(t, s.Flush(ctx, id))
	}
	for range 4 {
		require.NoError(t, s.FlushAll(ctx))
	}
	require.NoError(t, s.Seal(ctx))
	require.NoError(t, s.Seal(ctx), "nothing left to seal")
	parent.End()

	appends := spansNamed(exp, tracing.SpanAppendDurable)
	require.Len(t, appends, 3, "one in 4 of 12 durable appends")
	for i, sp := range appends {
		a := attrs(sp)
		id := ids[4*i+3]
		require.Equal(t, parent.SpanContext().SpanID(), sp.Parent.SpanID(), "nested under the caller's span")
		require.Equal(t, int64(3), a[tracing.KeyStreamID].AsInt64())
		require.Equal(t, int64(100+4*i+3), a[tracing.KeyBytes].AsInt64())
		require.Equal(t, int64(id.Segment()), a[tracing.KeySegmentID].AsInt64())
		require.Equal(t, id.String(), a[tracing.KeyRecordID].AsString())
		require.Equal(t, tracing.ResultOK, a[tracing.KeyResult].AsString())
		require.True(t, hasEvent(sp, "appended"), "the append/durability boundary is marked")
		require.Equal(t, codes.Unset, sp.Status.Code)
	}

	flushes := spansNamed(exp, tracing.SpanFlush)
	require.Len(t, flushes, 3, "one in 4 of 12 flushes (8 Flush + 4 FlushAll)")
	require.Equal(t, ids[3].String(), attrs(flushes[0])[tracing.KeyRecordID].AsString(), "Flush carries the record it waited for")
	require.True(t, attrs(flushes[2])[tracing.KeyAll].AsBool(), "the third picked flush is a FlushAll")

	seals := endedSpans(t, exp, tracing.SpanSeal, 1)
	require.Len(t, seals, 1)
	a := attrs(seals[0])
	require.False(t, seals[0].Parent.IsValid(), "the syncer's seal is a root span")
	require.Equal(t, int64(3), a[tracing.KeyStreamID].AsInt64())
	require.Equal(t, int64(ids[0].Segment()), a[tracing.KeySegmentID].AsInt64())
	require.Equal(t, int64(12), a[tracing.KeyRecords].AsInt64())
	require.Positive(t, a[tracing.KeyBytes].AsInt64())
	require.Equal(t, tracing.ResultOK, a[tracing.KeyResult].AsString())

	waits := spansNamed(exp, tracing.SpanStreamSeal)
	require.Len(t, waits, 2)
	require.Equal(t, parent.SpanContext().SpanID(), waits[0].Parent.SpanID())
	require.Equal(t, int64(ids[0].Segment()), attrs(waits[0])[tracing.KeySegmentID].AsInt64())
	require.Equal(t, tracing.ResultOK, attrs(waits[0])[tracing.KeyResult].AsString())
	require.Equal(t, tracing.ResultSkipped, attrs(waits[1])[tracing.KeyResult].AsString())

	replays := spansNamed(exp, tracing.SpanManifestReplay)
	require.Len(t, replays, 1, "the new stream's manifest was opened once")
	ra := attrs(replays[0])
	require.Equal(t, int64(3), ra[tracing.KeyStreamID].AsInt64())
	require.Equal(t, int64(0), ra[tracing.KeyChunkCount].AsInt64(), "a new stream has no chunks to replay")
	require.Equal(t, int64(0), ra[tracing.KeyCorruptionEvents].AsInt64())
}

// TestTracingReplayAfterRestart: reopening the store replays the manifest
// chunks the first run wrote; the replay span reports them.
func TestTracingReplayAfterRestart(t *testing.T) {
	mem := vfs.NewMem()
	st, err := Open("/data", tracedConfig(mem, noop.NewTracerProvider(), 0))
	require.NoError(t, err)
	s, err := st.Stream(1)
	require.NoError(t, err)
	for range 3 {
		_, err := s.AppendDurable(context.Background(), []byte("r"), AppendOptions{})
		require.NoError(t, err)
		require.NoError(t, s.Seal(context.Background()))
	}
	require.NoError(t, st.Close())

	tp, exp := traced(t)
	st, err = Open("/data", tracedConfig(mem, tp, 0))
	require.NoError(t, err)
	defer st.Close()
	replays := spansNamed(exp, tracing.SpanManifestReplay)
	require.Len(t, replays, 1)
	a := attrs(replays[0])
	require.Equal(t, int64(1), a[tracing.KeyStreamID].AsInt64())
	require.Positive(t, a[tracing.KeyChunkCount].AsInt64())
	require.Positive(t, a[tracing.KeyRecordsApplied].AsInt64())
	require.Equal(t, int64(0), a[tracing.KeyCorruptionEvents].AsInt64())
	require.False(t, a[tracing.KeyNeedsRepair].AsBool())
	require.Contains(t, a, tracing.KeyJournalLagBytes)
	require.Equal(t, tracing.ResultOK, a[tracing.KeyResult].AsString())
}

// TestTracingSamplingOff: a negative TraceAppendEvery turns the append and
// flush spans off; seals are still traced.
func TestTracingSamplingOff(t *testing.T) {
	tp, exp := traced(t)
	st, err := Open("/data", tracedConfig(vfs.NewMem(), tp, -1))
	require.NoError(t, err)
	defer st.Close()
	s, err := st.Stream(1)
	require.NoError(t, err)
	for range 50 {
		id, err := s.AppendDurable(context.Background(), []byte("r"), AppendOptions{})
		require.NoError(t, err)
		require.NoError(t, s.Flush(context.Background(), id))
	}
	require.NoError(t, s.Seal(context.Background()))
	require.Len(t, endedSpans(t, exp, tracing.SpanSeal, 1), 1)
	require.Empty(t, spansNamed(exp, tracing.SpanAppendDurable))
	require.Empty(t, spansNamed(exp, tracing.SpanFlush))
}

// TestTracingSealBlockedAndFailed: a seal waiting for disk space is traced
// as blocked with the disk-full error, then ok once space is back; a seal
// that fails for good records the error and an Error status.
func TestTracingSealBlockedAndFailed(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	tp, exp := traced(t)
	w := vfs.Wrap(vfs.NewMem(), nil)
	st, err := Open("/data", tracedConfig(w, tp, -1))
	require.NoError(t, err)
	defer st.Close()
	s, err := st.Stream(1)
	require.NoError(t, err)
	_, err = s.AppendDurable(ctx, []byte("first"), AppendOptions{})
	require.NoError(t, err)

	notSegment := func(op vfs.Op) bool { return op.Kind == vfs.OpWrite && !strings.Contains(op.Path, ".seg") }
	w.SetInjector(vfs.OnMatch(

		0, func(op vfs.Op) bool {
			return vfs.Kinds(vfs.OpCreate, vfs.OpAllocate)(op) || notSegment(op)
		}, vfs.FaultNoSpace, true))
	sealed := make(chan error, 1)
	go func() { sealed <- s.Seal(ctx) }()
	require.Eventually(t, func() bool {
		for _, sp := range spansNamed(exp, tracing.SpanSeal) {
			if attrs(sp)[tracing.KeyResult].AsString() == tracing.ResultBlocked {
				return true
			}
		}
		return false
	}, 5*time.Second, 5*time.Millisecond, "a blocked seal attempt is traced")
	w.SetInjector(nil)
	require.NoError(t, <-sealed)
	var seals []tracetest.SpanStub
	require.Eventually(t, func() bool {
		seals = spansNamed(exp, tracing.SpanSeal)
		return attrs(seals[len(seals)-1])[tracing.KeyResult].AsString() != tracing.ResultBlocked
	}, 5*time.Second, time.Millisecond, "the successful attempt's span ends")
	blocked, last := seals[0], seals[len(seals)-1]
	require.Equal(t, codes.Error, blocked.Status.Code)
	require.True(t, hasEvent(blocked, "exception"), "the disk-full error is recorded")
	require.Contains(t, blocked.Status.Description, "no space")
	require.Equal(t, tracing.ResultOK, attrs(last)[tracing.KeyResult].AsString())
	require.Equal(t, codes.Unset, last.Status.Code)

	// EIO writing the seal's pointer: the stream stops, the seal span says why.
	_, err = s.AppendDurable(ctx, []byte("second"), AppendOptions{})
	require.NoError(t, err)
	w.SetInjector(vfs.OnMatch(0, notSegment, vfs.FaultEIO, true))
	n := len(seals)
	err = s.Seal(ctx)
	require.ErrorIs(t, err, ErrStreamFailed)
	seals = endedSpans(t, exp, tracing.SpanSeal, n+1)
	require.Len(t, seals, n+1)
	failed := seals[n]
	require.Equal(t, codes.Error, failed.Status.Code)
	require.Equal(t, tracing.ResultError, attrs(failed)[tracing.KeyResult].AsString())
	waits := spansNamed(exp, tracing.SpanStreamSeal)
	require.Equal(t, codes.Error, waits[len(waits)-1].Status.Code, "the caller's Seal span fails too")
}

// The cost of the instrumentation on the append path, with no tracer
// provider installed (the default: the global no-op):
//
//   - Sampler: what every AppendDurable, Flush and FlushAll pays to decide
//     (Append, AppendCtx and AppendBatch pay nothing: they are not traced);
//   - NoProviderSpan: what a picked call pays for its span;
//   - AppendDurable: durable appends on an in-memory file system (so the
//     wait for the disk does not hide the difference) with tracing off,
//     at the default 1 in 1024, and on every call.
func BenchmarkTracingOverhead(b *testing.B) {
	b.Run("Sampler/off", func(b *testing.B) {
		s := tracing.NewSampler(-1)
		n := 0
		for range b.N {
			if s.Sample() {
				n++
			}
		}
		require.Zero(b, n)
	})
	b.Run("Sampler/1024", func(b *testing.B) {
		s := tracing.NewSampler(tracing.DefaultSampleEvery)
		n := 0
		for range b.N {
			if s.Sample() {
				n++
			}
		}
		require.Equal(b, b.N/tracing.DefaultSampleEvery, n)
	})
	b.Run("NoProviderSpan", func(b *testing.B) {
		tr := tracing.Tracer(nil, tracing.ScopeCore)
		ctx := context.Background()
		b.ReportAllocs()
		for range b.N {
			_, span := tracing.Start(ctx, tr, tracing.SpanAppendDurable, tracing.StreamID(1), tracing.Bytes(256))
			tracing.End(span, nil)
		}
	})
	for _, every := range []int{-1, tracing.DefaultSampleEvery, 1} {
		b.Run(fmt.Sprintf("AppendDurable/every=%d", every), func(b *testing.B) {
			cfg := Config{FS: vfs.NewMem(), SegmentSize: 64 << 20, Sync: SyncAlways, TraceAppendEvery: every, NoManifest: true}
			st, err := Open("/data", cfg)
			require.NoError(b, err)
			defer st.Close()
			s, err := st.Stream(1)
			require.NoError(b, err)
			p := make([]byte, 256)
			ctx := context.Background()
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				if _, err := s.AppendDurable(ctx, p, AppendOptions{}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
