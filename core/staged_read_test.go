package core

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/aof2/aof2/core/segment"
	"github.com/aof2/aof2/core/vfs"
)

// TestReaderAtAStagedOrdinal: records appended and still staged in the
// pwrite buffer (no sync yet) read back from a reader opened at any of
// their ordinals, as from one opened at their ids: opening pushes the
// staged bytes, never reports them corrupt.
func TestReaderAtAStagedOrdinal(t *testing.T) {
	st, err := Open("/data", Config{FS: vfs.NewMem(), SegmentSize: segment.MinCapacity, Sync: SyncNone})
	require.NoError(t, err)
	defer st.Close()
	s, err := st.Stream(1)
	require.NoError(t, err)
	// Each round stages five more records and opens a reader on one of
	// them first (the first read of any reader pushes what is staged).
	for round := range uint64(5) {
		for i := range uint64(5) {
			_, err := s.Append(fmt.Appendf(nil, "r%d", 5*round+i), AppendOptions{})
			require.NoError(t, err)
		}
		o := 5*round + round // a different place in each round's records
		r, err := s.NewReader(AtOrdinal(o))
		require.NoError(t, err, "ordinal %d", o)
		rec, err := r.Next()
		require.NoError(t, err, "ordinal %d", o)
		require.Equal(t, o, rec.Ordinal)
		require.Equal(t, fmt.Sprintf("r%d", o), string(rec.Payload))
		r.Close()
	}
}
