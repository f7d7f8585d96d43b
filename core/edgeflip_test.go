package core

import (
	"errors"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/aof2/aof2/core/segment"
	"github.com/aof2/aof2/core/vfs"
	"github.com/aof2/aof2/internal/testscale"
)

// edge is a segment's header or footer: the bytes recovery decides on
// without reading records.
type edge struct {
	name string
	off  func(size int64) int64
	len  int
}

var edges = []edge{
	{"header", func(int64) int64 { return 0 }, segment.HeaderSize},
	{"footer", segment.DataEnd, segment.FooterSize},
}

// flipWorld is the appendFlush workload's files (sealed segments and a
// tail) and what it acknowledged.
func flipWorld(t *testing.T) (*vfs.MemFS, *oracle, []string) {
	base := vfs.NewMem()
	o, err := runShort(base, appendFlush, freeRunDeadline)
	require.NoError(t, err)
	dir := "/data/streams/1/segments"
	names, err := base.List(dir)
	require.NoError(t, err)
	var segs []string
	for _, n := range names {
		if _, ok := segment.ParseFileName(n); ok {
			segs = append(segs, filepath.Join(dir, n))
		}
	}
	require.GreaterOrEqual(t, len(segs), 3, "the workload seals segments: %v", names)
	return base, o, segs
}

// TestEdgeBitFlipAtReopen flips each bit of each segment's header and
// footer as the reopen reads it, once. The reopen may refuse the stream,
// but it must not act on a read it made once: when the fault has stopped
// every acknowledged record is there.
func TestEdgeBitFlipAtReopen(t *testing.T) {
	base, o, segs := flipWorld(t)
	runs := forEachEdgeBit(t, base, segs, func(path string, e edge, at int64, bit uint64) {
		mem := base.CrashClone(vfs.CrashOptions{})
		read := func(op vfs.Op) bool { return op.Path == path && op.Off == at && op.Len == e.len }
		w := vfs.Wrap(mem, vfs.FlipBitAt(read, bit))
		if st, err := Open("/data", shortConfig(w)); err == nil {
			if s, err := st.Stream(1); err == nil {
				_, _ = countRecords(s)
			}
			_ = st.Close()
		}
		if err := verifyRecovered(mem, o); err != nil {
			t.Fatalf("%s: %s bit %d flipped once at reopen: after the fault stopped: %v", filepath.Base(path), e.name, bit, err)
		}
	})
	t.Logf("%d reopens over %d segments", runs, len(segs))
}

// TestEdgeBitFlipOnDisk flips each bit of each segment's header and footer
// on disk. Recovery may refuse the stream or report the segment damaged,
// but it never returns records other than those appended, never drops an
// acknowledged one without saying so, and never makes the damage worse:
// with the bit put back (a copy restored), every acknowledged record is
// there.
func TestEdgeBitFlipOnDisk(t *testing.T) {
	base, o, segs := flipWorld(t)
	runs := forEachEdgeBit(t, base, segs, func(path string, e edge, at int64, bit uint64) {
		mem := base.CrashClone(vfs.CrashOptions{})
		at += int64(bit / 8)
		flipOnDisk(t, mem, path, at, bit%8)
		if err := readAfterDamage(mem, o); err != nil {
			t.Fatalf("%s: %s bit %d flipped on disk: %v", filepath.Base(path), e.name, bit, err)
		}
		flipOnDisk(t, mem, path, at, bit%8)
		if err := verifyRecovered(mem, o); err != nil {
			t.Fatalf("%s: %s bit %d flipped on disk, then put back: %v", filepath.Base(path), e.name, bit, err)
		}
	})
	t.Logf("%d damaged reopens over %d segments", runs, len(segs))
}

// forEachEdgeBit calls fn for every bit (at the stride AOF2_EDGE_BIT_EVERY
// sets: every 13th, every 29th under -short, 1 for all of them) of the
// header and footer of every segment in segs, with the offset of the
// header or footer; it returns how many calls it made.
func forEachEdgeBit(t *testing.T, fsys vfs.FS, segs []string, fn func(path string, e edge, at int64, bit uint64)) int {
	every := uint64(testscale.Stride("AOF2_EDGE_BIT_EVERY", 13, 29))
	runs := 0
	for _, path := range segs {
		size := segmentSize(t, fsys, path)
		for _, e := range edges {
			for bit := uint64(0); bit < uint64(e.len)*8; bit += every {
				runs++
				fn(path, e, e.off(size), bit)
			}
		}
	}
	return runs
}

// readAfterDamage opens a store with damage in it: whatever a reader gets
// is the appended sequence, and a shortfall of acknowledged records is
// reported (the stream refused, or a read error saying why), never silent.
func readAfterDamage(fsys vfs.FS, o *oracle) error {
	st, err := Open("/data", shortConfig(fsys))
	if err != nil {
		return nil
	}
	defer st.Close()
	s, err := st.Stream(1)
	if err != nil {
		return nil
	}
	err = o.check(s)
	var short *shortfallError
	if errors.As(err, &short) {
		return err
	}
	if err != nil && !errors.Is(err, ErrCorrupt) && !errors.Is(err, ErrDamaged) {
		return err
	}
	return nil
}

func segmentSize(t *testing.T, fsys vfs.FS, path string) int64 {
	fi, err := fsys.Stat(path)
	require.NoError(t, err)
	return fi.Size()
}

func flipOnDisk(t *testing.T, fsys vfs.FS, path string, off int64, bit uint64) {
	f, err := fsys.OpenReadWrite(path)
	require.NoError(t, err)
	defer f.Close()
	var b [1]byte
	_, err = f.ReadAt(b[:], off)
	require.NoError(t, err)
	b[0] ^= 1 << bit
	_, err = f.WriteAt(b[:], off)
	require.NoError(t, err)
	require.NoError(t, f.Sync())
}
