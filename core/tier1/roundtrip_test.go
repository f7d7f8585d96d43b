package tier1

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/aof2/aof2/core/checksum"
	"github.com/aof2/aof2/core/segment"
	"github.com/aof2/aof2/core/types"
	"github.com/aof2/aof2/core/vfs"
)

func TestRoundTrip(t *testing.T) {
	cases := []struct {
		name      string
		capacity  int64
		fill      int64
		frameSize int
		level     Level
	}{
		{"full-1MiB-default", 1 << 20, -1, 0, 0},
		{"half-2MiB-64KiB-frames", 2 << 20, 1 << 20, 64 << 10, LevelFastest},
		{"empty-segment", 1 << 20, 0, 0, LevelBest},
		{"full-4MiB-odd-frames", 4 << 20, -1, 300 << 10, LevelBetter},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			fsys := vfs.NewMem()
			src := writeSegment(t, fsys, "/data", 7, 3, tc.capacity, tc.fill, 1)
			dst := ArtifactPath("/data", src.key())
			res, err := CompressSegment(context.Background(), fsys, src.source(), dst, Options{FrameSize: tc.frameSize, Level: tc.level})
			require.NoError(t, err)
			require.Equal(t, src.key(), res.Key)
			require.Equal(t, tc.capacity, res.Capacity)
			require.Equal(t, src.foot.SegmentCRC, res.SegmentCRC)
			require.Equal(t, uint64(len(src.records)), res.RecordCount)
			art := readAll(t, fsys, dst)
			require.Equal(t, int64(len(art)), res.CompressedBytes)
			require.Equal(t, checksum.Sum64(art), res.ArtifactCRC)
			fs := tc.frameSize
			if fs == 0 {
				fs = DefaultFrameSize
			}
			require.Equal(t, (tc.capacity+int64(fs)-1)/int64(fs), res.Frames)
			noTemps(t, fsys, filepath.Dir(dst))

			a := openFile(t, fsys, dst)
			defer a.Close()
			hdest := "/data/hydrated/" + segment.FileName(3, 0, 3)
			hr, err := Hydrate(context.Background(), fsys, a, src.expected(), hdest)
			require.NoError(t, err)
			require.Equal(t, src.foot.DurableBytes, hr.DurableBytes)
			orig := readAll(t, fsys, src.path)
			got := readAll(t, fsys, hdest)
			require.Equal(t, orig, got, "hydrated file differs from the original")
			require.NoError(t, segment.VerifySealed(got, hdest, &src.foot))
			require.Equal(t, src.foot.SegmentCRC, checksum.Sum64(got[:src.foot.DurableBytes]))
			noTemps(t, fsys, filepath.Dir(hdest))
		})
	}
}

func TestRandomAccess(t *testing.T) {
	fsys := vfs.NewMem()
	src := writeSegment(t, fsys, "/data", 1, 9, 4<<20, -1, 2)
	dst := ArtifactPath("/data", src.key())
	_, err := CompressSegment(context.Background(), fsys, src.source(), dst, Options{FrameSize: 256 << 10})
	require.NoError(t, err)
	orig := readAll(t, fsys, src.path)

	a := openFile(t, fsys, dst)
	defer a.Close()
	require.Equal(t, int64(len(orig)), a.Size())
	r := rand.New(rand.NewPCG(3, 4))
	for range 200 {
		off := r.Int64N(a.Size())
		n := r.IntN(600 << 10)
		buf := make([]byte, n)
		got, err := a.ReadAt(buf, off)
		want := min(int64(n), a.Size()-off)
		require.Equal(t, int(want), got)
		if int64(n) > a.Size()-off {
			require.ErrorIs(t, err, io.EOF)
		} else {
			require.NoError(t, err)
		}
		require.Equal(t, orig[off:off+want], buf[:got])
	}
	h, err := a.Header()
	require.NoError(t, err)
	require.Equal(t, src.seg, h.SegmentID)
	f, err := a.Footer()
	require.NoError(t, err)
	require.Equal(t, src.foot, f)
}

func TestReadRecordTouchesFewFrames(t *testing.T) {
	fsys := vfs.NewMem()
	src := writeSegment(t, fsys, "/data", 1, 2, 8<<20, -1, 5)
	dst := ArtifactPath("/data", src.key())
	_, err := CompressSegment(context.Background(), fsys, src.source(), dst, Options{})
	require.NoError(t, err)
	limit := int64(src.foot.DurableBytes)
	for _, i := range []int{0, 1, len(src.records) / 2, len(src.records) - 1} {
		w := src.records[i]
		a := openFile(t, fsys, dst)
		rec, err := a.ReadRecord(w.off, limit)
		require.NoError(t, err)
		require.Equal(t, w.payload, rec.Payload)
		require.Equal(t, int64(i), rec.Timestamp)
		s := a.Stats()
		require.LessOrEqual(t, s.FramesFetched, int64(2))
		require.LessOrEqual(t, s.Fetched(), int64(2<<20))
		require.NoError(t, a.Close())
	}
	a := openFile(t, fsys, dst)
	defer a.Close()
	_, err = a.ReadRecord(limit, limit)
	require.ErrorIs(t, err, types.ErrNotFound)
	_, err = a.ReadRecord(src.records[1].off+8, limit)
	require.ErrorIs(t, err, types.ErrCorrupt, "an offset inside a record fails its checksum")
	_, err = a.ReadRecord(3, limit)
	require.ErrorIs(t, err, types.ErrInvalidRecordID)
}

func TestCompressRejectsBadSources(t *testing.T) {
	fsys := vfs.NewMem()
	src := writeSegment(t, fsys, "/data", 1, 4, 1<<20, 4096, 1)
	dst := ArtifactPath("/data", src.key())

	// A wrong stream or segment id.
	_, err := CompressSegment(context.Background(), fsys, Source{Stream: 2, Path: src.path}, dst, Options{})
	require.ErrorIs(t, err, ErrSourceCorrupt)
	_, err = CompressSegment(context.Background(), fsys, Source{Stream: 1, Path: src.path, Segment: 5}, dst, Options{})
	require.ErrorIs(t, err, ErrSourceCorrupt)

	// A flipped bit inside a record: segment_crc64 no longer matches.
	f, err := fsys.OpenReadWrite(src.path)
	require.NoError(t, err)
	var b [1]byte
	_, err = f.ReadAt(b[:], src.records[0].off+30)
	require.NoError(t, err)
	b[0] ^= 0x10
	_, err = f.WriteAt(b[:], src.records[0].off+30)
	require.NoError(t, err)
	require.NoError(t, f.Close())
	_, err = CompressSegment(context.Background(), fsys, src.source(), dst, Options{})
	require.ErrorIs(t, err, ErrSourceCorrupt)
	require.ErrorIs(t, err, types.ErrCorrupt)
	require.False(t, exists(t, fsys, dst))
	noTemps(t, fsys, filepath.Dir(dst))

	// An unsealed segment.
	dir := filepath.Dir(src.path)
	p, err := segment.Prepare(fsys, filepath.Join(dir, segment.PrepName(8)), 1<<20, segment.PrepareFallocate, segment.WritePwrite)
	require.NoError(t, err)
	w, err := p.Activate(segment.Header{StreamID: 1, SegmentID: 8})
	require.NoError(t, err)
	_, err = w.Append([]byte("x"), 0, 0)
	require.NoError(t, err)
	require.NoError(t, w.Push())
	_, err = CompressSegment(context.Background(), fsys, Source{Stream: 1, Path: w.Path()}, ArtifactPath("/data", types.SegmentKey{Stream: 1, Segment: 8}), Options{})
	require.ErrorIs(t, err, ErrSourceCorrupt)
	require.NoError(t, w.Close())

	// Bad options.
	_, err = CompressSegment(context.Background(), fsys, src.source(), dst, Options{FrameSize: 100})
	require.ErrorIs(t, err, types.ErrInvalidConfig)
}

func TestCompressHonoursCancellation(t *testing.T) {
	fsys := vfs.NewMem()
	src := writeSegment(t, fsys, "/data", 1, 4, 1<<20, -1, 1)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	dst := ArtifactPath("/data", src.key())
	_, err := CompressSegment(ctx, fsys, src.source(), dst, Options{})
	require.ErrorIs(t, err, context.Canceled)
	require.False(t, exists(t, fsys, dst))
	noTemps(t, fsys, filepath.Dir(dst))
}

// TestHydrateLeavesTheUnusedRoomAHole: on a real file system a segment
// rebuilt from its artifact occupies what the sealed original did (records
// and footer, segment.SealedFootprint), not its capacity, and reads back
// byte for byte — whatever the frame size, so that a frame straddling the
// hole's edges is written only outside it.
func TestHydrateLeavesTheUnusedRoomAHole(t *testing.T) {
	for _, frame := range []int{64 << 10, 96 << 10, 300 << 10} {
		t.Run(fmt.Sprint(frame), func(t *testing.T) {
			dir := t.TempDir()
			const capacity = 4 << 20
			s := writeSegment(t, vfs.OS, dir, 1, 1, capacity, 100<<10, 9)
			art := filepath.Join(dir, "art")
			_, err := CompressSegment(context.Background(), vfs.OS, s.source(), art, Options{FrameSize: frame})
			require.NoError(t, err)
			dest := filepath.Join(dir, "hydrated")
			_, err = Hydrate(context.Background(), vfs.OS, openFile(t, vfs.OS, art), s.expected(), dest)
			require.NoError(t, err)
			require.Equal(t, readAll(t, vfs.OS, s.path), readAll(t, vfs.OS, dest))
			var st unix.Stat_t
			require.NoError(t, unix.Stat(dest, &st))
			require.Equal(t, int64(capacity), st.Size)
			footprint := segment.SealedFootprint(capacity, s.foot.DurableBytes)
			require.Less(t, footprint, int64(capacity)/10)
			require.LessOrEqual(t, st.Blocks*512, footprint, "allocated %d bytes, footprint %d", st.Blocks*512, footprint)
		})
	}
}
