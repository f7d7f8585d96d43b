package segment

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/aof2/aof2/core/vfs"
)

// TestMarkSlots: writes alternate between the two slots, the newest valid
// one wins, and a damaged newest slot leaves the older one.
func TestMarkSlots(t *testing.T) {
	mem := vfs.NewMem()
	require.NoError(t, mem.MkdirAll("/s", 0o755))
	path := "/s/" + MarkFile
	m, err := ReadMark(mem, path)
	require.NoError(t, err)
	require.Nil(t, m, "no file: nothing proven")

	w, err := OpenMarkWriter(mem, path, nil)
	require.NoError(t, err)
	_, err = mem.Stat(path)
	require.True(t, vfs.IsNotExist(err), "the file comes with the first mark")
	for i := range uint64(3) {
		require.NoError(t, w.Write(Mark{SegmentID: 2, DurableBytes: HeaderSize + 32*i, Records: i}))
	}
	require.NoError(t, w.Close())
	m, err = ReadMark(mem, path)
	require.NoError(t, err)
	require.Equal(t, &Mark{Seq: 3, SegmentID: 2, DurableBytes: HeaderSize + 64, Records: 2}, m)

	// Damage the newest slot (seq 3 is in slot 1): the older one is read.
	f, err := mem.OpenReadWrite(path)
	require.NoError(t, err)
	_, err = f.WriteAt([]byte{0xff}, MarkSlotSize+30)
	require.NoError(t, err)
	require.NoError(t, f.Close())
	m, err = ReadMark(mem, path)
	require.NoError(t, err)
	require.Equal(t, uint64(2), m.Seq)

	// A writer reopened after a mark continues its sequence.
	w, err = OpenMarkWriter(mem, path, m)
	require.NoError(t, err)
	require.NoError(t, w.Write(Mark{Flags: MarkClean, SegmentID: 3, DurableBytes: HeaderSize}))
	require.NoError(t, w.Close())
	m, err = ReadMark(mem, path)
	require.NoError(t, err)
	require.Equal(t, uint64(3), m.Seq)
	require.True(t, m.Clean())
}
