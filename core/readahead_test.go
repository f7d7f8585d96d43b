package core

import (
	"context"
	"sync"
	"testing"
	"testing/synctest"

	"github.com/stretchr/testify/require"

	"github.com/aof2/aof2/core/vfs"
)

// evictingCold is copyCold whose hydrations make room the way the
// coordinator's tier-0 budget does: hydrating segment of first evicts the
// least recently used resident segment, victim.
type evictingCold struct {
	*copyCold
	of, victim SegmentID
	s          *Stream

	mu       sync.Mutex
	hydrated map[SegmentID]int
}

func (c *evictingCold) Hydrate(ctx context.Context, k SegmentKey, path string) error {
	id := k.Segment
	c.mu.Lock()
	c.hydrated[id]++
	c.mu.Unlock()
	if id == c.of {
		if err := c.s.Evict(c.victim); err != nil {
			return err
		}
	}
	return c.copyCold.Hydrate(ctx, k, path)
}

func (c *evictingCold) count(id SegmentID) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.hydrated[id]
}

// TestReadAheadSkipsWhatItsHydrationEvicted: a cold read of segment 1
// whose hydration evicted segment 2 (the budget's victim) does not read
// segment 2 ahead: that fetched back a segment that was in tier 0 when the
// read began, for a reader that may never get there (a 1-record Read of a
// ~1 MiB segment downloaded 2 MiB). A segment already cold before the read
// is still read ahead (TestScanReadsAhead).
func TestReadAheadSkipsWhatItsHydrationEvicted(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		mem := vfs.NewMem()
		cold := &evictingCold{copyCold: &copyCold{fs: mem, copies: map[SegmentID][]byte{}}, of: 1, victim: 2, hydrated: map[SegmentID]int{}}
		cfg := smallConfig(mem)
		cfg.Tiering = cold
		st, err := Open("/d", cfg)
		require.NoError(t, err)
		defer st.Close()
		s, err := st.Stream(1)
		require.NoError(t, err)
		cold.s = s
		for range 3 {
			_, err := s.AppendDurable(ctx, []byte("record"), AppendOptions{})
			require.NoError(t, err)
			require.NoError(t, s.Seal(ctx))
		}
		for _, id := range []SegmentID{1, 2} {
			cold.save(t, s, id)
		}
		require.NoError(t, s.Evict(1))

		r, err := s.NewReader(AtStart())
		require.NoError(t, err)
		defer r.Close()
		rec, err := r.NextCtx(ctx)
		require.NoError(t, err)
		require.Equal(t, "record", string(rec.Payload))
		info, _ := s.Segment(2)
		require.False(t, info.Resident, "hydrating segment 1 evicted segment 2")

		synctest.Wait() // background work has run to completion (or blocks)
		require.Equal(t, 1, cold.count(1))
		require.Zero(t, cold.count(2), "segment 2 was read ahead, though it was in tier 0 when the read began")
		info, _ = s.Segment(2)
		require.False(t, info.Resident)

		// The reader moving on hydrates it in the foreground.
		rec, err = r.NextCtx(ctx)
		require.NoError(t, err)
		require.Equal(t, "record", string(rec.Payload))
		require.Equal(t, 1, cold.count(2))
	})
}

// TestHydrateInBackground: after Next's WouldBlock(Hydration) the reader
// can start the hydration without waiting for it; a later Next reads the
// segment. Without a WouldBlock, or once the segment is back, it does
// nothing.
func TestHydrateInBackground(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		mem := vfs.NewMem()
		cold := &copyCold{fs: mem, copies: map[SegmentID][]byte{}}
		cfg := smallConfig(mem)
		cfg.Tiering = cold
		st, err := Open("/d", cfg)
		require.NoError(t, err)
		defer st.Close()
		s, err := st.Stream(1)
		require.NoError(t, err)
		_, err = s.AppendDurable(ctx, []byte("record"), AppendOptions{})
		require.NoError(t, err)
		require.NoError(t, s.Seal(ctx))
		cold.save(t, s, 1)
		require.NoError(t, s.Evict(1))

		r, err := s.NewReader(AtStart())
		require.NoError(t, err)
		defer r.Close()
		_, err = r.Next()
		require.Equal(t, Hydration, KindOf(err))
		r.HydrateInBackground()
		synctest.Wait()
		info, _ := s.Segment(1)
		require.True(t, info.Resident, "hydrated in the background")
		rec, err := r.Next()
		require.NoError(t, err)
		require.Equal(t, "record", string(rec.Payload))
		r.HydrateInBackground()
		synctest.Wait()
		require.Equal(t, 1, cold.hydrations)
	})
}
