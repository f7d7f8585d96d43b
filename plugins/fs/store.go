package fs

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/aof2/aof2/pluginapi"
)

// On-disk layout under the configured root:
//
//	objects/   one file per object; key "a/b/c" is objects/a.d/b.d/c.o
//	tmp/       uploads in progress: <pid>-<random>.tmp
//
// Suffixing every name keeps the key space injective on a file system:
// the keys "a/b" (file b.o) and "a/b/c" (directory b.d) can both exist,
// as they can in an object store, and no key can name a temporary file.
// A key segment longer than maxSegment bytes (file names stop at 255) is
// cut into maxSegment-byte pieces stored as continuation directories
// ("<piece>.c"), so every valid key up to 1024 bytes has a path.
//
// Every path is resolved one component at a time relative to an open
// directory with O_NOFOLLOW, so neither "..", an absolute path nor a
// symlink planted inside the root can lead a key outside it; there is no
// string path to race with.
const (
	objectSuffix = ".o"
	dirSuffix    = ".d"
	contSuffix   = ".c"
	maxSegment   = 200
	objectsDir   = "objects"
	tmpDir       = "tmp"
)

var errEscape = errors.New("path leaves the backend root")

func openDirAt(parent int, name string) (*os.File, error) {
	fd, err := unix.Openat(parent, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	return os.NewFile(uintptr(fd), name), nil
}

// fsError maps a file-system error on key to a contract error.
func fsError(key, op string, err error) error {
	var e *pluginapi.Error
	switch {
	case err == nil:
		return nil
	case errors.As(err, &e):
		return err
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return err // the caller's cancellation or deadline, classified as such (CodeOf)
	case errors.Is(err, unix.ENOENT):
		return pluginapi.NotFoundError(key)
	case errors.Is(err, unix.ELOOP), errors.Is(err, unix.ENOTDIR), errors.Is(err, errEscape):
		return &pluginapi.Error{Code: pluginapi.CodePermission, Key: key, Message: op + ": refusing a path that resolves through a symlink or non-directory", Err: err}
	case errors.Is(err, unix.EACCES), errors.Is(err, unix.EPERM), errors.Is(err, unix.EROFS):
		return &pluginapi.Error{Code: pluginapi.CodePermission, Key: key, Message: op, Err: err}
	case errors.Is(err, errCorrupt):
		return &pluginapi.Error{Code: pluginapi.CodeChecksum, Key: key, Message: op, Err: err}
	case errors.Is(err, unix.ENOSPC), errors.Is(err, unix.EDQUOT), errors.Is(err, unix.EIO):
		return &pluginapi.Error{Code: pluginapi.CodeUnavailable, Key: key, Message: op, Err: err}
	}
	return &pluginapi.Error{Code: pluginapi.CodeUnknown, Key: key, Message: op, Err: err}
}

// dirChain is the open directories from objects/ down to a key's parent.
type dirChain struct {
	dirs  []*os.File // dirs[0] is objects/ (not owned), the rest owned
	names []string   // names[i] is dirs[i+1]'s name inside dirs[i]
}

func (c *dirChain) parent() *os.File { return c.dirs[len(c.dirs)-1] }

func (c *dirChain) close() {
	for _, d := range c.dirs[1:] {
		_ = d.Close()
	}
}

// splitKey turns a validated key into directory names and the file name.
func splitKey(key string) (dirs []string, file string) {
	segs := strings.Split(key, "/")
	for i, s := range segs {
		for len(s) > maxSegment {
			dirs = append(dirs, s[:maxSegment]+contSuffix)
			s = s[maxSegment:]
		}
		if i == len(segs)-1 {
			file = s + objectSuffix
		} else {
			dirs = append(dirs, s+dirSuffix)
		}
	}
	return dirs, file
}

// walk opens key's parent directory, creating missing directories (and
// fsyncing each new entry's parent) when create is set.
func (s *Backend) walk(key string, create bool) (*dirChain, string, error) {
	if err := pluginapi.ValidateKey(key); err != nil {
		return nil, "", err
	}
	st, err := s.state()
	if err != nil {
		return nil, "", err
	}
	dirNames, file := splitKey(key)
	chain := &dirChain{dirs: []*os.File{st.objects}}
	for _, name := range dirNames {
		prev := chain.parent()
		d, err := openDirAt(int(prev.Fd()), name)
		if errors.Is(err, unix.ENOENT) && create {
			if merr := unix.Mkdirat(int(prev.Fd()), name, 0o750); merr != nil && !errors.Is(merr, unix.EEXIST) {
				chain.close()
				return nil, "", merr
			}
			if serr := prev.Sync(); serr != nil {
				chain.close()
				return nil, "", serr
			}
			d, err = openDirAt(int(prev.Fd()), name)
		}
		if err != nil {
			chain.close()
			return nil, "", err
		}
		chain.dirs = append(chain.dirs, d)
		chain.names = append(chain.names, name)
	}
	return chain, file, nil
}

// openObject opens key's file for reading and decodes its header.
func (s *Backend) openObject(key string) (*os.File, *header, int64, error) {
	chain, name, err := s.walk(key, false)
	if err != nil {
		return nil, nil, 0, fsError(key, "open", err)
	}
	defer chain.close()
	fd, err := unix.Openat(int(chain.parent().Fd()), name, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, nil, 0, fsError(key, "open", err)
	}
	f := os.NewFile(uintptr(fd), name)
	h, hlen, err := readHeader(f)
	if err != nil {
		_ = f.Close()
		return nil, nil, 0, fsError(key, "read header", err)
	}
	return f, h, hlen, nil
}

// readHeader decodes an object file's header and checks the file's length.
func readHeader(f *os.File) (*header, int64, error) {
	fi, err := f.Stat()
	if err != nil {
		return nil, 0, err
	}
	if !fi.Mode().IsRegular() {
		return nil, 0, fmt.Errorf("%w: not a regular file", errEscape)
	}
	prefix := make([]byte, 12)
	if _, err := f.ReadAt(prefix, 0); err != nil {
		return nil, 0, fmt.Errorf("%w: %v", errCorrupt, err)
	}
	n, err := headerLen(prefix)
	if err != nil {
		return nil, 0, err
	}
	buf := make([]byte, n)
	if _, err := f.ReadAt(buf, 0); err != nil {
		return nil, 0, fmt.Errorf("%w: %v", errCorrupt, err)
	}
	h, err := decodeHeader(buf)
	if err != nil {
		return nil, 0, err
	}
	if want := int64(n) + int64(h.size); fi.Size() != want || int64(h.size) < 0 {
		return nil, 0, fmt.Errorf("%w: file is %d bytes, header says %d", errCorrupt, fi.Size(), want)
	}
	return h, int64(n), nil
}

// sectionReadCloser reads a range of an open object file.
type sectionReadCloser struct {
	*io.SectionReader
	f *os.File
}

func (s sectionReadCloser) Close() error { return s.f.Close() }

// prepareRoot creates and opens root/objects and root/tmp.
func prepareRoot(root string) (objects, tmp *os.File, err error) {
	if !filepath.IsAbs(root) {
		return nil, nil, fmt.Errorf("root %q must be absolute", root)
	}
	if err := os.MkdirAll(root, 0o750); err != nil {
		return nil, nil, err
	}
	rootDir, err := os.Open(root)
	if err != nil {
		return nil, nil, err
	}
	defer func() { _ = rootDir.Close() }()
	for _, name := range []string{objectsDir, tmpDir} {
		if err := unix.Mkdirat(int(rootDir.Fd()), name, 0o750); err != nil && !errors.Is(err, unix.EEXIST) {
			return nil, nil, err
		}
	}
	if err := rootDir.Sync(); err != nil {
		return nil, nil, err
	}
	if objects, err = openDirAt(int(rootDir.Fd()), objectsDir); err != nil {
		return nil, nil, fmt.Errorf("%s/%s: %w", root, objectsDir, err)
	}
	if tmp, err = openDirAt(int(rootDir.Fd()), tmpDir); err != nil {
		_ = objects.Close()
		return nil, nil, fmt.Errorf("%s/%s: %w", root, tmpDir, err)
	}
	return objects, tmp, nil
}
