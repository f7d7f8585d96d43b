package vfs

import (
	"errors"
	"io"
	"math/rand/v2"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/stretchr/testify/require"
)

// fsUnderTest returns each implementation rooted at a fresh directory.
func fsUnderTest(t *testing.T) map[string]func() (FS, string) {
	return map[string]func() (FS, string){
		"os":  func() (FS, string) { return OS, t.TempDir() },
		"mem": func() (FS, string) { return NewMem(), "/data" },
	}
}

func TestBehaviour(t *testing.T) {
	for name, mk := range fsUnderTest(t) {
		t.Run(name, func(t *testing.T) {
			fsys, root := mk()
			dir := filepath.Join(root, "a", "b")
			require.NoError(t, fsys.MkdirAll(dir, 0o755))

			p := filepath.Join(dir, "f")
			f, err := fsys.Create(p)
			require.NoError(t, err)
			_, err = fsys.Create(p)
			require.True(t, IsExist(err), "second create must report existence: %v", err)

			_, err = f.WriteAt([]byte("hello"), 3)
			require.NoError(t, err)
			size, err := f.Size()
			require.NoError(t, err)
			require.EqualValues(t, 8, size)
			buf := make([]byte, 8)
			_, err = f.ReadAt(buf, 0)
			require.NoError(t, err)
			require.Equal(t, []byte("\x00\x00\x00hello"), buf)
			_, err = f.ReadAt(make([]byte, 4), 6)
			require.ErrorIs(t, err, io.EOF)

			require.NoError(t, f.Allocate(0, 3*BlockSize))
			size, _ = f.Size()
			require.EqualValues(t, 3*BlockSize, size)
			require.NoError(t, f.Datasync())
			require.NoError(t, f.Sync())

			r, err := f.Map(0, 3*BlockSize, true)
			require.NoError(t, err)
			_, err = r.WriteAt([]byte("mapped"), BlockSize+1)
			require.NoError(t, err)
			require.NoError(t, r.Populate())
			require.NoError(t, r.Sync(BlockSize+1, 6))
			got := make([]byte, 6)
			_, err = f.ReadAt(got, BlockSize+1)
			require.NoError(t, err)
			require.Equal(t, "mapped", string(got), "stores through a map are visible to reads")
			_, err = f.WriteAt([]byte("W"), 2*BlockSize)
			require.NoError(t, err)
			require.Equal(t, byte('W'), r.Bytes()[2*BlockSize], "writes are visible through a map")
			require.NoError(t, r.Close())
			require.ErrorIs(t, r.Close(), ErrClosed)
			require.NoError(t, f.Close())

			ro, err := fsys.Open(p)
			require.NoError(t, err)
			_, err = ro.WriteAt([]byte("x"), 0)
			require.Error(t, err)
			_, err = ro.Map(0, BlockSize, true)
			require.Error(t, err)
			rr, err := ro.Map(0, 2*BlockSize, false)
			require.NoError(t, err)
			require.Equal(t, "mapped", string(rr.Bytes()[BlockSize+1:BlockSize+7]))
			_, err = rr.WriteAt([]byte("x"), 0)
			require.ErrorIs(t, err, ErrReadOnly)
			require.NoError(t, rr.Close())
			require.NoError(t, ro.Close())

			q := filepath.Join(dir, "g")
			require.NoError(t, WriteFileAtomic(fsys, q, []byte("v1")))
			require.NoError(t, WriteFileAtomic(fsys, q, []byte("v2")))
			data, err := ReadFile(fsys, q)
			require.NoError(t, err)
			require.Equal(t, "v2", string(data))

			names, err := fsys.List(dir)
			require.NoError(t, err)
			require.Equal(t, []string{"f", "g"}, names)
			require.NoError(t, fsys.Rename(q, filepath.Join(dir, "h")))
			names, _ = fsys.List(dir)
			require.Equal(t, []string{"f", "h"}, names)
			require.NoError(t, fsys.Remove(filepath.Join(dir, "h")))
			require.True(t, IsNotExist(fsys.Remove(filepath.Join(dir, "h"))))
			_, err = fsys.Open(filepath.Join(dir, "missing"))
			require.True(t, IsNotExist(err))
			_, err = fsys.Stat(filepath.Join(dir, "missing"))
			require.True(t, IsNotExist(err))
			st, err := fsys.Stat(p)
			require.NoError(t, err)
			require.EqualValues(t, 3*BlockSize, st.Size())
			require.NoError(t, fsys.SyncDir(dir))
		})
	}
}

func TestCrashKeepsSyncedDropsUnsynced(t *testing.T) {
	m := NewMem()
	require.NoError(t, m.MkdirAll("/d", 0o755))
	require.NoError(t, m.SyncDir("/"))
	f, err := m.Create("/d/f")
	require.NoError(t, err)
	_, err = f.WriteAt([]byte("durable"), 0)
	require.NoError(t, err)
	require.NoError(t, f.Sync())
	require.NoError(t, m.SyncDir("/d"))
	_, err = f.WriteAt([]byte("LOST"), BlockSize)
	require.NoError(t, err)
	g, err := m.Create("/d/unsynced-entry")
	require.NoError(t, err)
	require.NoError(t, g.Sync())

	c := m.CrashClone(CrashOptions{Rand: rand.New(rand.NewPCG(1, 2))})
	data, err := ReadFile(c, "/d/f")
	require.NoError(t, err)
	require.Equal(t, "durable", string(data), "unsynced growth is gone, synced bytes stay")
	_, err = c.Stat("/d/unsynced-entry")
	require.True(t, IsNotExist(err), "an entry whose directory was not synced is lost")

	all := m.CrashClone(CrashOptions{Rand: rand.New(rand.NewPCG(1, 2)), KeepProb: 1})
	data, err = ReadFile(all, "/d/f")
	require.NoError(t, err)
	require.Equal(t, "LOST", string(data[BlockSize:BlockSize+4]), "KeepProb 1 keeps unsynced data")
	_, err = all.Stat("/d/unsynced-entry")
	require.NoError(t, err)
}

func TestCrashRenameIsAtomic(t *testing.T) {
	for seed := range uint64(200) {
		m := NewMem()
		require.NoError(t, WriteFileAtomic(m, "/p", []byte("old")))
		require.NoError(t, m.SyncDir("/"))
		f, err := m.Create("/p.tmp")
		require.NoError(t, err)
		_, _ = f.WriteAt([]byte("new"), 0)
		require.NoError(t, f.Sync())
		require.NoError(t, m.Rename("/p.tmp", "/p"))
		c := m.CrashClone(CrashOptions{Rand: rand.New(rand.NewPCG(seed, 7)), KeepProb: 0.5})
		data, err := ReadFile(c, "/p")
		require.NoError(t, err, "seed %d", seed)
		require.Contains(t, []string{"old", "new"}, string(data), "seed %d", seed)
	}
}

func TestCrashMsyncRangeAndTear(t *testing.T) {
	m := NewMem()
	f, err := m.Create("/seg")
	require.NoError(t, err)
	require.NoError(t, m.SyncDir("/"))
	require.NoError(t, f.Allocate(0, 4*BlockSize))
	r, err := f.Map(0, 4*BlockSize, true)
	require.NoError(t, err)
	block := func(c byte) []byte {
		b := make([]byte, BlockSize)
		for i := range b {
			b[i] = c
		}
		return b
	}
	_, _ = r.WriteAt(block('a'), 0)
	_, _ = r.WriteAt(block('b'), BlockSize)
	require.NoError(t, r.Sync(0, BlockSize))
	_, _ = r.WriteAt(block('c'), 2*BlockSize)

	c := m.CrashClone(CrashOptions{Rand: rand.New(rand.NewPCG(3, 4))})
	data, err := ReadFile(c, "/seg")
	require.NoError(t, err)
	require.Len(t, data, 4*BlockSize, "msync makes the allocated size durable")
	require.Equal(t, block('a'), data[:BlockSize])
	require.Equal(t, make([]byte, BlockSize), data[BlockSize:2*BlockSize])

	torn := false
	for seed := range uint64(50) {
		c := m.CrashClone(CrashOptions{Rand: rand.New(rand.NewPCG(seed, 9)), KeepProb: 0.5, Tear: true})
		data, err := ReadFile(c, "/seg")
		require.NoError(t, err)
		require.Equal(t, block('a'), data[:BlockSize], "synced blocks never tear")
		for _, b := range [][]byte{data[BlockSize : 2*BlockSize], data[2*BlockSize : 3*BlockSize]} {
			if b[0] != b[BlockSize-1] || b[0] != b[BlockSize/2] {
				torn = true
			}
		}
	}
	require.True(t, torn, "some seeds must produce a torn block")
}

func TestInjectFaults(t *testing.T) {
	w := Wrap(NewMem(), nil)
	f, err := w.Create("/f")
	require.NoError(t, err)
	_, err = f.WriteAt([]byte("0123456789"), 0)
	require.NoError(t, err)

	w.SetInjector(OnMatch(0, Kinds(OpSync), FaultEIO, false))
	require.ErrorIs(t, f.Sync(), syscall.EIO)
	require.NoError(t, f.Sync(), "a one-shot fault fires once")

	w.SetInjector(OnMatch(0, Kinds(OpWrite), FaultShortWrite, false))
	n, err := f.WriteAt([]byte("abcdef"), 0)
	require.ErrorIs(t, err, syscall.EIO)
	require.Equal(t, 3, n)

	w.SetInjector(OnMatch(0, Kinds(OpAllocate), FaultNoSpace, true))
	require.ErrorIs(t, f.Allocate(0, 1<<20), syscall.ENOSPC)
	require.ErrorIs(t, f.Allocate(0, 1<<20), syscall.ENOSPC, "persistent faults keep firing")

	w.SetInjector(OnMatch(0, Kinds(OpRead), FaultBitFlip, false))
	buf := make([]byte, 10)
	_, err = f.ReadAt(buf, 0)
	require.NoError(t, err)
	require.NotEqual(t, "abc3456789", string(buf), "one bit differs")
	_, err = f.ReadAt(buf, 0)
	require.NoError(t, err)
	require.Equal(t, "abc3456789", string(buf))

	w.SetInjector(OnMatch(0, Kinds(OpRename), FaultEIO, false))
	require.Error(t, w.Rename("/f", "/g"))
	start := w.Ops()
	w.SetInjector(OnIndex(start+1, nil, FaultEIO, false))
	require.NoError(t, w.SyncDir("/"))
	err = w.SyncDir("/")
	require.ErrorIs(t, err, syscall.EIO)
	var pe interface{ Unwrap() error }
	require.True(t, errors.As(err, &pe))
}

// TestMkdirAllSyncSeveral: directories created side by side cost one sync
// of their common parent, and every one of them survives a crash.
func TestMkdirAllSyncSeveral(t *testing.T) {
	m := NewMem()
	require.NoError(t, MkdirAllSync(m, "/data"))
	var syncs []string
	fsys := Wrap(m, InjectorFunc(func(op Op) Fault {
		if op.Kind == OpSyncDir {
			syncs = append(syncs, op.Path)
		}
		return NoFault
	}))
	dirs := []string{"/data/s/7/segments", "/data/s/7/manifest", "/data/s/7/warm", "/data/s/7/segments"}
	require.NoError(t, MkdirAllSync(fsys, dirs...))
	require.Equal(t, []string{"/data", "/data/s", "/data/s/7"}, syncs, "one sync per parent, top down")

	c := m.CrashClone(CrashOptions{Rand: rand.New(rand.NewPCG(5, 6))})
	for _, d := range dirs {
		_, err := c.Stat(d)
		require.NoError(t, err, "%s survives a crash", d)
	}
	syncs = nil
	require.NoError(t, MkdirAllSync(fsys, dirs...))
	require.Empty(t, syncs, "existing directories cost no sync")
}
