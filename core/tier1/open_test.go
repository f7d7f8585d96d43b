package tier1

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/aof2/aof2/core/types"
	"github.com/aof2/aof2/core/vfs"
)

// flipInFrame flips one bit in the middle of frame i of an artifact file.
func flipInFrame(t *testing.T, fsys vfs.FS, path string, i int64) {
	t.Helper()
	a := openFile(t, fsys, path)
	e, ok := a.table.EntryByID(i)
	require.True(t, ok)
	require.NoError(t, a.Close())
	f, err := fsys.OpenReadWrite(path)
	require.NoError(t, err)
	defer f.Close()
	off := int64(e.CompressedOffset) + int64(e.CompressedSize)/2
	var b [1]byte
	_, err = f.ReadAt(b[:], off)
	require.NoError(t, err)
	b[0] ^= 0x20
	_, err = f.WriteAt(b[:], off)
	require.NoError(t, err)
}

func TestRestartVerification(t *testing.T) {
	cases := []struct {
		name       string
		verify     VerifyMode
		frame      int64 // frame of segment 2's artifact to damage; -1 = the last
		mismatched bool  // whether Open catches it
	}{
		{"quick catches a damaged footer frame", VerifyQuick, -1, true},
		{"quick catches a damaged header frame", VerifyQuick, 0, true},
		{"full catches a damaged middle frame", VerifyFull, 2, true},
		{"quick leaves a middle frame to hydration", VerifyQuick, 2, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			fsys := vfs.NewMem()
			c, rep := openCache(t, Config{FS: fsys, Options: Options{FrameSize: 64 << 10}})
			require.Empty(t, rep.Verified)
			segs := compressN(t, c, fsys, 4)
			require.NoError(t, c.Close())

			frame := tc.frame
			if frame < 0 {
				frame = 15 // 1 MiB in 64 KiB frames
			}
			flipInFrame(t, fsys, c.Path(segs[1].key()), frame)
			stale := c.Path(types.SegmentKey{Stream: 1, Segment: 9}) + TempSuffix
			f, err := fsys.Create(stale)
			require.NoError(t, err)
			require.NoError(t, f.Close())
			foreign := filepath.Join(WarmDir("/data", 1), "notes.txt")
			f, err = fsys.Create(foreign)
			require.NoError(t, err)
			require.NoError(t, f.Close())

			exp := []Expected{segs[0].expected(), segs[1].expected(), segs[2].expected(), {Key: types.SegmentKey{Stream: 1, Segment: 7}, SegmentCRC: 1}}
			exp[0].Uploaded = true
			exp[2].SegmentCRC ^= 0xFF // the manifest says otherwise
			// segs[3] has no expectation: unknown.
			c2, rep := openCache(t, Config{FS: fsys, Expected: exp, Verify: tc.verify})

			require.Equal(t, []string{stale}, rep.TempRemoved)
			require.False(t, exists(t, fsys, stale))
			require.Equal(t, []types.SegmentKey{{Stream: 1, Segment: 7}}, rep.Missing)
			require.Len(t, rep.Unknown, 2)
			require.Equal(t, foreign, rep.Unknown[0].Path)
			require.Equal(t, segs[3].key(), rep.Unknown[1].Key)
			var mismatched []types.SegmentKey
			for _, p := range rep.Mismatched {
				mismatched = append(mismatched, p.Key)
				require.ErrorIs(t, p.Err, types.ErrCorrupt)
				require.True(t, exists(t, fsys, p.Path), "a mismatched artifact is reported, never deleted")
			}
			if tc.mismatched {
				require.Equal(t, []types.SegmentKey{segs[1].key(), segs[2].key()}, mismatched)
				require.Equal(t, []types.SegmentKey{segs[0].key()}, rep.Verified)
			} else {
				require.Equal(t, []types.SegmentKey{segs[2].key()}, mismatched)
				require.Equal(t, []types.SegmentKey{segs[0].key(), segs[1].key()}, rep.Verified)
				// Hydration verifies every byte and refuses it.
				_, err := c2.Hydrate(context.Background(), HydrateRequest{Expected: segs[1].expected(), Dest: "/data/h.seg"})
				require.ErrorIs(t, err, types.ErrCorrupt)
				require.False(t, exists(t, fsys, "/data/h.seg"))
			}
			info, ok := c2.Stat(segs[0].key())
			require.True(t, ok)
			require.True(t, info.Uploaded, "upload state comes from the expectation")
			require.True(t, exists(t, fsys, c2.Path(segs[3].key())), "an unknown artifact is reported, never deleted")

			// The caller learns what the unknown artifact is and adopts it.
			require.NoError(t, c2.Adopt(context.Background(), segs[3].expected()))
			require.True(t, c2.Contains(segs[3].key()))
			require.ErrorIs(t, c2.Adopt(context.Background(), exp[2]), ErrChecksumMismatch)
		})
	}
}

func TestOpenEmptyAndBadConfig(t *testing.T) {
	c, rep := openCache(t, Config{FS: vfs.NewMem()})
	require.Empty(t, rep.Verified)
	require.Zero(t, c.Stats().Artifacts)
	for _, cfg := range []Config{
		{FS: vfs.NewMem()},
		{FS: vfs.NewMem(), DataDir: "/d", Options: Options{FrameSize: MaxFrameSize + 1}},
		{FS: vfs.NewMem(), DataDir: "/d", Options: Options{Level: 9}},
		{FS: vfs.NewMem(), DataDir: "/d", MaxBytes: -1},
		{FS: vfs.NewMem(), DataDir: "/d", CompressWorkers: -2},
	} {
		_, _, err := Open(cfg)
		require.ErrorIs(t, err, types.ErrInvalidConfig)
	}
	l, err := ParseLevel("Better")
	require.NoError(t, err)
	require.Equal(t, LevelBetter, l)
	_, err = ParseLevel("max")
	require.ErrorIs(t, err, types.ErrInvalidConfig)
}
