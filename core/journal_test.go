package core

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/aof2/aof2/core/manifest"
	"github.com/aof2/aof2/core/vfs"
)

// TestManifestFollowsSegments: every activation and seal reaches the
// stream's manifest log with the footer's facts, and a manifest that lost
// records (here: all of them) is brought up to date from the segment files
// at the next open.
func TestManifestFollowsSegments(t *testing.T) {
	ctx := context.Background()
	mem := vfs.NewMem()
	st, err := Open("/d", smallConfig(mem))
	require.NoError(t, err)
	s, err := st.Stream(5)
	require.NoError(t, err)
	for i := range 3 {
		for range 10 + i {
			_, err := s.AppendDurable(ctx, []byte("payload"), AppendOptions{ExtID: uint64(i)})
			require.NoError(t, err)
		}
		require.NoError(t, s.Seal(ctx))
	}
	_, err = s.AppendDurable(ctx, []byte("in the open tail"), AppendOptions{})
	require.NoError(t, err)
	facts, err := s.Segments(ctx)
	require.NoError(t, err)
	require.Len(t, facts, 4)
	require.NoError(t, st.Close())

	check := func() {
		t.Helper()
		log, err := manifest.Open(ctx, mem, "/d/streams/5", 5, manifest.Options{RotationPeriod: -1})
		require.NoError(t, err)
		defer log.Close()
		for _, f := range facts {
			ms, ok := log.Segment(f.SegmentID)
			require.True(t, ok, "segment %d in the manifest", f.SegmentID)
			require.Equal(t, f.BaseOffset, ms.BaseOffset)
			require.Equal(t, f.Sealed, ms.Sealed, "segment %d", f.SegmentID)
			if f.Sealed {
				require.Equal(t, f.DurableBytes, ms.DurableBytes)
				require.Equal(t, manifest.Hex64(f.SegmentCRC64), ms.SegmentCRC64)
				require.Equal(t, f.ExtID, ms.ExtID)
			}
		}
	}
	check()

	for _, dir := range []string{"/d/streams/5/manifest", "/d/streams/5/warm"} {
		names, err := mem.List(dir)
		require.NoError(t, err)
		for _, n := range names {
			require.NoError(t, mem.Remove(dir+"/"+n))
		}
	}
	st, err = Open("/d", smallConfig(mem))
	require.NoError(t, err)
	rep := st.Recovery()
	require.Len(t, rep, 1)
	require.Equal(t, 7, rep[0].Manifest.Added, "4 SegmentOpened + 3 SealSegment re-derived from the files")
	require.NoError(t, st.Close())
	check()
}
