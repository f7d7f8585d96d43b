//go:build linux

package vfs

import (
	"errors"
	"fmt"
	"os"
	"slices"

	"golang.org/x/sys/unix"
)

// OS is the operating system's file system. Durability calls map to fsync,
// fdatasync, msync(MS_SYNC) and fsync of directory handles; Allocate uses
// fallocate so that stores into a mapped range can never hit ENOSPC.
var OS FS = osFS{}

type osFS struct{}

func (osFS) Create(name string) (File, error) {
	f, err := openFile(name, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return nil, err
	}
	return &osFile{f: f, writable: true}, nil
}

func (osFS) Open(name string) (File, error) {
	f, err := openFile(name, os.O_RDONLY, 0)
	if err != nil {
		return nil, err
	}
	return &osFile{f: f}, nil
}

func (osFS) OpenReadWrite(name string) (File, error) {
	f, err := openFile(name, os.O_RDWR, 0)
	if err != nil {
		return nil, err
	}
	return &osFile{f: f, writable: true}, nil
}

// openFile opens a regular file without os.OpenFile's attempt to register
// it with the network poller: on Linux that costs four system calls per
// open (two fcntl to set O_NONBLOCK, an epoll_ctl that fails for regular
// files, two fcntl to clear it) and recovery opens every segment file.
// os.NewFile on a blocking descriptor makes none of them.
func openFile(name string, flag int, perm uint32) (*os.File, error) {
	var fd int
	err := ignoringEINTR(func() (err error) {
		fd, err = unix.Open(name, flag|unix.O_CLOEXEC, perm)
		return err
	})
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: name, Err: err}
	}
	return os.NewFile(uintptr(fd), name), nil
}

func ignoringEINTR(fn func() error) error {
	for {
		if err := fn(); !errors.Is(err, unix.EINTR) {
			return err
		}
	}
}

func (osFS) Remove(name string) error                 { return os.Remove(name) }
func (osFS) Rename(oldname, newname string) error     { return os.Rename(oldname, newname) }
func (osFS) MkdirAll(dir string, p os.FileMode) error { return os.MkdirAll(dir, p) }
func (osFS) Stat(name string) (os.FileInfo, error)    { return os.Stat(name) }

func (osFS) SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}

func (osFS) List(dir string) ([]string, error) {
	d, err := os.Open(dir)
	if err != nil {
		return nil, err
	}
	defer d.Close()
	names, err := d.Readdirnames(-1)
	if err != nil {
		return nil, err
	}
	slices.Sort(names)
	return names, nil
}

type osFile struct {
	f        *os.File
	writable bool
}

func (o *osFile) ReadAt(p []byte, off int64) (int, error)  { return o.f.ReadAt(p, off) }
func (o *osFile) WriteAt(p []byte, off int64) (int, error) { return o.f.WriteAt(p, off) }
func (o *osFile) Close() error                             { return o.f.Close() }
func (o *osFile) Name() string                             { return o.f.Name() }
func (o *osFile) Sync() error                              { return o.f.Sync() }
func (o *osFile) Truncate(size int64) error                { return o.f.Truncate(size) }

func (o *osFile) Size() (int64, error) {
	st, err := o.f.Stat()
	if err != nil {
		return 0, err
	}
	return st.Size(), nil
}

func (o *osFile) Datasync() error {
	if err := unix.Fdatasync(int(o.f.Fd())); err != nil {
		return &os.PathError{Op: "fdatasync", Path: o.f.Name(), Err: err}
	}
	return nil
}

func (o *osFile) Allocate(off, n int64) error {
	for {
		err := unix.Fallocate(int(o.f.Fd()), 0, off, n)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return &os.PathError{Op: "fallocate", Path: o.f.Name(), Err: err}
		}
		return nil
	}
}

func (o *osFile) PunchHole(off, n int64) error {
	for {
		err := unix.Fallocate(int(o.f.Fd()), unix.FALLOC_FL_PUNCH_HOLE|unix.FALLOC_FL_KEEP_SIZE, off, n)
		switch {
		case err == unix.EINTR:
			continue
		case err == unix.EOPNOTSUPP:
			return &os.PathError{Op: "fallocate punch hole", Path: o.f.Name(), Err: errors.ErrUnsupported}
		case err != nil:
			return &os.PathError{Op: "fallocate punch hole", Path: o.f.Name(), Err: err}
		}
		return nil
	}
}

func (o *osFile) Map(off int64, length int, writable bool) (Region, error) {
	if writable && !o.writable {
		return nil, ErrReadOnly
	}
	if off%int64(os.Getpagesize()) != 0 {
		return nil, fmt.Errorf("vfs: map offset %d of %s is not page aligned", off, o.f.Name())
	}
	prot := unix.PROT_READ
	if writable {
		prot |= unix.PROT_WRITE
	}
	b, err := unix.Mmap(int(o.f.Fd()), off, length, prot, unix.MAP_SHARED)
	if err != nil {
		return nil, &os.PathError{Op: "mmap", Path: o.f.Name(), Err: err}
	}
	return &osRegion{b: b, writable: writable, name: o.f.Name()}, nil
}

type osRegion struct {
	b        []byte
	writable bool
	name     string
}

func (r *osRegion) Bytes() []byte { return r.b }

func (r *osRegion) WriteAt(p []byte, off int64) (int, error) {
	if !r.writable {
		return 0, ErrReadOnly
	}
	if r.b == nil {
		return 0, ErrClosed
	}
	return copy(r.b[off:], p), nil
}

func (r *osRegion) Sync(off, n int64) error {
	if r.b == nil {
		return ErrClosed
	}
	start, end := pageRange(off, n, int64(len(r.b)))
	if start == end {
		return nil
	}
	if err := unix.Msync(r.b[start:end], unix.MS_SYNC); err != nil {
		return &os.PathError{Op: "msync", Path: r.name, Err: err}
	}
	return nil
}

func (r *osRegion) Populate() error {
	if r.b == nil {
		return ErrClosed
	}
	advice := unix.MADV_POPULATE_READ
	if r.writable {
		advice = unix.MADV_POPULATE_WRITE
	}
	if err := unix.Madvise(r.b, advice); err != nil {
		return &os.PathError{Op: "madvise", Path: r.name, Err: err}
	}
	return nil
}

func (r *osRegion) Close() error {
	if r.b == nil {
		return ErrClosed
	}
	b := r.b
	r.b = nil
	return unix.Munmap(b)
}

// pageRange widens [off, off+n) to page boundaries, clamped to size.
func pageRange(off, n, size int64) (int64, int64) {
	page := int64(os.Getpagesize())
	start := off &^ (page - 1)
	end := min(off+n, size)
	if end <= start {
		return 0, 0
	}
	return start, end
}
