package tier1

import (
	"bytes"
	"context"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/aof2/aof2/core/types"
	"github.com/aof2/aof2/core/vfs"
	"github.com/aof2/aof2/internal/testwait"
)

type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *fakeClock { return &fakeClock{t: time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func openCache(t testing.TB, cfg Config) (*Cache, *Report) {
	t.Helper()
	if cfg.DataDir == "" {
		cfg.DataDir = "/data"
	}
	c, rep, err := Open(cfg)
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close() })
	return c, rep
}

// compressN writes and compresses n small segments of stream 1 (ids 1..n).
func compressN(t testing.TB, c *Cache, fsys vfs.FS, n int) []testSegment {
	t.Helper()
	var segs []testSegment
	for i := 1; i <= n; i++ {
		s := writeSegment(t, fsys, "/data", 1, types.SegmentID(i), 1<<20, 64<<10, uint64(i))
		r, err := c.Compress(context.Background(), s.source())
		require.NoError(t, err)
		require.True(t, exists(t, fsys, r.Path))
		segs = append(segs, s)
	}
	return segs
}

func evictedKeys(ev []Evicted) []types.SegmentKey {
	var ks []types.SegmentKey
	for _, e := range ev {
		ks = append(ks, e.Key)
	}
	return ks
}

func TestEvictLRU(t *testing.T) {
	fsys := vfs.NewMem()
	clk := newClock()
	c, _ := openCache(t, Config{FS: fsys, Now: clk.Now})
	segs := compressN(t, c, fsys, 4)
	size := map[types.SegmentKey]int64{}
	var total int64
	for _, s := range segs {
		info, ok := c.Stat(s.key())
		require.True(t, ok)
		size[s.key()] = info.Bytes
		total += info.Bytes
	}
	require.Equal(t, total, c.Stats().Bytes)
	require.NoError(t, c.Touch(segs[0].key())) // LRU order now 2, 3, 4, 1

	ev, err := c.Evict()
	require.NoError(t, err)
	require.Empty(t, ev, "no budget: nothing to evict")

	require.Empty(t, c.EvictionCandidates(nil))
	c.SetMaxBytes(total - size[segs[1].key()] - size[segs[2].key()])
	require.Equal(t, []types.SegmentKey{segs[1].key(), segs[2].key()}, c.EvictionCandidates(nil), "LRU first, only as many as needed")
	skipped := c.EvictionCandidates(func(k types.SegmentKey) bool { return k == segs[1].key() })
	require.NotContains(t, skipped, segs[1].key())
	require.Equal(t, []types.SegmentKey{segs[2].key(), segs[3].key()}, skipped[:2], "a skipped artifact is passed over for the next in LRU order")
	require.True(t, c.Contains(segs[1].key()), "listing deletes nothing")
	ev, err = c.Evict()
	require.NoError(t, err)
	require.Equal(t, []types.SegmentKey{segs[1].key(), segs[2].key()}, evictedKeys(ev))
	for _, e := range ev {
		require.Equal(t, size[e.Key], e.Bytes)
		require.False(t, exists(t, fsys, e.Path))
		require.False(t, c.Contains(e.Key))
	}
	require.True(t, c.Contains(segs[0].key()))
	require.True(t, c.Contains(segs[3].key()))
	require.Zero(t, c.OverBudget())
	ev, err = c.Evict()
	require.NoError(t, err)
	require.Empty(t, ev)
}

func TestEvictRules(t *testing.T) {
	cases := []struct {
		name  string
		cfg   Config
		setup func(t *testing.T, c *Cache, clk *fakeClock, a, b types.SegmentKey) func()
		want  []types.SegmentKey // evicted, given a older than b and a budget of one byte
		after []types.SegmentKey // evicted by a second Evict after cleanup
	}{
		{name: "plain LRU", want: []types.SegmentKey{{Stream: 1, Segment: 1}, {Stream: 1, Segment: 2}}},
		{name: "pinned is kept",
			setup: func(t *testing.T, c *Cache, _ *fakeClock, a, _ types.SegmentKey) func() {
				require.NoError(t, c.Pin(a))
				require.NoError(t, c.Pin(a)) // pins nest
				return func() { require.NoError(t, c.Unpin(a)); require.NoError(t, c.Unpin(a)) }
			},
			want: []types.SegmentKey{{Stream: 1, Segment: 2}}, after: []types.SegmentKey{{Stream: 1, Segment: 1}}},
		{name: "open artifact is kept",
			setup: func(t *testing.T, c *Cache, _ *fakeClock, a, _ types.SegmentKey) func() {
				art, err := c.OpenArtifact(a)
				require.NoError(t, err)
				return func() { require.NoError(t, art.Close()) }
			},
			want: []types.SegmentKey{{Stream: 1, Segment: 2}}, after: []types.SegmentKey{{Stream: 1, Segment: 1}}},
		{name: "tier 2: only uploaded", cfg: Config{Tier2: true},
			setup: func(t *testing.T, c *Cache, _ *fakeClock, _, b types.SegmentKey) func() {
				require.NoError(t, c.MarkUploaded(b))
				return func() {}
			},
			want: []types.SegmentKey{{Stream: 1, Segment: 2}}},
		{name: "tier 2: nothing uploaded", cfg: Config{Tier2: true}},
		{name: "minimum residency", cfg: Config{MinResidency: time.Hour},
			setup: func(t *testing.T, c *Cache, clk *fakeClock, _, _ types.SegmentKey) func() {
				clk.Advance(30 * time.Minute) // b was admitted 30 minutes after a
				return func() { clk.Advance(time.Hour) }
			},
			want: []types.SegmentKey{{Stream: 1, Segment: 1}}, after: []types.SegmentKey{{Stream: 1, Segment: 2}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			fsys := vfs.NewMem()
			clk := newClock()
			cfg := tc.cfg
			cfg.FS, cfg.Now = fsys, clk.Now
			c, _ := openCache(t, cfg)
			a := writeSegment(t, fsys, "/data", 1, 1, 1<<20, 32<<10, 1)
			_, err := c.Compress(context.Background(), a.source())
			require.NoError(t, err)
			clk.Advance(30 * time.Minute)
			b := writeSegment(t, fsys, "/data", 1, 2, 1<<20, 32<<10, 2)
			_, err = c.Compress(context.Background(), b.source())
			require.NoError(t, err)
			cleanup := func() {}
			if tc.setup != nil {
				cleanup = tc.setup(t, c, clk, a.key(), b.key())
			}
			c.SetMaxBytes(1)
			require.Equal(t, tc.want, c.EvictionCandidates(nil), "the candidates are what Evict deletes")
			ev, err := c.Evict()
			require.NoError(t, err)
			require.Equal(t, tc.want, evictedKeys(ev))
			if len(tc.want) < 2 {
				require.Positive(t, c.OverBudget(), "what may not be evicted stays, over budget")
			}
			cleanup()
			ev, err = c.Evict()
			require.NoError(t, err)
			require.Equal(t, tc.after, evictedKeys(ev))
		})
	}
}

func TestRemove(t *testing.T) {
	fsys := vfs.NewMem()
	c, _ := openCache(t, Config{FS: fsys, Tier2: true})
	segs := compressN(t, c, fsys, 2)
	k := segs[0].key()
	require.NoError(t, c.Pin(k))
	_, err := c.Remove(k)
	require.ErrorIs(t, err, ErrPinned)
	require.NoError(t, c.Unpin(k))
	require.Error(t, c.Unpin(k), "unbalanced unpin")
	ev, err := c.Remove(k) // not uploaded, but an explicit removal is the caller's call
	require.NoError(t, err)
	require.Equal(t, k, ev.Key)
	require.False(t, exists(t, fsys, ev.Path))
	_, err = c.Remove(k)
	require.ErrorIs(t, err, ErrNotCached)
	require.ErrorIs(t, c.Pin(k), ErrNotCached)
	_, err = c.OpenArtifact(k)
	require.ErrorIs(t, err, ErrNotCached)
}

func TestCompressIsIdempotent(t *testing.T) {
	fsys := vfs.NewMem()
	c, _ := openCache(t, Config{FS: fsys})
	s := writeSegment(t, fsys, "/data", 3, 5, 1<<20, 16<<10, 1)
	r1, err := c.Compress(context.Background(), s.source())
	require.NoError(t, err)
	r2, err := c.Compress(context.Background(), s.source())
	require.NoError(t, err)
	require.Equal(t, r1, r2)
	require.Equal(t, 1, c.Stats().Artifacts)
	_, err = c.Compress(context.Background(), Source{Stream: 3, Path: s.path})
	require.Error(t, err, "the cache needs the segment id up front")
}

func TestCacheHydrate(t *testing.T) {
	fsys := vfs.NewMem()
	reg := prometheus.NewRegistry()
	c, _ := openCache(t, Config{FS: fsys, Registerer: reg})
	s := writeSegment(t, fsys, "/data", 2, 6, 1<<20, 200<<10, 1)
	r, err := c.Compress(context.Background(), s.source())
	require.NoError(t, err)
	orig := readAll(t, fsys, s.path)
	require.Equal(t, 1.0, value(t, c.m.compressions.WithLabelValues("ok")))
	require.Equal(t, float64(r.CompressedBytes), value(t, c.m.cacheBytes))
	require.Greater(t, value(t, c.m.ratio), 1.0)

	// From the warm cache.
	h, err := c.Hydrate(context.Background(), HydrateRequest{Expected: s.expected(), Dest: "/data/h1.seg"})
	require.NoError(t, err)
	require.Equal(t, orig, readAll(t, fsys, h.Path))

	// From any io.ReaderAt (how a tier-2 object plugs in).
	art := readAll(t, fsys, r.Path)
	h, err = c.Hydrate(context.Background(), HydrateRequest{Expected: s.expected(), Dest: "/data/h2.seg",
		Source: bytes.NewReader(art), SourceSize: int64(len(art)), SourceName: "tier2"})
	require.NoError(t, err)
	require.Equal(t, orig, readAll(t, fsys, h.Path))
	require.Equal(t, int64(len(art)), h.Stats.Fetched())

	// The caller expects another checksum: hard error, nothing written.
	exp := s.expected()
	exp.SegmentCRC ^= 1
	_, err = c.Hydrate(context.Background(), HydrateRequest{Expected: exp, Dest: "/data/h3.seg"})
	var mm *ChecksumMismatchError
	require.ErrorAs(t, err, &mm)
	require.ErrorIs(t, err, types.ErrCorrupt)
	require.False(t, exists(t, fsys, "/data/h3.seg"))
	noTemps(t, fsys, "/data")
	require.Equal(t, 2.0, value(t, c.m.hydrations.WithLabelValues("ok")))
	require.Equal(t, 1.0, value(t, c.m.hydrations.WithLabelValues("checksum_mismatch")))

	// Not cached.
	_, err = c.Hydrate(context.Background(), HydrateRequest{Expected: Expected{Key: types.SegmentKey{Stream: 2, Segment: 99}}, Dest: "/data/h4.seg"})
	require.ErrorIs(t, err, ErrNotCached)

	// Close unregisters the metrics, so a new cache can use the registry.
	require.NoError(t, c.Close())
	c2, _ := openCache(t, Config{FS: fsys, Registerer: reg, Expected: []Expected{s.expected()}})
	require.True(t, c2.Contains(s.key()))
	_, err = c.Compress(context.Background(), s.source())
	require.ErrorIs(t, err, ErrClosed)
}

func TestSubmitNeverBlocks(t *testing.T) {
	mem := vfs.NewMem()
	segs := []testSegment{
		writeSegment(t, mem, "/data", 1, 1, 1<<20, 8<<10, 1),
		writeSegment(t, mem, "/data", 1, 2, 1<<20, 8<<10, 2),
		writeSegment(t, mem, "/data", 1, 3, 1<<20, 8<<10, 3),
	}
	entered, release := make(chan struct{}), make(chan struct{})
	fsys := vfs.Wrap(mem, vfs.InjectorFunc(func(op vfs.Op) vfs.Fault {
		if op.Kind == vfs.OpOpen && op.Path == segs[0].path {
			close(entered)
			<-release
		}
		return vfs.NoFault
	}))
	c, _ := openCache(t, Config{FS: fsys, CompressWorkers: 1, QueueDepth: 1})
	results := make(chan error, 3)
	done := func(_ CompressResult, err error) { results <- err }
	require.NoError(t, c.SubmitCompress(context.Background(), segs[0].source(), done))
	testwait.Recv(t, entered, testwait.Default, "the worker to open segment 1") // the only worker is busy with it
	require.NoError(t, c.SubmitCompress(context.Background(), segs[1].source(), done))
	require.ErrorIs(t, c.SubmitCompress(context.Background(), segs[2].source(), done), ErrBusy)
	require.Equal(t, 1, c.Stats().CompressQueue)
	close(release)
	require.NoError(t, <-results)
	require.NoError(t, <-results)
	require.Equal(t, 2, c.Stats().Artifacts)
}
