package core

import (
	"context"
	"math/rand/v2"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/aof2/aof2/core/segment"
	"github.com/aof2/aof2/core/vfs"
)

// TestDroppedTailStaysDroppedAcrossACrash: a power loss took the last
// record of segment 1 (never synced) while segment 2's header, written at
// the rollover, survived. Recovery removes segment 2 (it can hold nothing
// acknowledged) and then seals segment 1, whose reserved successor id asks
// for it. A second power loss right after that seal must not bring segment
// 2 back beside the sealed segment 1: the two no longer line up, and the
// next recovery could not tell that from lost records (the stream would be
// broken). The removal is made durable before the seal.
func TestDroppedTailStaysDroppedAcrossACrash(t *testing.T) {
	ctx := context.Background()
	mem := vfs.NewMem()
	// Segment 1's seal never reaches the disk: its syncs fail once the
	// first eleven records are durable (its file keeps the .seg.prep name
	// it was opened with).
	var sealFails atomic.Bool
	fsys := vfs.Wrap(mem, vfs.InjectorFunc(func(op vfs.Op) vfs.Fault {
		if sealFails.Load() && (op.Kind == vfs.OpSync || op.Kind == vfs.OpMsync) && strings.Contains(op.Path, "/00000000000000000001") {
			return vfs.FaultEIO
		}
		return vfs.NoFault
	}))
	cfg := Config{FS: fsys, Sync: SyncNone, WriteMode: segment.WritePwrite, SegmentSize: segment.MinCapacity,
		InitialSegmentSize: 64 << 10, MaxUnflushedBytes: -1}
	st, err := Open("/d", cfg)
	require.NoError(t, err)
	s, err := st.Stream(1)
	require.NoError(t, err)
	for i := range 11 {
		_, err := s.Append(payloadFor(i, 1000), AppendOptions{})
		require.NoError(t, err)
	}
	require.NoError(t, s.FlushAll(ctx))
	sealFails.Store(true)
	_, err = s.Append(payloadFor(11, 1000), AppendOptions{}) // never synced
	require.NoError(t, err)
	big, err := s.AppendCtx(ctx, payloadFor(12, 60<<10), AppendOptions{}) // rolls over to segment 2
	require.NoError(t, err)
	require.Equal(t, SegmentID(2), big.Segment())
	seg2 := tailPath(t, s)
	f, err := mem.OpenReadWrite(seg2) // segment 2's header reached the disk; its record did not matter
	require.NoError(t, err)
	require.NoError(t, f.Sync())
	require.NoError(t, f.Close())
	require.NoError(t, mem.SyncDir(filepath.Dir(seg2)))
	disk := mem.CrashClone(vfs.CrashOptions{Rand: rand.New(rand.NewPCG(1, 2))}) // nothing unsynced survives
	_ = st.Close()
	b, err := vfs.ReadFile(disk, seg2)
	require.NoError(t, err)
	h, err := segment.DecodeHeader(b)
	require.NoError(t, err)
	require.Equal(t, uint64(12), h.BaseRecord, "segment 2 starts after the record the crash took")

	// Recovery, cut by a second power loss once segment 2 is removed and
	// segment 1's seal is durable (at the first operation after the sync
	// that follows its footer's write).
	var removed, wrote, synced bool
	var second *vfs.MemFS
	seg1 := filepath.Join(filepath.Dir(seg2), "00000000000000000001_")
	w := vfs.Wrap(disk, vfs.InjectorFunc(func(op vfs.Op) vfs.Fault {
		switch {
		case second != nil:
		case synced:
			second = disk.CrashClone(vfs.CrashOptions{Rand: rand.New(rand.NewPCG(3, 4))})
		case (op.Kind == vfs.OpRemove || op.Kind == vfs.OpRename) && op.Path == seg2:
			removed = true
		case removed && op.Kind == vfs.OpWrite && strings.HasPrefix(op.Path, seg1):
			wrote = true
		case wrote && op.Kind == vfs.OpSync && strings.HasPrefix(op.Path, seg1):
			synced = true
		}
		return vfs.NoFault
	}))
	cfg.FS = w
	names, _ := disk.List(filepath.Dir(seg2))
	t.Logf("after the first power loss: %v", names)
	st, err = Open("/d", cfg)
	require.NoError(t, err)
	require.NoError(t, st.Close())
	require.True(t, removed, "recovery removed segment 2 or set it aside")
	require.NotNil(t, second, "recovery sealed segment 1 after the removal")

	cfg.FS = second
	st, err = Open("/d", cfg)
	require.NoError(t, err)
	defer st.Close()
	require.Empty(t, st.Broken())
	s, err = st.Lookup(1)
	require.NoError(t, err)
	require.Equal(t, 11, len(readEvery(t, s)), "the 11 synced records")
	id, err := s.AppendDurable(ctx, []byte("after"), AppendOptions{})
	require.NoError(t, err)
	require.Greater(t, id.Segment(), SegmentID(2), "no id handed out before the crash is given again")
}
