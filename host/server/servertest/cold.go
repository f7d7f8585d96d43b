package servertest

import (
	"context"
	"fmt"
	"os"
	"sync"

	"github.com/aof2/aof2/core"
	"github.com/aof2/aof2/core/segment"
	"github.com/aof2/aof2/core/vfs"
)

// Cold stands in for the colder tiers (core.Config.Cold) of a store on the
// OS file system, for tests of reads that hydrate: Evict keeps a copy of a
// sealed segment's file and evicts it from tier 0, Hydrate writes the copy
// back. Hold makes hydrations wait until Release, so a test can keep one
// in flight.
type Cold struct {
	mu         sync.Mutex
	copies     map[coldKey][]byte
	gate       chan struct{} // closed while hydrations may proceed
	hydrations int
}

type coldKey struct {
	stream core.StreamID
	seg    core.SegmentID
}

var _ core.Cold = (*Cold)(nil)

// NewCold returns a Cold whose hydrations proceed.
func NewCold() *Cold {
	c := &Cold{copies: map[coldKey][]byte{}, gate: make(chan struct{})}
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
	c.copies[coldKey{s.ID(), seg}] = b
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

func (c *Cold) copyOf(stream core.StreamID, seg core.SegmentID) ([]byte, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	b, ok := c.copies[coldKey{stream, seg}]
	if !ok {
		return nil, fmt.Errorf("stream %d: segment %d was not evicted through Cold: %w", stream, seg, core.ErrNotFound)
	}
	return b, nil
}

// Describe implements core.Cold from the copy.
func (c *Cold) Describe(_ context.Context, stream core.StreamID, seg core.SegmentID) (segment.Header, segment.Footer, error) {
	b, err := c.copyOf(stream, seg)
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

// Hydrate implements core.Cold: once the gate is open, the copy is written
// back to path.
func (c *Cold) Hydrate(ctx context.Context, stream core.StreamID, seg core.SegmentID, path string) error {
	c.mu.Lock()
	c.hydrations++
	gate := c.gate
	c.mu.Unlock()
	select {
	case <-gate:
	case <-ctx.Done():
		return ctx.Err()
	}
	b, err := c.copyOf(stream, seg)
	if err != nil {
		return err
	}
	return vfs.WriteFileAtomic(vfs.OS, path, b)
}
