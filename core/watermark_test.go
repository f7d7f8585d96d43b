package core

import (
	"context"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/aof2/aof2/core/manifest"
	"github.com/aof2/aof2/core/segment"
	"github.com/aof2/aof2/core/vfs"
)

// sealedWatermarks returns, for segment id, the watermark its footer,
// current.sealed (when it names the segment) and its manifest SealSegment
// record carry.
func sealedWatermarks(t *testing.T, fsys vfs.FS, s *Stream, id SegmentID) (footer, pointer, mlog uint64) {
	t.Helper()
	info, ok := s.Segment(id)
	require.True(t, ok, "segment %d", id)
	require.NotNil(t, info.Footer, "segment %d is sealed", id)
	p, err := segment.ReadPointer(fsys, s.ptrPath)
	require.NoError(t, err)
	require.NotNil(t, p)
	pointer = ^uint64(0)
	if p.SegmentID == id {
		pointer = p.CoordinatorWatermark
	}
	ms, ok := s.TierLog().Segment(id)
	require.True(t, ok)
	require.True(t, ms.Sealed)
	return info.Footer.CoordinatorWatermark, pointer, ms.CoordinatorWatermark
}

// TestWatermarkSurvivesRestart: the watermark set before a seal is the one
// the next seal after a restart carries too (it was reset to 0), and the
// ext_id path (LastExtID) is restored with it.
func TestWatermarkSurvivesRestart(t *testing.T) {
	ctx := context.Background()
	mem := vfs.NewMem()
	open := func() (*Store, *Stream) {
		st, err := Open("/d", smallConfig(mem))
		require.NoError(t, err)
		s, err := st.Stream(1)
		require.NoError(t, err)
		return st, s
	}
	st, s := open()
	s.SetCoordinatorWatermark(7)
	_, err := s.AppendDurable(ctx, []byte("one"), AppendOptions{ExtID: 41})
	require.NoError(t, err)
	require.NoError(t, s.Seal(ctx))
	f, p, m := sealedWatermarks(t, mem, s, 1)
	require.Equal(t, [3]uint64{7, 7, 7}, [3]uint64{f, p, m})
	require.NoError(t, st.Close())

	st, s = open()
	require.Equal(t, uint64(7), st.Recovery()[0].CoordinatorWatermark)
	info := s.Info()
	require.Equal(t, uint64(7), info.CoordinatorWatermark)
	require.Equal(t, uint64(41), info.LastExtID)
	_, err = s.AppendDurable(ctx, []byte("two"), AppendOptions{ExtID: 42})
	require.NoError(t, err)
	require.Equal(t, uint64(42), s.Info().LastExtID)
	require.NoError(t, s.Seal(ctx))
	f, p, m = sealedWatermarks(t, mem, s, 2)
	require.Equal(t, [3]uint64{7, 7, 7}, [3]uint64{f, p, m}, "segment 2 after a restart")

	s.SetCoordinatorWatermark(9)
	_, err = s.AppendDurable(ctx, []byte("three"), AppendOptions{ExtID: 43})
	require.NoError(t, err)
	require.NoError(t, s.Seal(ctx))
	f, p, m = sealedWatermarks(t, mem, s, 3)
	require.Equal(t, [3]uint64{9, 9, 9}, [3]uint64{f, p, m})
	require.NoError(t, st.Close())
}

// TestWatermarkAfterCrash: after a power loss the stream resumes with the
// watermark of the newest durable seal; a value set after it is gone with
// the crash, as documented.
func TestWatermarkAfterCrash(t *testing.T) {
	ctx := context.Background()
	mem := vfs.NewMem()
	st, err := Open("/d", smallConfig(mem))
	require.NoError(t, err)
	s, err := st.Stream(1)
	require.NoError(t, err)
	for i, wm := range []uint64{3, 5} {
		s.SetCoordinatorWatermark(wm)
		_, err = s.AppendDurable(ctx, payloadFor(i, 64), AppendOptions{})
		require.NoError(t, err)
		require.NoError(t, s.Seal(ctx))
	}
	s.SetCoordinatorWatermark(11) // never sealed
	_, err = s.AppendDurable(ctx, payloadFor(9, 64), AppendOptions{})
	require.NoError(t, err)

	for seed := range uint64(8) {
		crashed := mem.CrashClone(vfs.CrashOptions{Rand: rand.New(rand.NewPCG(seed, 1)), KeepProb: 0.5, Tear: true})
		st2, err := Open("/d", smallConfig(crashed))
		require.NoError(t, err, "seed %d", seed)
		s2, err := st2.Stream(1)
		require.NoError(t, err)
		require.Equal(t, uint64(5), s2.CoordinatorWatermark(), "seed %d", seed)
		_, err = s2.AppendDurable(ctx, []byte("after"), AppendOptions{})
		require.NoError(t, err)
		require.NoError(t, s2.Seal(ctx))
		info := s2.SegmentList()
		f, p, m := sealedWatermarks(t, crashed, s2, info[len(info)-1].ID)
		require.Equal(t, [3]uint64{5, 5, 5}, [3]uint64{f, p, m}, "seed %d", seed)
		require.NoError(t, st2.Close())
	}
	require.NoError(t, st.Close())
}

// TestWatermarkFromColdSegment: when the newest sealed segment is only in a
// colder tier, its footer (described by the cold tier) gives the watermark.
func TestWatermarkFromColdSegment(t *testing.T) {
	ctx := context.Background()
	mem := vfs.NewMem()
	cold := &copyCold{fs: mem, copies: map[SegmentID][]byte{}}
	cfg := smallConfig(mem)
	cfg.Tiering = cold
	st, err := Open("/d", cfg)
	require.NoError(t, err)
	s, err := st.Stream(1)
	require.NoError(t, err)
	s.SetCoordinatorWatermark(21)
	_, err = s.AppendDurable(ctx, []byte("one"), AppendOptions{})
	require.NoError(t, err)
	require.NoError(t, s.Seal(ctx))
	_, err = s.AppendDurable(ctx, []byte("tail"), AppendOptions{})
	require.NoError(t, err)
	cold.save(t, s, 1)
	require.NoError(t, s.TierLog().Record(ctx, manifest.CompressionDone{Header: manifest.Header{SegmentID: 1}, CompressedBytes: 1}))
	require.NoError(t, s.Evict(1))
	require.NoError(t, st.Close())
	// Without the stub the segment comes back only through the manifest and
	// the cold tier's Describe.
	segs, err := mem.List("/d/streams/1/segments")
	require.NoError(t, err)
	for _, n := range segs {
		if len(n) > len(ColdSuffix) && n[len(n)-len(ColdSuffix):] == ColdSuffix {
			require.NoError(t, mem.Remove("/d/streams/1/segments/"+n))
		}
	}

	st, err = Open("/d", cfg)
	require.NoError(t, err)
	defer st.Close()
	s, err = st.Stream(1)
	require.NoError(t, err)
	info, _ := s.Segment(1)
	require.False(t, info.Resident)
	require.Equal(t, uint64(21), s.CoordinatorWatermark())
}
