package servertest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"

	"github.com/aof2/aof2/core"
	"github.com/aof2/aof2/core/manifest"
	"github.com/aof2/aof2/core/segment"
	"github.com/aof2/aof2/core/vfs"
)

// Cold stands in for the colder tiers (core.Config.Tiering) of a store on
// the OS file system, for tests of reads that hydrate: Evict keeps a copy
// of a sealed segment's file and evicts it from tier 0, Hydrate writes the
// copy back. Hold makes hydrations wait until Release, so a test can keep
// one in flight. It has no budget, no ranged reads and no listings.
type Cold struct {
	mu         sync.Mutex                 // guards the fields below
	copies     map[core.SegmentKey][]byte // evicted segments' files
	gate       chan struct{}              // closed while hydrations may proceed
	hydrations int
}

var _ core.Tiering = (*Cold)(nil)

// NewCold returns a Cold whose hydrations proceed.
func NewCold() *Cold {
	c := &Cold{copies: map[core.SegmentKey][]byte{}, gate: make(chan struct{})}
	close(c.gate)
	return c
}

// Evict copies segment seg of s and evicts its tier-0 file.
func (c *Cold) Evict(s *core.Stream, seg core.SegmentID) error {
	info, ok := s.Segment(seg)
	if !ok {
		return fmt.Errorf("stream %d: segment %d: %w", s.ID(), seg, core.ErrNotFound)
	}
	b, err := os.ReadFile(info.Path)
	if err != nil {
		return err
	}
	c.mu.Lock()
	c.copies[core.SegmentKey{Stream: s.ID(), Segment: seg}] = b
	c.mu.Unlock()
	return s.Evict(seg)
}

// Hold makes hydrations wait until Release (or their context ends).
func (c *Cold) Hold() {
	c.mu.Lock()
	defer c.mu.Unlock()
	select {
	case <-c.gate:
		c.gate = make(chan struct{})
	default: // held already
	}
}

// Release lets held and later hydrations proceed.
func (c *Cold) Release() {
	c.mu.Lock()
	defer c.mu.Unlock()
	select {
	case <-c.gate:
	default:
		close(c.gate)
	}
}

// Hydrations counts the Hydrate calls so far.
func (c *Cold) Hydrations() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.hydrations
}

func (c *Cold) copyOf(k core.SegmentKey) ([]byte, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	b, ok := c.copies[k]
	if !ok {
		return nil, fmt.Errorf("%s was not evicted through Cold: %w", k, core.ErrNotFound)
	}
	return b, nil
}

// AdmitSegment admits everything: Cold has no budget.
func (c *Cold) AdmitSegment(core.SegmentKey, int64) error { return nil }

// CheckNewStream allows every stream: Cold has no tier 2 to hold one.
func (c *Cold) CheckNewStream(core.StreamID) error { return nil }

// Repair is unsupported: Cold keeps no verified copies to repair from.
func (c *Cold) Repair(context.Context, core.SegmentKey) error { return errors.ErrUnsupported }

// ReadFailed passes err on: Cold has nothing to catch up with.
func (c *Cold) ReadFailed(_ context.Context, _ core.SegmentKey, err error) error { return err }

// SegmentSealed does nothing: segments move only through Evict.
func (c *Cold) SegmentSealed(*core.Stream, core.SegmentInfo) {}

// SegmentRead does nothing: Cold keeps no LRU.
func (c *Cold) SegmentRead(core.SegmentKey) {}

// ReadRecord answers errors.ErrUnsupported: point reads hydrate.
func (c *Cold) ReadRecord(context.Context, core.SegmentKey, int64, int64) (core.Record, error) {
	return core.Record{}, fmt.Errorf("servertest.Cold: %w", errors.ErrUnsupported)
}

// WarmArtifacts lists nothing: Cold has no warm cache.
func (c *Cold) WarmArtifacts(context.Context, core.StreamID) ([]manifest.WarmArtifact, error) {
	return nil, nil
}

// Tier2Segments lists nothing: Cold has no tier 2.
func (c *Cold) Tier2Segments(context.Context, core.StreamID) ([]manifest.Tier2Segment, error) {
	return nil, nil
}

// Describe reads header and footer from the copy.
func (c *Cold) Describe(_ context.Context, k core.SegmentKey) (segment.Header, segment.Footer, error) {
	b, err := c.copyOf(k)
	if err != nil {
		return segment.Header{}, segment.Footer{}, err
	}
	h, err := segment.DecodeHeader(b)
	if err != nil {
		return h, segment.Footer{}, err
	}
	f, err := segment.DecodeFooter(b[len(b)-segment.FooterSize:], int64(len(b)))
	return h, f, err
}

// Hydrate writes the copy back to path once the gate is open.
func (c *Cold) Hydrate(ctx context.Context, k core.SegmentKey, path string) error {
	c.mu.Lock()
	c.hydrations++
	gate := c.gate
	c.mu.Unlock()
	select {
	case <-gate:
	case <-ctx.Done():
		return ctx.Err()
	}
	b, err := c.copyOf(k)
	if err != nil {
		return err
	}
	return vfs.WriteFileAtomic(vfs.OS, path, b)
}
