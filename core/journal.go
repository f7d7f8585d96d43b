package core

import (
	"context"

	"github.com/aof2/aof2/core/segment"
	"github.com/aof2/aof2/core/types"
)

// Journal receives a stream's segment lifecycle events. The manifest log
// implements it; both calls must be durable when they return nil, and an
// error stops the stream (the seal is not acknowledged).
type Journal interface {
	SegmentOpened(ctx context.Context, stream types.StreamID, h segment.Header) error
	SegmentSealed(ctx context.Context, stream types.StreamID, f segment.Footer) error
}

type nopJournal struct{}

func (nopJournal) SegmentOpened(context.Context, types.StreamID, segment.Header) error { return nil }
func (nopJournal) SegmentSealed(context.Context, types.StreamID, segment.Footer) error { return nil }
