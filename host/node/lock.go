package node

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"

	"github.com/aof2/aof2/core/vfs"
)

// LockFile is the name of the data directory's lock file.
const LockFile = "LOCK"

// ErrLocked says another process has the data directory open.
var ErrLocked = errors.New("data directory is in use by another process")

// dirLock is an exclusive flock on <data>/LOCK. The kernel drops it when
// the process dies, so a SIGKILLed host never leaves a stale lock behind.
type dirLock struct{ f *os.File }

func lockDir(dir string) (*dirLock, error) {
	if err := vfs.MkdirAllSync(vfs.OS, dir); err != nil {
		return nil, fmt.Errorf("create data directory: %w", err)
	}
	path := filepath.Join(dir, LockFile)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			return nil, fmt.Errorf("%s: %w", dir, ErrLocked)
		}
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	return &dirLock{f: f}, nil
}

func (l *dirLock) release() error {
	_ = unix.Flock(int(l.f.Fd()), unix.LOCK_UN)
	return l.f.Close()
}

// Locked reports whether a process holds dir's lock (an offline admin
// command uses it to refuse writing under a running host).
func Locked(dir string) (bool, error) {
	if _, err := os.Stat(filepath.Join(dir, LockFile)); errors.Is(err, os.ErrNotExist) {
		return false, nil
	}
	l, err := lockDir(dir)
	if errors.Is(err, ErrLocked) {
		return true, nil
	}
	if err != nil {
		return false, err
	}
	return false, l.release()
}

// Lock takes dir's lock for an offline command that writes the data
// directory (restore): release gives it back. A running host makes it
// fail with ErrLocked.
func Lock(dir string) (release func() error, err error) {
	l, err := lockDir(dir)
	if err != nil {
		return nil, err
	}
	return l.release, nil
}
