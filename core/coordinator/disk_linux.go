//go:build linux

package coordinator

import (
	"fmt"

	"golang.org/x/sys/unix"
)

// statDisk reports the file system holding dir (statfs). Free is what an
// unprivileged process may use.
func statDisk(dir string) (DiskUsage, error) {
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		return DiskUsage{}, fmt.Errorf("statfs %s: %w", dir, err)
	}
	bs := uint64(st.Bsize)
	return DiskUsage{Total: st.Blocks * bs, Free: st.Bavail * bs}, nil
}
