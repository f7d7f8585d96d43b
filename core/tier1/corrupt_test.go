package tier1

import (
	"bytes"
	"context"
	"encoding/binary"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/aof2/aof2/core/types"
	"github.com/aof2/aof2/core/vfs"
)

// TestCorruptArtifactDetected damages an artifact in many ways; each must
// be caught (at open, at read or at hydration) as corruption, and nothing
// may be written at the destination.
func TestCorruptArtifactDetected(t *testing.T) {
	mem := vfs.NewMem()
	s := writeSegment(t, mem, "/data", 1, 1, 1<<20, 400<<10, 1)
	art := ArtifactPath("/data", s.key())
	res, err := CompressSegment(context.Background(), mem, s.source(), art, Options{FrameSize: 64 << 10})
	require.NoError(t, err)
	good := readAll(t, mem, art)
	a, err := OpenReaderAt(bytes.NewReader(good), int64(len(good)), "good")
	require.NoError(t, err)
	frame := func(i int64) (off, size int64) {
		e, ok := a.table.EntryByID(i)
		require.True(t, ok)
		return int64(e.CompressedOffset), int64(e.CompressedSize)
	}
	tableStart := int64(len(good)) - (skippableHeader + res.Frames*seekEntrySize + seekFooterSize)
	f0, _ := frame(0)
	f3, n3 := frame(3)
	fl, nl := frame(res.Frames - 1)

	cases := []struct {
		name   string
		mutate func(b []byte) []byte
	}{
		{"bit in frame 0 header area", func(b []byte) []byte { b[f0+5] ^= 0x01; return b }},
		{"bit mid frame 3", func(b []byte) []byte { b[f3+n3/2] ^= 0x40; return b }},
		{"bit in last frame", func(b []byte) []byte { b[fl+nl-6] ^= 0x02; return b }},
		{"seek table size entry", func(b []byte) []byte { b[tableStart+8+3*seekEntrySize] ^= 0x01; return b }},
		{"seek table checksum entry", func(b []byte) []byte { b[tableStart+8+2*seekEntrySize+9] ^= 0x80; return b }},
		{"seekable magic", func(b []byte) []byte { b[len(b)-1] ^= 0xFF; return b }},
		{"frame count", func(b []byte) []byte {
			i := len(b) - seekFooterSize
			binary.LittleEndian.PutUint32(b[i:], binary.LittleEndian.Uint32(b[i:])+1)
			return b
		}},
		{"truncated tail", func(b []byte) []byte { return b[:len(b)-5] }},
		{"truncated frames", func(b []byte) []byte { return append(b[:f3], b[tableStart:]...) }},
		{"trailing garbage", func(b []byte) []byte { return append(b, 1, 2, 3) }},
		{"empty", func(b []byte) []byte { return nil }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			bad := tc.mutate(bytes.Clone(good))
			a, err := OpenReaderAt(bytes.NewReader(bad), int64(len(bad)), "bad")
			if err == nil {
				_, err = Hydrate(context.Background(), mem, a, s.expected(), "/data/out.seg")
			}
			require.Error(t, err)
			require.ErrorIs(t, err, types.ErrCorrupt)
			require.True(t, isCorruptionErr(err), "typed error, got %T: %v", err, err)
			require.False(t, exists(t, mem, "/data/out.seg"))
			noTemps(t, mem, "/data")
		})
	}
}

func isCorruptionErr(err error) bool {
	var ca *CorruptArtifactError
	var cm *ChecksumMismatchError
	return asErr(err, &ca) || asErr(err, &cm)
}
