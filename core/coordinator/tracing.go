package coordinator

import (
	"context"

	"go.opentelemetry.io/otel/trace"

	"github.com/aof2/aof2/core/internal/tracing"
	"github.com/aof2/aof2/core/types"
)

// startSpan starts the span of one tiering operation on a segment, under
// ctx: a worker's job context (a root span) or a caller's (a hydration for
// a reader).
func (c *Coordinator) startSpan(ctx context.Context, name string, stream types.StreamID, seg types.SegmentID, tier int) (context.Context, trace.Span) {
	return tracing.Start(ctx, c.tracer, name,
		tracing.StreamID(uint64(stream)), tracing.SegmentID(uint64(seg)), tracing.Tier(tier))
}

// endSpan ends span with result, or with result error and err recorded.
func endSpan(span trace.Span, err error, result string) {
	if err != nil {
		result = tracing.ResultError
	}
	tracing.EndResult(span, err, result)
}
