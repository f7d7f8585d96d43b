package tier1

import (
	"context"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/aof2/aof2/core/checksum"
	"github.com/aof2/aof2/core/types"
	"github.com/aof2/aof2/core/vfs"
)

// countOps returns how many file-system operations fn issues.
func countOps(t *testing.T, mem *vfs.MemFS, fn func(fsys vfs.FS) error) uint64 {
	t.Helper()
	w := vfs.Wrap(mem, nil)
	require.NoError(t, fn(w))
	return w.Ops()
}

// TestCrashDuringCompress "crashes" at every file-system operation of a
// compression (that operation and every later one fail, then the in-memory
// FS keeps only synced data plus a random share of the rest) and checks
// that, after a restart, the artifact is either absent or complete and
// verified, never partial, and no temporary file survives Open.
func TestCrashDuringCompress(t *testing.T) {
	base := vfs.NewMem()
	s := writeSegment(t, base, "/data", 1, 1, 1<<20, 300<<10, 1)
	dst := ArtifactPath("/data", s.key())
	opts := Options{FrameSize: 128 << 10}
	n := countOps(t, base.CrashClone(vfs.CrashOptions{Rand: rand.New(rand.NewPCG(0, 0))}), func(fsys vfs.FS) error {
		_, err := CompressSegment(context.Background(), fsys, s.source(), dst, opts)
		return err
	})
	require.Greater(t, n, uint64(10))
	for k := uint64(0); k <= n; k++ {
		for seed := uint64(0); seed < 3; seed++ {
			t.Run(fmt.Sprintf("op%d/seed%d", k, seed), func(t *testing.T) {
				r := rand.New(rand.NewPCG(k, seed))
				mem := base.CrashClone(vfs.CrashOptions{Rand: r}) // synced state only
				w := vfs.Wrap(mem, vfs.OnIndex(k, nil, vfs.FaultEIO, true))
				_, cerr := CompressSegment(context.Background(), w, s.source(), dst, opts)
				after := mem.CrashClone(vfs.CrashOptions{Rand: r, KeepProb: r.Float64(), Tear: seed == 2})
				c, rep, err := Open(Config{FS: after, DataDir: "/data", Expected: []Expected{s.expected()}, Verify: VerifyFull})
				require.NoError(t, err)
				defer c.Close()
				require.Empty(t, rep.Mismatched, "a partial artifact became visible (compress error: %v)", cerr)
				require.Empty(t, rep.Unknown)
				if cerr == nil {
					require.Equal(t, []types.SegmentKey{s.key()}, rep.Verified, "a completed compression must survive")
				} else {
					require.Len(t, append(rep.Verified, rep.Missing...), 1)
				}
				noTemps(t, after, filepath.Dir(dst))
			})
		}
	}
}

func TestFaultsDuringCompress(t *testing.T) {
	cases := []struct {
		name   string
		kind   vfs.OpKind
		fault  vfs.Fault
		nth    int
		target string // "tmp" or "dir"
		is     error
	}{
		{"ENOSPC on write", vfs.OpWrite, vfs.FaultNoSpace, 2, "tmp", types.ErrNoSpace},
		{"short write", vfs.OpWrite, vfs.FaultShortWrite, 1, "tmp", nil},
		{"EIO on fsync", vfs.OpSync, vfs.FaultEIO, 0, "tmp", nil},
		{"EIO on create", vfs.OpCreate, vfs.FaultEIO, 0, "tmp", nil},
		{"ENOSPC on create", vfs.OpCreate, vfs.FaultNoSpace, 0, "tmp", types.ErrNoSpace},
		{"EIO on rename", vfs.OpRename, vfs.FaultEIO, 0, "tmp", nil},
		{"EIO on directory fsync", vfs.OpSyncDir, vfs.FaultEIO, 0, "dir", nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			mem := vfs.NewMem()
			s := writeSegment(t, mem, "/data", 1, 1, 1<<20, 200<<10, 1)
			dst := ArtifactPath("/data", s.key())
			require.NoError(t, mem.MkdirAll(filepath.Dir(dst), 0o755))
			path := dst + TempSuffix
			if tc.target == "dir" {
				path = filepath.Dir(dst)
			}
			w := vfs.Wrap(mem, vfs.OnMatch(tc.nth, func(op vfs.Op) bool { return op.Kind == tc.kind && op.Path == path }, tc.fault, false))
			_, err := CompressSegment(context.Background(), w, s.source(), dst, Options{FrameSize: 64 << 10})
			require.Error(t, err)
			if tc.is != nil {
				require.ErrorIs(t, err, tc.is)
			}
			require.False(t, exists(t, mem, dst), "no artifact after a failed compression")
			noTemps(t, mem, filepath.Dir(dst))
			// The fault was transient: a retry succeeds.
			_, err = CompressSegment(context.Background(), w, s.source(), dst, Options{FrameSize: 64 << 10})
			require.NoError(t, err)
		})
	}
}

func TestFaultsDuringHydrate(t *testing.T) {
	cases := []struct {
		name  string
		kind  vfs.OpKind
		fault vfs.Fault
		onSrc bool // the fault hits the artifact, not the destination
		is    error
	}{
		{"ENOSPC on allocate", vfs.OpAllocate, vfs.FaultNoSpace, false, types.ErrNoSpace},
		{"ENOSPC on write", vfs.OpWrite, vfs.FaultNoSpace, false, types.ErrNoSpace},
		{"EIO on fsync", vfs.OpSync, vfs.FaultEIO, false, nil},
		{"EIO on rename", vfs.OpRename, vfs.FaultEIO, false, nil},
		{"EIO reading the artifact", vfs.OpRead, vfs.FaultEIO, true, nil},
		{"bit flip reading the artifact", vfs.OpRead, vfs.FaultBitFlip, true, ErrCorruptArtifact},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			mem := vfs.NewMem()
			s := writeSegment(t, mem, "/data", 1, 1, 1<<20, 300<<10, 1)
			art := ArtifactPath("/data", s.key())
			_, err := CompressSegment(context.Background(), mem, s.source(), art, Options{FrameSize: 64 << 10})
			require.NoError(t, err)
			dest := "/data/hydrated/x.seg"
			path := dest + TempSuffix
			if tc.onSrc {
				path = art
			}
			w := vfs.Wrap(mem, vfs.OnMatch(3, func(op vfs.Op) bool { return op.Kind == tc.kind && op.Path == path }, tc.fault, false))
			if tc.kind != vfs.OpRead {
				w.SetInjector(vfs.OnMatch(0, func(op vfs.Op) bool { return op.Kind == tc.kind && op.Path == path }, tc.fault, false))
			}
			f, err := w.Open(art)
			require.NoError(t, err)
			size, err := f.Size()
			require.NoError(t, err)
			a, err := OpenReaderAt(f, size, art)
			require.NoError(t, err)
			_, err = Hydrate(context.Background(), w, a, s.expected(), dest)
			require.Error(t, err)
			if tc.is != nil {
				require.ErrorIs(t, err, tc.is)
			}
			require.False(t, exists(t, mem, dest), "nothing at the destination after a failed hydration")
			noTemps(t, mem, filepath.Dir(dest))
			require.NoError(t, f.Close())
		})
	}
}

// TestCrashDuringHydrate crashes at every operation of a hydration: after
// the crash the destination is absent or a complete, verified segment.
func TestCrashDuringHydrate(t *testing.T) {
	base := vfs.NewMem()
	s := writeSegment(t, base, "/data", 1, 1, 1<<20, 300<<10, 1)
	art := ArtifactPath("/data", s.key())
	_, err := CompressSegment(context.Background(), base, s.source(), art, Options{FrameSize: 128 << 10})
	require.NoError(t, err)
	dest := "/data/streams/1/segments/rehydrated.seg"
	hydrate := func(fsys vfs.FS) error {
		f, err := fsys.Open(art)
		if err != nil {
			return err
		}
		defer f.Close()
		size, err := f.Size()
		if err != nil {
			return err
		}
		a, err := OpenReaderAt(f, size, art)
		if err != nil {
			return err
		}
		_, err = Hydrate(context.Background(), fsys, a, s.expected(), dest)
		return err
	}
	n := countOps(t, base.CrashClone(vfs.CrashOptions{Rand: rand.New(rand.NewPCG(0, 0))}), hydrate)
	for k := uint64(0); k <= n; k++ {
		r := rand.New(rand.NewPCG(k, 7))
		mem := base.CrashClone(vfs.CrashOptions{Rand: r})
		herr := hydrate(vfs.Wrap(mem, vfs.OnIndex(k, nil, vfs.FaultEIO, true)))
		after := mem.CrashClone(vfs.CrashOptions{Rand: r, KeepProb: r.Float64()})
		if !exists(t, after, dest) {
			require.Error(t, herr, "op %d: a successful hydration must survive a crash", k)
			continue
		}
		b := readAll(t, after, dest)
		require.Len(t, b, 1<<20, "op %d", k)
		require.Equal(t, s.foot.SegmentCRC, checksum.Sum64(b[:s.foot.DurableBytes]), "op %d: partial segment visible", k)
	}
}
