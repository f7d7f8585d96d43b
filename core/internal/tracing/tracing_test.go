package tracing

import (
	"context"
	"errors"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
)

func TestSampler(t *testing.T) {
	for _, every := range []int{-5, 0} {
		s := NewSampler(every)
		for range 10_000 {
			require.False(t, s.Sample(), "every=%d picks nothing", every)
		}
	}
	require.False(t, (&Sampler{}).Sample(), "the zero Sampler picks nothing")

	s := NewSampler(1)
	for range 10 {
		require.True(t, s.Sample(), "every=1 picks every call")
	}

	s = NewSampler(8)
	var picked []int
	for i := 1; i <= 40; i++ {
		if s.Sample() {
			picked = append(picked, i)
		}
	}
	require.Equal(t, []int{8, 16, 24, 32, 40}, picked)

	// Concurrent callers share the count: exactly one in N overall.
	s = NewSampler(16)
	var mu sync.Mutex
	n := 0
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 1600 {
				if s.Sample() {
					mu.Lock()
					n++
					mu.Unlock()
				}
			}
		})
	}
	wg.Wait()
	require.Equal(t, 8*1600/16, n)
}

func TestEnd(t *testing.T) {
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	tr := Tracer(tp, ScopeCore)
	_, ok := Start(context.Background(), tr, SpanSeal, StreamID(7), SegmentID(3))
	End(ok, nil)
	_, bad := Start(context.Background(), tr, SpanSeal, StreamID(7))
	End(bad, errors.New("disk on fire"))
	_, blocked := Start(context.Background(), tr, SpanSeal)
	EndResult(blocked, errors.New("no space"), ResultBlocked)
	_, skipped := Start(context.Background(), tr, SpanCompress)
	EndResult(skipped, nil, ResultSkipped)

	spans := exp.GetSpans()
	require.Len(t, spans, 4)
	result := func(i int) string {
		for _, kv := range spans[i].Attributes {
			if kv.Key == KeyResult {
				return kv.Value.AsString()
			}
		}
		return ""
	}
	require.Equal(t, ResultOK, result(0))
	require.Equal(t, codes.Unset, spans[0].Status.Code)
	require.Contains(t, spans[0].Attributes, StreamID(7))
	require.Contains(t, spans[0].Attributes, SegmentID(3))
	require.Equal(t, ScopeCore, spans[0].InstrumentationScope.Name)

	require.Equal(t, ResultError, result(1))
	require.Equal(t, codes.Error, spans[1].Status.Code)
	require.Equal(t, "disk on fire", spans[1].Status.Description)
	require.Len(t, spans[1].Events, 1, "the error is recorded as an exception event")

	require.Equal(t, ResultBlocked, result(2))
	require.Equal(t, codes.Error, spans[2].Status.Code)
	require.Equal(t, ResultSkipped, result(3))
	require.Equal(t, codes.Unset, spans[3].Status.Code)

	// With no provider the global no-op is used and nothing breaks.
	_, span := Start(context.Background(), Tracer(nil, ScopeCore), SpanSeal, StreamID(1))
	require.False(t, span.IsRecording())
	End(span, errors.New("ignored"))
}
