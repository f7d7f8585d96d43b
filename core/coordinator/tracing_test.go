package coordinator

import (
	"context"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/aof2/aof2/core"
	"github.com/aof2/aof2/core/budget"
	"github.com/aof2/aof2/core/internal/tracing"
	"github.com/aof2/aof2/core/tier2"
	"github.com/aof2/aof2/core/types"
	"github.com/aof2/aof2/pluginapi"
	pluginhost "github.com/aof2/aof2/pluginapi/host"
	fsbackend "github.com/aof2/aof2/plugins/fs"
)

type spanSet struct{ exp *tracetest.InMemoryExporter }

func (s spanSet) named(name string) []tracetest.SpanStub {
	var out []tracetest.SpanStub
	for _, sp := range s.exp.GetSpans() {
		if sp.Name == name {
			out = append(out, sp)
		}
	}
	return out
}

// moved returns the spans of name that moved bytes, by segment id: the
// upload is done once the bytes attribute is set, even if the job fails
// afterwards (the budget refusing MarkInTier2 for a segment it is evicting
// fails the job, and the scan re-asserts it).
func (s spanSet) moved(name string) map[int64]tracetest.SpanStub {
	out := map[int64]tracetest.SpanStub{}
	for _, sp := range s.named(name) {
		if a := spanAttrs(sp); a[tracing.KeyBytes].AsInt64() > 0 {
			out[a[tracing.KeySegmentID].AsInt64()] = sp
		}
	}
	return out
}

// ok returns the spans of name that ended with result ok, by segment id.
func (s spanSet) ok(name string) map[int64]tracetest.SpanStub {
	out := map[int64]tracetest.SpanStub{}
	for _, sp := range s.named(name) {
		if a := spanAttrs(sp); a[tracing.KeyResult].AsString() == tracing.ResultOK {
			out[a[tracing.KeySegmentID].AsInt64()] = sp
		}
	}
	return out
}

func spanAttrs(sp tracetest.SpanStub) map[attribute.Key]attribute.Value {
	m := map[attribute.Key]attribute.Value{}
	for _, kv := range sp.Attributes {
		m[kv.Key] = kv.Value
	}
	return m
}

// requireSegmentSpan checks the attributes every tiering span carries.
func requireSegmentSpan(t *testing.T, sp tracetest.SpanStub, stream int64, tier int64) {
	t.Helper()
	a := spanAttrs(sp)
	require.Equal(t, stream, a[tracing.KeyStreamID].AsInt64(), sp.Name)
	require.Contains(t, a, tracing.KeySegmentID, sp.Name)
	require.Equal(t, tier, a[tracing.KeyTier].AsInt64(), sp.Name)
	require.Equal(t, codes.Unset, sp.Status.Code, sp.Name)
}

// TestTracingTiering runs a store and coordinator with the fs backend (in
// process, over gRPC) as tier 2 and a tracer provider exporting into
// memory, and checks the spans of the whole flow: sampled durable appends,
// seals, compressions, uploads, evictions, hydrations from tier 1 and
// from tier 2 (with the fetch nested under the caller's span), manifest
// chunk uploads, retention deletes and the manifest replay at restart.
func TestTracingTiering(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp), sdktrace.WithSampler(sdktrace.AlwaysSample()))
	defer func() { _ = tp.Shutdown(context.Background()) }()
	spans := spanSet{exp}

	dir, root := t.TempDir(), t.TempDir()
	ip, err := pluginhost.ServeInProcess(fsbackend.New(), hclog.NewNullLogger())
	require.NoError(t, err)
	defer func() { _ = ip.Close() }()
	info, _, err := ip.Setup(ctx, pluginapi.ConfigureRequest{Config: map[string]string{"root": root}, StagingDir: dir})
	require.NoError(t, err)
	remote, err := tier2.New(ip, tier2.Config{Info: &info, Logger: hclog.NewNullLogger()})
	require.NoError(t, err)
	defer func() { require.NoError(t, remote.Close(context.Background())) }()
	open := func(ret Retention) (*Coordinator, *core.Store) {
		r := startRig(t, Config{DataDir: dir, Tier2: remote, Retention: ret, ScanInterval: 20 * time.Millisecond,
			Tier0: budget.Config{MaxBytes: 3 * segSize, Policy: budget.PolicyTier2}, Logger: hclog.NewNullLogger(), TracerProvider: tp},
			core.Config{TracerProvider: tp, TraceAppendEvery: 50})
		return r.c, r.st
	}
	c, st := open(Retention{})
	const stream = 9
	s, err := st.Stream(stream)
	require.NoError(t, err)

	const durable, records = 100, 3000 // ~7 segments through a 3-segment tier 0
	for i := range records {
		if i < durable {
			_, err = s.AppendDurable(ctx, payload(i), core.AppendOptions{})
		} else {
			_, err = s.AppendCtx(ctx, payload(i), core.AppendOptions{})
		}
		require.NoError(t, err, "record %d", i)
	}
	require.NoError(t, s.FlushAll(ctx))
	require.NoError(t, s.Seal(ctx))
	waitUploaded(t, s)
	require.NoError(t, s.TierLog().Rotate(ctx))

	appends := spans.named(tracing.SpanAppendDurable)
	require.Len(t, appends, durable/50, "one in 50 durable appends is traced")
	for _, sp := range appends {
		a := spanAttrs(sp)
		require.Equal(t, int64(stream), a[tracing.KeyStreamID].AsInt64())
		require.Equal(t, tracing.ResultOK, a[tracing.KeyResult].AsString())
	}

	sealed := map[int64]bool{}
	for _, info := range s.SegmentList() {
		require.NotNil(t, info.Footer)
		sealed[int64(info.ID)] = true
	}
	require.GreaterOrEqual(t, len(sealed), 6)
	// Spans end just after the manifest records waitUploaded watches.
	require.Eventually(t, func() bool {
		return len(spans.ok(tracing.SpanSeal)) == len(sealed) && len(spans.moved(tracing.SpanCompress)) == len(sealed) &&
			len(spans.moved(tracing.SpanUpload)) == len(sealed) && len(spans.ok(tracing.SpanEvict)) >= 3
	}, 10*time.Second, 10*time.Millisecond, "a seal, compression and upload span per segment (%d), and evictions; ok spans: %d seal, %d compress, %d upload, %d evict",
		len(sealed), len(spans.ok(tracing.SpanSeal)), len(spans.moved(tracing.SpanCompress)), len(spans.moved(tracing.SpanUpload)), len(spans.ok(tracing.SpanEvict)))
	for id, sp := range spans.ok(tracing.SpanSeal) {
		require.True(t, sealed[id], "seal span of segment %d", id)
		require.False(t, sp.Parent.IsValid(), "seals run on the syncer: root spans")
		a := spanAttrs(sp)
		require.Equal(t, int64(stream), a[tracing.KeyStreamID].AsInt64())
		require.Positive(t, a[tracing.KeyRecords].AsInt64())
		require.Positive(t, a[tracing.KeyBytes].AsInt64())
	}
	for id, sp := range spans.moved(tracing.SpanCompress) {
		require.True(t, sealed[id])
		a := spanAttrs(sp)
		require.Equal(t, int64(stream), a[tracing.KeyStreamID].AsInt64())
		require.Equal(t, int64(1), a[tracing.KeyTier].AsInt64())
		require.Positive(t, a[tracing.KeyRecords].AsInt64())
		require.False(t, sp.Parent.IsValid(), "background jobs are root spans")
	}
	for id, sp := range spans.moved(tracing.SpanUpload) {
		require.True(t, sealed[id])
		a := spanAttrs(sp)
		require.Equal(t, int64(stream), a[tracing.KeyStreamID].AsInt64())
		require.Equal(t, int64(2), a[tracing.KeyTier].AsInt64())
		if a[tracing.KeyResult].AsString() != tracing.ResultOK {
			require.Equal(t, tracing.ResultError, a[tracing.KeyResult].AsString())
			require.Equal(t, codes.Error, sp.Status.Code, "a job failing after its upload says why")
			require.NotEmpty(t, sp.Status.Description)
		}
	}
	for _, sp := range spans.ok(tracing.SpanEvict) {
		requireSegmentSpan(t, sp, stream, 0)
		require.Equal(t, int64(segSize), spanAttrs(sp)[tracing.KeyBytes].AsInt64())
	}

	// Hydrate one evicted segment from its warm artifact and one from tier
	// 2, under a caller's span.
	var warm, cold types.SegmentID
	for _, info := range s.SegmentList() {
		k := types.SegmentKey{Stream: stream, Segment: info.ID}
		switch {
		case info.Resident || !c.Warm().Contains(k):
		case warm == 0:
			warm = info.ID
		case cold == 0:
			cold = info.ID
			_, err := c.Warm().Remove(k)
			require.NoError(t, err)
		}
	}
	require.NotZero(t, warm)
	require.NotZero(t, cold)
	hctx, caller := tp.Tracer("test").Start(ctx, "caller")
	require.NoError(t, s.Hydrate(hctx, warm))
	require.NoError(t, s.Hydrate(hctx, cold))
	caller.End()
	hyd := spans.ok(tracing.SpanHydrate)
	require.Contains(t, hyd, int64(warm))
	require.Contains(t, hyd, int64(cold))
	for id, tier := range map[types.SegmentID]int64{warm: 1, cold: 2} {
		sp := hyd[int64(id)]
		require.Equal(t, caller.SpanContext().SpanID(), sp.Parent.SpanID(), "a hydration nests under its caller")
		requireSegmentSpan(t, sp, stream, tier)
		require.Equal(t, int64(segSize), spanAttrs(sp)[tracing.KeyBytes].AsInt64())
	}
	fetches := spans.named(tracing.SpanFetch)
	require.Len(t, fetches, 1, "only the tier-2 hydration fetches")
	require.Equal(t, hyd[int64(cold)].SpanContext.SpanID(), fetches[0].Parent.SpanID())
	requireSegmentSpan(t, fetches[0], stream, 2)
	require.Equal(t, int64(cold), spanAttrs(fetches[0])[tracing.KeySegmentID].AsInt64())
	require.Positive(t, spanAttrs(fetches[0])[tracing.KeyBytes].AsInt64())

	var chunk tracetest.SpanStub
	require.Eventually(t, func() bool {
		for _, sp := range spans.named(tracing.SpanChunkUpload) {
			if spanAttrs(sp)[tracing.KeyResult].AsString() == tracing.ResultOK {
				chunk = sp
				return true
			}
		}
		return false
	}, 10*time.Second, 10*time.Millisecond, "sealed manifest chunks are uploaded")
	ca := spanAttrs(chunk)
	require.Equal(t, int64(stream), ca[tracing.KeyStreamID].AsInt64())
	require.Contains(t, ca, tracing.KeyChunkIndex)
	require.Positive(t, ca[tracing.KeyBytes].AsInt64())
	require.Equal(t, int64(2), ca[tracing.KeyTier].AsInt64())

	require.NoError(t, st.Close())
	require.NoError(t, c.Close())

	// Restart with a retention policy that keeps about two segments: the
	// replay reports the manifest it read, and retention deletes are traced.
	before := len(spans.named(tracing.SpanManifestReplay))
	c, st = open(Retention{MaxBytes: 2 * segSize})
	defer func() { require.NoError(t, st.Close()); require.NoError(t, c.Close()) }()
	replays := spans.named(tracing.SpanManifestReplay)[before:]
	require.Len(t, replays, 1)
	ra := spanAttrs(replays[0])
	require.Equal(t, int64(stream), ra[tracing.KeyStreamID].AsInt64())
	require.Positive(t, ra[tracing.KeyChunkCount].AsInt64())
	require.Positive(t, ra[tracing.KeyRecordsApplied].AsInt64())
	require.Equal(t, int64(0), ra[tracing.KeyCorruptionEvents].AsInt64())
	require.Contains(t, ra, tracing.KeyJournalLagBytes)
	require.Equal(t, tracing.ResultOK, ra[tracing.KeyResult].AsString())
	require.Eventually(t, func() bool { return len(spans.ok(tracing.SpanRetentionDelete)) >= 2 },
		20*time.Second, 10*time.Millisecond, "retention deletes the oldest segments")
	for id, sp := range spans.ok(tracing.SpanRetentionDelete) {
		require.True(t, sealed[id])
		requireSegmentSpan(t, sp, stream, 2)
	}
}
