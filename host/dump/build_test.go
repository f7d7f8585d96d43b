package dump

import (
	"context"
	"encoding/binary"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/aof2/aof2/core"
	"github.com/aof2/aof2/core/checksum"
	"github.com/aof2/aof2/core/segment"
)

// TestOfflineBaseAndRecords: the offline dump shows each segment's first
// ordinal and record count as the online one does, read from the sealed
// segment's footer, a cold stub, or (active segment) its records.
func TestOfflineBaseAndRecords(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	st, err := core.Open(dir, core.Config{SegmentSize: segment.MinCapacity})
	require.NoError(t, err)
	s, err := st.Stream(5)
	require.NoError(t, err)
	counts := []int{3, 4, 2} // two sealed segments, then the active one
	for i, n := range counts {
		for range n {
			_, err := s.AppendDurable(ctx, []byte("payload"), core.AppendOptions{})
			require.NoError(t, err)
		}
		if i < len(counts)-1 {
			require.NoError(t, s.Seal(ctx))
		}
	}
	online := Live(st, nil)
	require.NoError(t, st.Close())
	require.Len(t, online.Streams[0].Segments, 3)

	// Segment 1 as an eviction leaves it: its cold stub, no file.
	segDir := filepath.Join(dir, "streams", "5", "segments")
	names, err := os.ReadDir(segDir)
	require.NoError(t, err)
	var first string
	for _, e := range names {
		if strings.HasPrefix(e.Name(), "00000000000000000001_") && strings.HasSuffix(e.Name(), ".seg") {
			first = filepath.Join(segDir, e.Name())
		}
	}
	require.NotEmpty(t, first)
	b, err := os.ReadFile(first)
	require.NoError(t, err)
	stub := append(append([]byte{}, b[:segment.HeaderSize]...), b[segment.DataEnd(int64(len(b))):]...)
	stub = binary.LittleEndian.AppendUint64(stub, checksum.Sum64(stub))
	require.NoError(t, os.WriteFile(first+coldSuffix, stub, 0o644))
	require.NoError(t, os.Remove(first))

	off, err := FromDataDir(ctx, nil, dir)
	require.NoError(t, err)
	require.Empty(t, off.Problems)
	require.Len(t, off.Streams, 1)
	require.Len(t, off.Streams[0].Segments, 3)
	base := uint64(0)
	for i, g := range off.Streams[0].Segments {
		want := online.Streams[0].Segments[i]
		require.Equal(t, base, g.BaseRecord, "segment %d", g.ID)
		require.Equal(t, uint64(counts[i]), g.Records, "segment %d", g.ID)
		require.Equal(t, want.BaseRecord, g.BaseRecord, "segment %d as online", g.ID)
		require.Equal(t, want.Records, g.Records, "segment %d as online", g.ID)
		require.Equal(t, want.Bytes, g.Bytes, "segment %d as online", g.ID)
		base += uint64(counts[i])
	}
	require.Equal(t, uint64(9), off.Streams[0].Records)

	// A damaged stub is a problem, not a wrong number.
	stub[70] ^= 1
	require.NoError(t, os.WriteFile(first+coldSuffix, stub, 0o644))
	off, err = FromDataDir(ctx, nil, dir)
	require.NoError(t, err)
	require.Len(t, off.Problems, 1)
	require.Contains(t, off.Problems[0], "stream 5 segment 1: cold stub")
}
