package core

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/aof2/aof2/core/checksum"
	"github.com/aof2/aof2/core/manifest"
	"github.com/aof2/aof2/core/types"
	"github.com/aof2/aof2/core/vfs"
)

// TestVerifySealedCopy: only [0, durable_bytes) counts (the preallocated
// rest and the footer may differ); a flip inside it or a file shorter than
// it is corruption; a missing file is an I/O error, not corruption.
func TestVerifySealedCopy(t *testing.T) {
	durable := make([]byte, 3<<20+77)
	for i := range durable {
		durable[i] = byte(i * 31)
	}
	st := manifest.SegmentState{DurableBytes: uint64(len(durable)), SegmentCRC64: manifest.Hex64(checksum.Sum64(durable))}
	for _, tc := range []struct {
		name    string
		file    func() []byte
		corrupt bool
	}{
		{"intact, with a tail past durable_bytes", func() []byte { return append(append([]byte{}, durable...), 1, 2, 3) }, false},
		{"exactly durable_bytes", func() []byte { return durable }, false},
		{"a flipped byte", func() []byte { b := append([]byte{}, durable...); b[2<<20] ^= 0x40; return b }, true},
		{"shorter", func() []byte { return durable[:len(durable)-1] }, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "seg")
			require.NoError(t, os.WriteFile(path, tc.file(), 0o644))
			err := VerifySealedCopy(vfs.OS, path, st, nil)
			if tc.corrupt {
				require.ErrorIs(t, err, types.ErrCorrupt)
				return
			}
			require.NoError(t, err)
		})
	}
	err := VerifySealedCopy(vfs.OS, filepath.Join(t.TempDir(), "gone"), st, nil)
	require.ErrorIs(t, err, os.ErrNotExist)
	require.NotErrorIs(t, err, types.ErrCorrupt)
}
