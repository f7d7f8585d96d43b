package segment

import (
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/aof2/aof2/core/vfs"
)

// TestOpenTailSearchesPastTheRecordsUnlessClosedCleanly: after a clean
// close at the records' end the rest of the segment is not searched (the
// open costs the bytes written); with any other proof it is, and stray
// bytes past the records are found and zeroed.
func TestOpenTailSearchesPastTheRecordsUnlessClosedCleanly(t *testing.T) {
	for _, tc := range []struct {
		name      string
		proof     func(end int64) TailProof
		wantDirty bool
	}{
		{"clean close at the records' end", func(end int64) TailProof { return TailProof{Durable: end, Clean: true} }, false},
		{"clean close elsewhere", func(end int64) TailProof { return TailProof{Durable: end - RecordSpan(3), Clean: true} }, true},
		{"unclean", func(end int64) TailProof { return TailProof{Durable: end} }, true},
		{"no proof", func(int64) TailProof { return TailProof{Durable: -1} }, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			mem := vfs.NewMem()
			require.NoError(t, vfs.MkdirAllSync(mem, "/s"))
			p, err := Prepare(mem, "/s/"+PrepName(1), MinFileCapacity, PrepareFallocate, WritePwrite)
			require.NoError(t, err)
			h := Header{StreamID: 1, SegmentID: 1, CreatedAt: 7}
			w, err := p.Activate(h)
			require.NoError(t, err)
			for _, r := range []string{"one", "two", "six"} {
				_, err = w.Append([]byte(r), 1, 0)
				require.NoError(t, err)
			}
			require.NoError(t, w.Push())
			require.NoError(t, w.SyncTo(w.End()))
			end, path := w.End(), w.Path()
			require.NoError(t, w.Close())

			// Stray bytes far past the records, where no torn write reaches.
			f, err := mem.OpenReadWrite(path)
			require.NoError(t, err)
			stray := DataEnd(MinFileCapacity) - 4096
			_, err = f.WriteAt([]byte{0xAB}, stray)
			require.NoError(t, err)
			require.NoError(t, f.Close())

			name, ok := ParseFileName(filepath.Base(path))
			require.True(t, ok)
			info, err := Inspect(mem, path, name, 1)
			require.NoError(t, err)
			w, ts, _, err := OpenTail(mem, info, WritePwrite, tc.proof(end))
			require.NoError(t, err)
			defer w.Close()
			require.Equal(t, end, ts.End)
			require.Equal(t, uint64(3), ts.Count)
			if !tc.wantDirty {
				require.Equal(t, end, ts.DirtyEnd, "not searched")
				return
			}
			require.Equal(t, stray+1, ts.DirtyEnd)
			b := make([]byte, 1)
			g, err := mem.Open(path)
			require.NoError(t, err)
			defer g.Close()
			_, err = g.ReadAt(b, stray)
			require.NoError(t, err)
			require.Zero(t, b[0], "zeroed before appends go on")
		})
	}
}
