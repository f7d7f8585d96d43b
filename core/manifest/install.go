package manifest

import (
	"fmt"
	"path/filepath"

	"github.com/aof2/aof2/core/checksum"
	"github.com/aof2/aof2/core/types"
	"github.com/aof2/aof2/core/vfs"
)

// Installing a manifest from tier 2 (restore, docs/adr-restore.md). The
// tier-2 copies of sealed chunks and snapshots are the local files' bytes,
// so a stream's history is rebuilt by writing them back into a manifest
// directory; Open then replays them with every check it makes of a local
// log. Both functions verify the bytes before writing anything.

// ParseSnapshot decodes and verifies a snapshot of stream streamID.
func ParseSnapshot(b []byte, streamID types.StreamID) (Snapshot, error) {
	return decodeSnapshot(b, streamID)
}

// CheckChunk verifies a sealed chunk's bytes, as uploaded: the header names
// chunk index, is sealed, and its committed_len is the length of b; the
// chunk CRC and every record verify.
func CheckChunk(b []byte, index uint64) (ChunkHeader, error) {
	if len(b) < chunkHeaderLen {
		return ChunkHeader{}, corruptf("chunk %d: %d bytes, shorter than the chunk header", index, len(b))
	}
	h, err := decodeChunkHeader(b)
	switch {
	case err != nil:
		return h, fmt.Errorf("chunk %d: %w", index, err)
	case h.Index != index:
		return h, corruptf("chunk %d: header names chunk %d", index, h.Index)
	case !h.Flags.Sealed():
		return h, corruptf("chunk %d: not sealed", index)
	case h.CommittedLen != uint64(len(b)):
		return h, corruptf("chunk %d: committed_len %d, object holds %d bytes", index, h.CommittedLen, len(b))
	case Hex64(checksum.Sum64(b[chunkHeaderLen:])) != h.CRC64:
		return h, corruptf("chunk %d: chunk_crc64 %s does not match its bytes", index, h.CRC64)
	}
	cr := &chunkRead{index: index, name: chunkName(index), hdr: h}
	cr.walk(b)
	if cr.err != nil {
		return h, fmt.Errorf("chunk %d at offset %d: %w", index, cr.errOff, cr.err)
	}
	return h, nil
}

// InstallChunk writes a sealed chunk read from tier 2 into the manifest
// directory of stream directory dir, flagged uploaded (tier 2 holds it),
// after CheckChunk. The file is synced; the caller syncs the directory.
func InstallChunk(fsys vfs.FS, dir string, index uint64, b []byte) error {
	h, err := CheckChunk(b, index)
	if err != nil {
		return err
	}
	h.Flags |= FlagUploaded
	out := append(h.marshal(), b[chunkHeaderLen:]...)
	return writeSynced(fsys, filepath.Join(dir, manifestDirName, chunkName(index)), out)
}

// InstallSnapshot writes a snapshot read from tier 2 into the manifest
// directory of stream directory dir, after ParseSnapshot. The file is
// synced; the caller syncs the directory.
func InstallSnapshot(fsys vfs.FS, dir string, streamID types.StreamID, b []byte) (Snapshot, error) {
	s, err := decodeSnapshot(b, streamID)
	if err != nil {
		return s, err
	}
	return s, writeSynced(fsys, filepath.Join(dir, manifestDirName, snapshotName(s.ID)), b)
}

func writeSynced(fsys vfs.FS, path string, b []byte) error {
	if err := vfs.MkdirAllSync(fsys, filepath.Dir(path)); err != nil {
		return err
	}
	f, err := fsys.Create(path)
	if err != nil {
		return err
	}
	if _, err := f.WriteAt(b, 0); err != nil {
		_ = f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		_ = f.Close()
		return err
	}
	return f.Close()
}
