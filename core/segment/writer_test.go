package segment

import (
	"bytes"
	"fmt"
	"path/filepath"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

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

// TestSealGivesBackTheUnusedRoom: on a real file system a sealed segment
// occupies about its records, not its capacity, and reads back unchanged.
func TestSealGivesBackTheUnusedRoom(t *testing.T) {
	for _, prep := range []Preparation{PrepareSmallPages, PrepareLargeFolios, PrepareFallocate} {
		for _, mode := range []WriteMode{WritePwrite, WriteMmap} {
			t.Run(fmt.Sprintf("%s/%d", prep, mode), func(t *testing.T) {
				dir := t.TempDir()
				const capacity = 1 << 20
				p, err := Prepare(vfs.OS, filepath.Join(dir, PrepName(1)), capacity, prep, mode)
				require.NoError(t, err)
				w, err := p.Activate(Header{StreamID: 1, SegmentID: 1})
				require.NoError(t, err)
				defer w.Close()
				payload := bytes.Repeat([]byte{'r'}, 1000)
				for i := range 10 {
					_, err := w.Append(payload, int64(i+1), 0)
					require.NoError(t, err)
				}
				allocated := func() int64 {
					var st unix.Stat_t
					require.NoError(t, unix.Stat(w.Path(), &st))
					return st.Blocks * 512
				}
				foot, err := w.Seal(SealParams{SealedAt: 1})
				require.NoError(t, err)
				var st unix.Stat_t
				require.NoError(t, unix.Stat(w.Path(), &st))
				require.Equal(t, int64(capacity), st.Size, "the size stays")
				require.LessOrEqual(t, allocated(), int64(32<<10), "about 10 KB of records and a footer")
				require.LessOrEqual(t, allocated(), SealedFootprint(capacity, foot.DurableBytes), "what the tier-0 budget charges covers the file")

				info, err := Inspect(vfs.OS, w.Path(), Name{SegmentID: 1}, 1)
				require.NoError(t, err)
				require.NotNil(t, info.Footer, "footer: %v", info.FooterErr)
				require.Equal(t, foot, *info.Footer)
				r, err := MapReadOnly(vfs.OS, w.Path())
				require.NoError(t, err)
				defer r.Close()
				require.NoError(t, VerifySealed(r.Bytes(), w.Path(), &foot))
				require.True(t, IsZero(r.Bytes()[foot.DurableBytes:DataEnd(capacity)]), "the hole reads as zeros")
			})
		}
	}
}

func TestSealedFootprint(t *testing.T) {
	const capacity = 1 << 20
	footerBlock := int64(capacity) - DataEnd(capacity)/holeAlign*holeAlign
	for _, tc := range []struct {
		name    string
		durable uint64
		want    int64
	}{
		{"empty", HeaderSize, holeAlign + footerBlock},
		{"one block of records", holeAlign, holeAlign + footerBlock},
		{"a block and a byte", holeAlign + 1, 2*holeAlign + footerBlock},
		{"records up to the footer's block", uint64(DataEnd(capacity) / holeAlign * holeAlign), capacity},
		{"full", uint64(DataEnd(capacity)), capacity},
	} {
		t.Run(tc.name, func(t *testing.T) {
			require.Equal(t, tc.want, SealedFootprint(capacity, tc.durable))
			lo, hi := SealedUnused(capacity, tc.durable)
			if hi > lo {
				require.Equal(t, tc.want, capacity-(hi-lo))
				require.Zero(t, lo%holeAlign)
				require.Zero(t, hi%holeAlign)
			}
		})
	}
}

// TestPunchHoleOverDataIsRefused: the in-memory file system holds the
// contract that a hole only ever replaces zeros.
func TestPunchHoleOverDataIsRefused(t *testing.T) {
	mem := vfs.NewMem()
	f, err := mem.Create("/f")
	require.NoError(t, err)
	defer f.Close()
	_, err = f.WriteAt([]byte{0, 0, 1, 0}, 0)
	require.NoError(t, err)
	require.NoError(t, f.PunchHole(0, 2))
	require.Error(t, f.PunchHole(1, 2))
	require.Error(t, f.PunchHole(3, 2), "past the end")
}

// TestStagedAppendAllocatesNothing: a record staged for pwrite costs no
// heap allocation (its header once escaped, one allocation per record).
func TestStagedAppendAllocatesNothing(t *testing.T) {
	mem := vfs.NewMem()
	require.NoError(t, vfs.MkdirAllSync(mem, "/s"))
	p, err := Prepare(mem, "/s/"+PrepName(1), MinFileCapacity, PrepareFallocate, WritePwrite)
	require.NoError(t, err)
	w, err := p.Activate(Header{StreamID: 1, SegmentID: 1})
	require.NoError(t, err)
	defer w.Close()
	payload := bytes.Repeat([]byte{'r'}, 200)
	_, err = w.Append(payload, 1, 0) // allocates the staging buffer
	require.NoError(t, err)
	ts := int64(1)
	allocs := testing.AllocsPerRun(50, func() {
		ts++
		if _, err := w.Append(payload, ts, 0); err != nil {
			t.Fatal(err)
		}
	})
	require.Zero(t, allocs)
}
