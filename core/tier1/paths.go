package tier1

import (
	"errors"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"github.com/aof2/aof2/core/types"
	"github.com/aof2/aof2/core/vfs"
)

// Suffixes of the files in a warm directory.
const (
	ArtifactSuffix = ".seg.zst"
	// TempSuffix marks a file being written; Open deletes leftovers.
	TempSuffix = ".tmp"
)

// WarmDir returns <dataDir>/streams/<stream>/warm.
func WarmDir(dataDir string, stream types.StreamID) string {
	return filepath.Join(dataDir, "streams", strconv.FormatUint(uint64(stream), 10), "warm")
}

// ArtifactName returns <segment_id:020>.seg.zst.
func ArtifactName(seg types.SegmentID) string { return fmt.Sprintf("%020d%s", seg, ArtifactSuffix) }

// ArtifactPath returns the path of a segment's artifact under dataDir.
func ArtifactPath(dataDir string, k types.SegmentKey) string {
	return filepath.Join(WarmDir(dataDir, k.Stream), ArtifactName(k.Segment))
}

// ParseArtifactName parses a name made by ArtifactName.
func ParseArtifactName(name string) (types.SegmentID, bool) {
	base, ok := strings.CutSuffix(name, ArtifactSuffix)
	if !ok || len(base) != 20 {
		return 0, false
	}
	n, err := strconv.ParseUint(base, 10, 64)
	if err != nil || n == 0 || n > uint64(types.MaxSegmentID) {
		return 0, false
	}
	return types.SegmentID(n), true
}

// markNoSpace wraps ENOSPC with types.ErrNoSpace.
func markNoSpace(err error) error {
	if err != nil && errors.Is(err, syscall.ENOSPC) && !errors.Is(err, types.ErrNoSpace) {
		return fmt.Errorf("%w: %w", types.ErrNoSpace, err)
	}
	return err
}

// atomicFile writes a file crash-safely: into <path>.tmp, then fsync,
// rename over path, fsync the directory (docs/tiering.md#crash-consistency-rules). Until Commit returns
// nil, path is untouched; after a crash at any point path holds either
// nothing (or its old content) or the complete new content.
type atomicFile struct {
	fs   vfs.FS
	path string
	tmp  string
	f    vfs.File
}

func createAtomic(fsys vfs.FS, path string) (*atomicFile, error) {
	if err := vfs.MkdirAllSync(fsys, filepath.Dir(path)); err != nil {
		return nil, fmt.Errorf("tier1: create directory for %s: %w", path, err)
	}
	tmp := path + TempSuffix
	if err := fsys.Remove(tmp); err != nil && !vfs.IsNotExist(err) {
		return nil, fmt.Errorf("tier1: remove stale %s: %w", tmp, err)
	}
	f, err := fsys.Create(tmp)
	if err != nil {
		return nil, fmt.Errorf("tier1: create %s: %w", tmp, markNoSpace(err))
	}
	return &atomicFile{fs: fsys, path: path, tmp: tmp, f: f}, nil
}

// allocateExcept sizes the file to size bytes and reserves all of it but
// [lo, hi), which stays a hole (reading as zeros), so that running out of
// space shows up here. File systems without fallocate get a plain
// truncate.
func (a *atomicFile) allocateExcept(size, lo, hi int64) error {
	var err error
	if hi > lo {
		err = a.f.Allocate(0, lo)
		if err == nil {
			err = a.f.Allocate(hi, size-hi)
		}
	} else {
		err = a.f.Allocate(0, size)
	}
	if errors.Is(err, syscall.EOPNOTSUPP) {
		err = a.f.Truncate(size)
	}
	if err != nil {
		return fmt.Errorf("tier1: allocate %d bytes for %s: %w", size, a.tmp, markNoSpace(err))
	}
	return nil
}

func (a *atomicFile) writeAt(p []byte, off int64) error {
	if _, err := a.f.WriteAt(p, off); err != nil {
		return fmt.Errorf("tier1: write %s at %d: %w", a.tmp, off, markNoSpace(err))
	}
	return nil
}

// commit makes the file durable and visible under its final name.
func (a *atomicFile) commit() error {
	if err := a.f.Sync(); err != nil {
		a.abort()
		return fmt.Errorf("tier1: sync %s: %w", a.tmp, err)
	}
	f := a.f
	a.f = nil
	if err := f.Close(); err != nil {
		a.abort()
		return fmt.Errorf("tier1: close %s: %w", a.tmp, err)
	}
	if err := a.fs.Rename(a.tmp, a.path); err != nil {
		a.abort()
		return fmt.Errorf("tier1: rename %s: %w", a.tmp, err)
	}
	if err := a.fs.SyncDir(filepath.Dir(a.path)); err != nil {
		// The entry may not survive a crash: take the file back out (best
		// effort) so nothing relies on it, and report the failure.
		_ = a.fs.Remove(a.path)
		return fmt.Errorf("tier1: sync directory of %s: %w", a.path, err)
	}
	return nil
}

// abort drops the temporary file (best effort: Open removes leftovers).
func (a *atomicFile) abort() {
	if a.f != nil {
		_ = a.f.Close()
		a.f = nil
	}
	_ = a.fs.Remove(a.tmp)
}
