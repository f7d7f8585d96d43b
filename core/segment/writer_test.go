package segment

import (
	"bytes"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/aof2/aof2/core/vfs"
)

// TestPwriteBufferFollowsUse: an idle or sealed segment holds no staging
// buffer; a busy one grows it to what its records need, up to 1 MiB.
func TestPwriteBufferFollowsUse(t *testing.T) {
	mem := vfs.NewMem()
	require.NoError(t, vfs.MkdirAllSync(mem, "/s"))
	p, err := Prepare(mem, "/s/"+PrepName(1), MinFileCapacity, PrepareFallocate, WritePwrite)
	require.NoError(t, err)
	w, err := p.Activate(Header{StreamID: 1, SegmentID: 1})
	require.NoError(t, err)
	defer w.Close()
	require.Nil(t, w.buf, "no buffer before the first append")

	_, err = w.Append([]byte("one"), 1, 0)
	require.NoError(t, err)
	require.Equal(t, minPwriteBuffer, cap(w.buf), "a small record takes the smallest buffer")
	big := bytes.Repeat([]byte{'b'}, 10_000)
	_, err = w.Append(big, 2, 0)
	require.NoError(t, err)
	require.GreaterOrEqual(t, cap(w.buf), int(RecordSpan(3)+RecordSpan(len(big))))
	require.LessOrEqual(t, cap(w.buf), pwriteBuffer)

	w.ReleaseBuffer()
	require.NotNil(t, w.buf, "staged bytes keep the buffer")
	require.NoError(t, w.Push())
	w.ReleaseBuffer()
	require.Nil(t, w.buf, "an idle segment drops its buffer")
	require.Equal(t, w.End(), w.Visible(), "everything pushed")

	_, err = w.Append([]byte("three"), 3, 0)
	require.NoError(t, err)
	f, err := w.Seal(SealParams{SealedAt: 4})
	require.NoError(t, err)
	require.Nil(t, w.buf, "a sealed segment holds no buffer")
	require.Equal(t, uint64(3), f.RecordCount)
	require.NoError(t, VerifySealed(w.Bytes(), w.Path(), &f), "readers still see the records")
}

// TestSealClosesTheDescriptor: a sealed segment keeps its mapping for
// readers but not its file descriptor.
func TestSealClosesTheDescriptor(t *testing.T) {
	var mu sync.Mutex
	closes := 0
	fsys := vfs.Wrap(vfs.NewMem(), vfs.InjectorFunc(func(op vfs.Op) vfs.Fault {
		mu.Lock()
		defer mu.Unlock()
		if op.Kind == vfs.OpClose {
			closes++
		}
		return vfs.NoFault
	}))
	require.NoError(t, vfs.MkdirAllSync(fsys, "/s"))
	p, err := Prepare(fsys, "/s/"+PrepName(1), MinFileCapacity, PrepareFallocate, WritePwrite)
	require.NoError(t, err)
	w, err := p.Activate(Header{StreamID: 1, SegmentID: 1})
	require.NoError(t, err)
	_, err = w.Append([]byte("x"), 1, 0)
	require.NoError(t, err)
	mu.Lock()
	before := closes
	mu.Unlock()
	_, err = w.Seal(SealParams{})
	require.NoError(t, err)
	mu.Lock()
	require.Equal(t, before+1, closes, "the seal closed the file")
	mu.Unlock()
	require.NoError(t, w.Close(), "closing the sealed writer unmaps it only")
	mu.Lock()
	require.Equal(t, before+1, closes)
	mu.Unlock()
}
