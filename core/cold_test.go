package core

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/aof2/aof2/core/manifest"
	"github.com/aof2/aof2/core/segment"
	"github.com/aof2/aof2/core/vfs"
)

// copyCold keeps byte copies of evicted segment files: the simplest other
// tier, enough to test the engine's side of eviction and hydration (the
// coordinator's real tiers are tested in core/coordinator). It has no
// ranged reads, no budget and no listings.
type copyCold struct {
	fs vfs.FS
	mu sync.Mutex
	// copies by segment id; hydrations counts Hydrate calls, reads the
	// segments readers moved onto.
	copies     map[SegmentID][]byte
	hydrations int
	reads      []SegmentID
}

var _ Tiering = (*copyCold)(nil)

func (c *copyCold) AdmitSegment(SegmentKey, int64) error { return nil }
func (c *copyCold) CheckNewStream(StreamID) error        { return nil }
func (c *copyCold) Repair(context.Context, SegmentKey) error {
	return errors.ErrUnsupported
}
func (c *copyCold) SegmentSealed(*Stream, SegmentInfo) {}

func (c *copyCold) SegmentRead(k SegmentKey) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.reads = append(c.reads, k.Segment)
}

func (c *copyCold) ReadRecord(context.Context, SegmentKey, int64, int64) (Record, error) {
	return Record{}, fmt.Errorf("copyCold: %w", errors.ErrUnsupported)
}

func (c *copyCold) WarmArtifacts(context.Context, StreamID) ([]manifest.WarmArtifact, error) {
	return nil, nil
}

func (c *copyCold) Tier2Segments(context.Context, StreamID) ([]manifest.Tier2Segment, error) {
	return nil, nil
}

func (c *copyCold) save(t *testing.T, s *Stream, id SegmentID) {
	info, ok := s.Segment(id)
	require.True(t, ok)
	b, err := vfs.ReadFile(c.fs, info.Path)
	require.NoError(t, err)
	c.mu.Lock()
	defer c.mu.Unlock()
	c.copies[id] = b
}

func (c *copyCold) Describe(_ context.Context, k SegmentKey) (segment.Header, segment.Footer, error) {
	id := k.Segment
	c.mu.Lock()
	b, ok := c.copies[id]
	c.mu.Unlock()
	if !ok {
		return segment.Header{}, segment.Footer{}, fmt.Errorf("segment %d: %w", id, ErrNotFound)
	}
	h, err := segment.DecodeHeader(b)
	if err != nil {
		return h, segment.Footer{}, err
	}
	f, err := segment.DecodeFooter(b[len(b)-segment.FooterSize:], int64(len(b)))
	return h, f, err
}

func (c *copyCold) ReadFailed(_ context.Context, _ SegmentKey, err error) error { return err }

func (c *copyCold) Hydrate(_ context.Context, k SegmentKey, path string) error {
	id := k.Segment
	c.mu.Lock()
	b, ok := c.copies[id]
	c.hydrations++
	c.mu.Unlock()
	if !ok {
		return fmt.Errorf("segment %d: %w", id, ErrNotFound)
	}
	return vfs.WriteFileAtomic(c.fs, path, b)
}

func TestEvictAndHydrate(t *testing.T) {
	ctx := context.Background()
	mem := vfs.NewMem()
	cold := &copyCold{fs: mem, copies: map[SegmentID][]byte{}}
	cfg := smallConfig(mem)
	cfg.Tiering = cold
	st, err := Open("/d", cfg)
	require.NoError(t, err)
	s, err := st.Stream(1)
	require.NoError(t, err)
	var want []string
	for seg := range 4 {
		for i := range 20 {
			p := fmt.Sprintf("segment %d record %d", seg, i)
			_, err := s.AppendDurable(ctx, []byte(p), AppendOptions{})
			require.NoError(t, err)
			want = append(want, p)
		}
		require.NoError(t, s.Seal(ctx))
	}
	_, err = s.AppendDurable(ctx, []byte("tail"), AppendOptions{})
	require.NoError(t, err)
	want = append(want, "tail")

	readAllCtx := func(s *Stream) []string {
		r, err := s.NewReader(AtStart())
		require.NoError(t, err)
		defer r.Close()
		var got []string
		for {
			rec, err := r.NextCtx(ctx)
			if err == io.EOF {
				return got
			}
			require.NoError(t, err)
			got = append(got, string(rec.Payload))
		}
	}

	// Tail and unsealed segments cannot go; a pinned one neither.
	require.ErrorIs(t, s.Evict(5), ErrSegmentBusy)
	pinned, err := s.NewReader(AtOrdinal(45))
	require.NoError(t, err)
	require.ErrorIs(t, s.Evict(3), ErrSegmentBusy)
	pinned.Close()

	tl := s.TierLog()
	require.NotNil(t, tl)
	for _, id := range []SegmentID{1, 3} {
		cold.save(t, s, id)
		require.NoError(t, tl.Record(ctx, manifest.CompressionDone{Header: manifest.Header{SegmentID: id}, CompressedBytes: 1}))
		require.NoError(t, s.Evict(id))
		info, _ := s.Segment(id)
		require.False(t, info.Resident)
		_, err := mem.Stat(info.Path)
		require.True(t, vfs.IsNotExist(err), "file of segment %d removed", id)
	}

	r, err := s.NewReader(AtStart())
	require.NoError(t, err)
	_, err = r.Next()
	require.Equal(t, Hydration, KindOf(err), "plain Next reports a cold segment: %v", err)
	r.Close()
	require.Equal(t, want, readAllCtx(s))
	require.Equal(t, 2, cold.hydrations)
	require.Equal(t, []SegmentID{3, 1, 1, 2, 3, 4, 5}, cold.reads, "readers report each segment they move onto (the pinned reader at ordinal 45 first)")

	// A point read of a cold segment, with no ranged read to be had,
	// hydrates it.
	require.NoError(t, s.Evict(3))
	rec, err := s.ReadAt(ctx, MakeRecordID(3, segment.HeaderSize))
	require.NoError(t, err)
	require.Equal(t, want[40], string(rec.Payload))
	require.Equal(t, 3, cold.hydrations)
	require.ErrorIs(t, tl.Record(ctx, manifest.SealSegment{Header: manifest.Header{SegmentID: 3}}), errEngineRecord,
		"the tier log refuses the engine's own records")

	// Evicted again, then reopened: recovery keeps the cold segments in the
	// catalog through Describe, and reads hydrate them.
	require.NoError(t, s.Evict(1))
	require.NoError(t, s.Evict(3))
	require.NoError(t, st.Close())
	st, err = Open("/d", cfg)
	require.NoError(t, err)
	require.Equal(t, []SegmentID{1, 3}, st.Recovery()[0].Cold)
	s, err = st.Lookup(1)
	require.NoError(t, err)
	require.Equal(t, want, readAllCtx(s))
	id, err := s.AppendDurable(ctx, []byte("after"), AppendOptions{})
	require.NoError(t, err)
	require.Equal(t, SegmentID(5), id.Segment(), "the tail is resumed, ids are not reused")
	require.NoError(t, s.Evict(1))
	before := cold.hydrations
	require.NoError(t, s.Hydrate(ctx, 1), "explicit hydration")
	info, _ := s.Segment(1)
	require.True(t, info.Resident)
	require.NoError(t, s.Hydrate(ctx, 1), "resident: no-op")
	require.Equal(t, before+1, cold.hydrations)
	require.ErrorIs(t, s.Hydrate(ctx, 99), ErrNotFound)
	require.NoError(t, s.Evict(1))
	require.NoError(t, st.Close())

	// Without a cold tier the stream still opens (the cold stubs describe
	// the evicted segments), and reading one is a typed error.
	cfg.Tiering = nil
	st, err = Open("/d", cfg)
	require.NoError(t, err)
	s, err = st.Lookup(1)
	require.NoError(t, err)
	r, err = s.NewReader(AtStart())
	require.NoError(t, err)
	_, err = r.NextCtx(ctx)
	require.ErrorIs(t, err, ErrNotFound)
	r.Close()
	require.NoError(t, st.Close())

	// A lost stub: the manifest knows the segment is in another tier, so
	// recovery asks the cold tier to describe it; without one the stream
	// refuses to open rather than reuse its id.
	info1 := filepath.Join("/d/streams/1/segments", filepath.Base(cold.path(t, mem, 1)))
	require.NoError(t, mem.Remove(info1+ColdSuffix))
	st, err = Open("/d", cfg)
	require.NoError(t, err)
	_, err = st.Lookup(1)
	require.ErrorIs(t, err, ErrInvalidConfig)
	require.NoError(t, st.Close())
	cfg.Tiering = cold
	st, err = Open("/d", cfg)
	require.NoError(t, err)
	defer st.Close()
	s, err = st.Lookup(1)
	require.NoError(t, err)
	require.Equal(t, append(want, "after"), readAllCtx(s))
}

// path finds the segment file (or its stub) of segment id.
func (c *copyCold) path(t *testing.T, fsys vfs.FS, id SegmentID) string {
	names, err := fsys.List("/d/streams/1/segments")
	require.NoError(t, err)
	for _, n := range names {
		if name, ok := segment.ParseFileName(strings.TrimSuffix(n, ColdSuffix)); ok && name.SegmentID == id {
			return strings.TrimSuffix(n, ColdSuffix)
		}
	}
	t.Fatalf("segment %d not found", id)
	return ""
}

// TestScanReadsAhead: hydrating a cold segment for a reader starts
// hydrating the next cold one in the background.
func TestScanReadsAhead(t *testing.T) {
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
	for range 3 {
		_, err := s.AppendDurable(ctx, []byte("record"), AppendOptions{})
		require.NoError(t, err)
		require.NoError(t, s.Seal(ctx))
	}
	for _, id := range []SegmentID{1, 2} {
		cold.save(t, s, id)
		require.NoError(t, s.Evict(id))
	}
	r, err := s.NewReader(AtStart())
	require.NoError(t, err)
	defer r.Close()
	_, err = r.NextCtx(ctx)
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		info, _ := s.Segment(2)
		return info.Resident
	}, 5*time.Second, time.Millisecond, "segment 2 hydrated ahead of the reader")
}

// judgingCold is copyCold whose copies are all gone, and whose judgement
// of a failed hydration waits for another hydration of the same segment
// to start: what a cluster member's catch-up does when the apply loop it
// waits for reads that segment (a replay counting its records).
type judgingCold struct {
	copyCold
	judge   func(ctx context.Context) error
	entered chan struct{} // receives each Hydrate call
}

func (c *judgingCold) Hydrate(_ context.Context, k SegmentKey, _ string) error {
	c.entered <- struct{}{}
	return fmt.Errorf("segment %d: no copy: %w", k.Segment, ErrNotFound)
}

func (c *judgingCold) ReadFailed(ctx context.Context, _ SegmentKey, err error) error {
	if c.judge != nil {
		judge := c.judge
		c.judge = nil
		if jerr := judge(ctx); jerr != nil {
			return jerr
		}
	}
	return err
}

// TestReadFailedRunsOutsideTheHydration: the engine judges a failed
// hydration with the segment released, so a judgement that waits for a
// second reader's hydration of the segment ends. Before, the first held
// the segment's hydration slot while judging: the cluster's catch-up and
// the apply loop's own read of the segment waited on each other.
func TestReadFailedRunsOutsideTheHydration(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	mem := vfs.NewMem()
	cold := &judgingCold{copyCold: copyCold{fs: mem, copies: map[SegmentID][]byte{}}, entered: make(chan struct{}, 4)}
	cfg := smallConfig(mem)
	cfg.Tiering = cold
	st, err := Open("/d", cfg)
	require.NoError(t, err)
	defer st.Close()
	s, err := st.Stream(1)
	require.NoError(t, err)
	_, err = s.AppendDurable(ctx, []byte("sealed"), AppendOptions{})
	require.NoError(t, err)
	require.NoError(t, s.Seal(ctx))
	_, err = s.AppendDurable(ctx, []byte("tail"), AppendOptions{})
	require.NoError(t, err)
	require.NoError(t, s.Evict(1))

	second := make(chan error, 1)
	cold.judge = func(ctx context.Context) error {
		<-cold.entered // the first reader's own hydration
		go func() {
			r, err := s.NewReader(AtStart())
			if err == nil {
				defer r.Close()
				_, err = r.NextCtx(ctx)
			}
			second <- err
		}()
		select {
		case <-cold.entered:
			return nil
		case <-time.After(5 * time.Second):
			return errors.New("the second hydration never started: the first still holds the segment")
		}
	}
	r, err := s.NewReader(AtStart())
	require.NoError(t, err)
	defer r.Close()
	_, err = r.NextCtx(ctx)
	require.ErrorIs(t, err, ErrNotFound)
	require.NotContains(t, err.Error(), "never started")
	select {
	case err := <-second:
		require.ErrorIs(t, err, ErrNotFound)
	case <-ctx.Done():
		t.Fatal("the second reader did not finish")
	}
}
