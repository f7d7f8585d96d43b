// Package tracing names the OpenTelemetry spans of the engine in one
// place: the instrumentation scopes, the span names, the attribute keys
// and their values, and the cheap sampler that picks which durable appends
// get a span. The engine uses only the OpenTelemetry API; with no
// TracerProvider set (the global one is a no-op until the host installs
// one, see host/telemetry) a span costs a context allocation and nothing
// is recorded.
//
// Spans, by package:
//
//	core         aof2.seal             the syncer sealing a segment (root span)
//	             aof2.stream.seal      Stream.Seal waiting for a seal (caller's ctx)
//	             aof2.append_durable   one in N AppendDurable calls (caller's ctx)
//	             aof2.flush            one in N Flush/FlushAll calls (caller's ctx)
//	coordinator  aof2.compress         tier-0 segment → warm artifact (tier 1)
//	             aof2.upload           warm artifact → tier 2
//	             aof2.evict            tier-0 file deleted
//	             aof2.hydrate          tier-0 file rebuilt for a reader (caller's ctx)
//	             aof2.fetch            tier-2 object → warm cache, under aof2.hydrate
//	             aof2.manifest_chunk.upload  sealed manifest chunk → tier 2
//	             aof2.retention.delete the oldest segment dropped from every tier
//	manifest     aof2.manifest.replay  Open replaying a stream's manifest
//
// Background work (the syncer, the coordinator's workers, store recovery)
// starts root spans; calls that carry a context nest under the caller's.
package tracing

import (
	"context"
	"sync/atomic"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
)

// Instrumentation scopes: the name each package gets its Tracer under.
const (
	ScopeCore        = "github.com/aof2/aof2/core"
	ScopeCoordinator = "github.com/aof2/aof2/core/coordinator"
	ScopeManifest    = "github.com/aof2/aof2/core/manifest"
)

// Span names.
const (
	SpanSeal            = "aof2.seal"
	SpanStreamSeal      = "aof2.stream.seal"
	SpanAppendDurable   = "aof2.append_durable"
	SpanFlush           = "aof2.flush"
	SpanCompress        = "aof2.compress"
	SpanUpload          = "aof2.upload"
	SpanEvict           = "aof2.evict"
	SpanHydrate         = "aof2.hydrate"
	SpanFetch           = "aof2.fetch"
	SpanChunkUpload     = "aof2.manifest_chunk.upload"
	SpanRetentionDelete = "aof2.retention.delete"
	SpanManifestReplay  = "aof2.manifest.replay"
)

// Attribute keys. The identifiers match the structured logs' keys
// (stream_id, segment_id, chunk_index), so a span and the log events of
// the same operation can be joined on them.
const (
	KeyStreamID  = attribute.Key("stream_id")
	KeySegmentID = attribute.Key("segment_id")
	// KeyRecordID is a record id's string form (segment:offset).
	KeyRecordID   = attribute.Key("record_id")
	KeyChunkIndex = attribute.Key("chunk_index")
	// KeyRecords is a count of log records (a sealed segment's).
	KeyRecords = attribute.Key("records")
	// KeyBytes is the size the operation moved or covered: a record's
	// payload, a segment's durable bytes, an artifact's compressed bytes, a
	// download, a manifest chunk.
	KeyBytes = attribute.Key("bytes")
	// KeyTier is the tier an operation writes to (compress 1, upload 2),
	// removes from (evict 0, retention 2) or reads from (hydrate: 1 or 2).
	KeyTier = attribute.Key("tier")
	// KeyResult is one of the Result* values.
	KeyResult = attribute.Key("result")
	// KeyForced marks an upload that replaces a tier-2 object
	// reconciliation found missing.
	KeyForced = attribute.Key("forced")
	// KeyAll marks a FlushAll (as opposed to a Flush up to one record).
	KeyAll = attribute.Key("all")

	// Manifest replay.
	KeyChunkCount       = attribute.Key("chunk_count")
	KeyJournalLagBytes  = attribute.Key("journal_lag_bytes")
	KeyCorruptionEvents = attribute.Key("corruption_events")
	KeyRecordsApplied   = attribute.Key("records_applied")
	KeySnapshotID       = attribute.Key("snapshot_id")
	KeyNeedsRepair      = attribute.Key("needs_repair")
	KeyRepaired         = attribute.Key("repaired")
)

// Values of KeyResult.
const (
	ResultOK    = "ok"
	ResultError = "error"
	// ResultSkipped: the operation found nothing to do (already done, or
	// no longer applicable).
	ResultSkipped = "skipped"
	// ResultBlocked: the operation waits for a resource (a seal waiting for
	// disk space) and is retried.
	ResultBlocked = "blocked"
)

// Tracer returns the tracer of scope from tp, or from the global provider
// when tp is nil. The global provider delegates to whatever the host
// installs later with otel.SetTracerProvider.
func Tracer(tp trace.TracerProvider, scope string) trace.Tracer {
	if tp == nil {
		tp = otel.GetTracerProvider()
	}
	return tp.Tracer(scope)
}

// StreamID is the stream_id attribute.
func StreamID(id uint64) attribute.KeyValue { return KeyStreamID.Int64(int64(id)) }

// SegmentID is the segment_id attribute.
func SegmentID(id uint64) attribute.KeyValue { return KeySegmentID.Int64(int64(id)) }

// ChunkIndex is the chunk_index attribute.
func ChunkIndex(i uint64) attribute.KeyValue { return KeyChunkIndex.Int64(int64(i)) }

// Bytes is the bytes attribute.
func Bytes(n int64) attribute.KeyValue { return KeyBytes.Int64(n) }

// Tier is the tier attribute.
func Tier(t int) attribute.KeyValue { return KeyTier.Int(t) }

// Start starts a span under ctx with attrs. Use context.Background() where
// no caller context exists: the span is then a root.
func Start(ctx context.Context, t trace.Tracer, name string, attrs ...attribute.KeyValue) (context.Context, trace.Span) {
	return t.Start(ctx, name, trace.WithAttributes(attrs...))
}

// End ends span with the outcome err: result ok, or the error recorded,
// the status set to Error and result error.
func End(span trace.Span, err error) {
	result := ResultOK
	if err != nil {
		result = ResultError
	}
	EndResult(span, err, result)
}

// EndResult ends span with an explicit result; a non-nil err is recorded
// and sets the status to Error whatever the result.
func EndResult(span trace.Span, err error, result string) {
	if span.IsRecording() {
		if err != nil {
			span.RecordError(err)
			span.SetStatus(codes.Error, err.Error())
		}
		span.SetAttributes(KeyResult.String(result))
	}
	span.End()
}

// DefaultSampleEvery is how many durable appends (and, separately,
// flushes) of a stream share one span by default.
const DefaultSampleEvery = 1024

// Sampler picks roughly one in every N calls with one atomic increment,
// so that a hot path pays for a span only when it is picked, never for
// creating and dropping one. The zero Sampler, and one made with N ≤ 0,
// picks nothing. The tracer provider's own sampler still decides whether
// a picked span is recorded.
type Sampler struct {
	every uint64
	n     atomic.Uint64
}

// NewSampler returns a sampler picking one call in every (none if every ≤ 0).
func NewSampler(every int) *Sampler {
	s := &Sampler{}
	if every > 0 {
		s.every = uint64(every)
	}
	return s
}

// Sample reports whether this call is picked: the every-th, 2·every-th, …
// call since the sampler was made.
func (s *Sampler) Sample() bool {
	if s.every == 0 {
		return false
	}
	return s.n.Add(1)%s.every == 0
}
