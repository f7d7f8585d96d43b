// Package vfs is AOF2's file-system seam.
//
// Every byte the engine persists goes through an FS, so that the same code
// runs on the real operating system (OS), on an in-memory file system that
// can simulate power loss (MemFS.CrashClone), and under a wrapper that
// injects faults at chosen operations (Wrap with an Injector). This is how
// the crash-consistency rules of the engine are tested rather than assumed.
//
// Memory mapping is part of the seam: File.Map returns a Region. On the OS
// it is a real mmap (zero-copy reads, stores straight into the page cache,
// msync for durability); on MemFS it aliases the in-memory file so format
// code runs unchanged. Stores into a Region go through Region.WriteAt, and
// reads of bytes published by the owner through Region.Bytes.
//
// The interfaces are small on purpose; only what the engine needs is here.
package vfs

import (
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
)

// FS is a hierarchical file system. Paths use the host separator.
type FS interface {
	// Create creates a new file open for reading and writing. It fails
	// with an error matching fs.ErrExist when name exists.
	Create(name string) (File, error)
	// Open opens an existing file read-only.
	Open(name string) (File, error)
	// OpenReadWrite opens an existing file for reading and writing.
	OpenReadWrite(name string) (File, error)
	// Remove removes a file or an empty directory. The removal is durable
	// only after SyncDir of the parent.
	Remove(name string) error
	// Rename atomically replaces newname with oldname. Durable only after
	// SyncDir of the parent directory (or directories).
	Rename(oldname, newname string) error
	// MkdirAll creates dir and any missing parents; new directories are
	// durable once SyncDir has been called on each parent.
	MkdirAll(dir string, perm os.FileMode) error
	// SyncDir makes the entries of dir (creates, renames, removes) durable.
	SyncDir(dir string) error
	// List returns the names of the entries of dir, sorted.
	List(dir string) ([]string, error)
	// Stat describes name.
	Stat(name string) (os.FileInfo, error)
}

// File is an open file.
type File interface {
	io.ReaderAt
	io.WriterAt
	io.Closer
	// Name returns the path the file was opened with.
	Name() string
	// Size returns the current length of the file.
	Size() (int64, error)
	// Sync makes the file's data and metadata durable (fsync).
	Sync() error
	// Datasync makes the file's data, and the metadata needed to read it
	// back, durable (fdatasync).
	Datasync() error
	// Allocate reserves blocks for [off, off+n), extending the file if
	// needed, so later writes in that range cannot fail for lack of space.
	Allocate(off, n int64) error
	// PunchHole gives back to the file system the blocks of [off, off+n),
	// which must hold only zeros: the size stays and the range still reads
	// as zeros. A file system that cannot returns an error matching
	// errors.ErrUnsupported.
	PunchHole(off, n int64) error
	// Truncate changes the size of the file.
	Truncate(size int64) error
	// Map maps [off, off+length) of the file into memory. The range must lie
	// within the file. A writable map shares stores with the file.
	Map(off int64, length int, writable bool) (Region, error)
}

// Region is a memory-mapped range of a file.
type Region interface {
	// Bytes returns the mapped memory for reading. Callers read only the
	// bytes whose writes they have synchronised with.
	Bytes() []byte
	// WriteAt stores p at off within the region (only for writable maps).
	// Stores are visible to readers of the file at once and durable after
	// Sync (or a Sync/Datasync of the file).
	WriteAt(p []byte, off int64) (int, error)
	// Sync makes [off, off+n) of the region durable (msync MS_SYNC).
	Sync(off, n int64) error
	// Populate faults the pages of the region in ahead of use so that the
	// first store to each page does not pay for a page fault. Best effort.
	Populate() error
	// Close unmaps the region. Bytes must not be used afterwards.
	Close() error
}

// Errors common to every implementation.
var (
	// ErrClosed is returned for operations on a closed File or Region.
	ErrClosed = errors.New("vfs: file already closed")
	// ErrReadOnly is returned for writes to a read-only File or Region.
	ErrReadOnly = errors.New("vfs: read-only")
)

// IsNotExist reports whether err says a file or directory does not exist.
func IsNotExist(err error) bool { return errors.Is(err, fs.ErrNotExist) }

// IsExist reports whether err says a file already exists.
func IsExist(err error) bool { return errors.Is(err, fs.ErrExist) }

// WriteFileAtomic replaces name with data durably: it writes a temporary file
// beside it, fsyncs it, renames it over name and fsyncs the directory. After a
// crash at any point name holds either the old or the new content.
func WriteFileAtomic(fsys FS, name string, data []byte) error {
	tmp := name + ".tmp"
	if err := fsys.Remove(tmp); err != nil && !IsNotExist(err) {
		return err
	}
	f, err := fsys.Create(tmp)
	if err != nil {
		return err
	}
	if _, err := f.WriteAt(data, 0); err != nil {
		_ = f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		_ = f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := fsys.Rename(tmp, name); err != nil {
		return err
	}
	return fsys.SyncDir(filepath.Dir(name))
}

// SyncFile makes the data of an existing file name durable (a file
// another process wrote, such as a download a plugin made by path).
func SyncFile(fsys FS, name string) error {
	f, err := fsys.OpenReadWrite(name)
	if err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		_ = f.Close()
		return err
	}
	return f.Close()
}

// ReadFile reads the whole of name.
func ReadFile(fsys FS, name string) ([]byte, error) {
	f, err := fsys.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	n, err := f.Size()
	if err != nil {
		return nil, err
	}
	buf := make([]byte, n)
	if _, err := f.ReadAt(buf, 0); err != nil && !errors.Is(err, io.EOF) {
		return nil, err
	}
	return buf, nil
}

// MkdirAllSync creates each of dirs and any missing parents and makes
// each new directory's entry durable by syncing its parent: once per
// parent, however many of its entries are new, so that creating several
// directories side by side costs one sync of their parent. Existing
// directories are left alone.
func MkdirAllSync(fsys FS, dirs ...string) error {
	var parents []string // to sync, top down
	for _, dir := range dirs {
		dir = filepath.Clean(dir)
		var missing []string
		for d := dir; ; d = filepath.Dir(d) {
			if _, err := fsys.Stat(d); err == nil {
				break
			} else if !IsNotExist(err) {
				return err
			}
			missing = append(missing, d)
			if parent := filepath.Dir(d); parent == d {
				break
			}
		}
		if len(missing) == 0 {
			continue
		}
		if err := fsys.MkdirAll(dir, 0o755); err != nil {
			return err
		}
		for i := len(missing) - 1; i >= 0; i-- {
			if p := filepath.Dir(missing[i]); !slices.Contains(parents, p) {
				parents = append(parents, p)
			}
		}
	}
	for _, p := range parents {
		if err := fsys.SyncDir(p); err != nil {
			return err
		}
	}
	return nil
}

// RemoveAll removes name and, when it is a directory, everything under
// it. A missing name is success. The removal is durable only after
// SyncDir of name's parent.
func RemoveAll(fsys FS, name string) error {
	info, err := fsys.Stat(name)
	if IsNotExist(err) {
		return nil
	}
	if err != nil {
		return err
	}
	if info.IsDir() {
		entries, err := fsys.List(name)
		if err != nil {
			return err
		}
		for _, e := range entries {
			if err := RemoveAll(fsys, filepath.Join(name, e)); err != nil {
				return err
			}
		}
	}
	if err := fsys.Remove(name); err != nil && !IsNotExist(err) {
		return err
	}
	return nil
}
