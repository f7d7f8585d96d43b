// Package fs is the AOF2 tier-2 backend that stores objects in a local
// directory. It is the embedded default: cmd/aof2-plugin-fs serves it as a
// plugin process, and the conformance suite runs against it both
// in-process and as that binary.
//
// Writes are atomic and durable: an object is written to a temporary file
// with its header (size, CRC-64/NVME, etag, metadata), fsynced, renamed
// into place under a lock on its directory, and the directory is fsynced;
// a failed or cancelled upload only ever leaves a temporary file, which is
// removed at once or, after a crash, at the next Configure. Paths are
// resolved component by component with O_NOFOLLOW beneath the root, so no
// key (.., absolute, NUL, encoded tricks) and no symlink planted inside
// the root can read or write outside it.
package fs

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/aof2/aof2/pluginapi"
)

// Version is the backend's version, reported by GetInfo.
const Version = "1.0.0"

// maxMetadataBytes is the metadata budget the fs backend advertises.
const maxMetadataBytes = 8 << 10

// ConfigKeys are the settings Configure accepts.
var ConfigKeys = []string{"root"}

// Backend is the fs backend. The zero value is unconfigured; New returns
// one ready for Configure.
type Backend struct {
	mu  sync.RWMutex
	cur *rootState
	// retired are earlier roots; calls may still use their descriptors,
	// so they are closed only by Close.
	retired []*rootState
	// now stamps ModTime (nil: time.Now); tests set it.
	now func() time.Time
}

func (s *Backend) clock() time.Time {
	if s.now != nil {
		return s.now()
	}
	return time.Now()
}

type rootState struct {
	root    string
	objects *os.File
	tmp     *os.File
	chunk   uint32
}

var _ pluginapi.Backend = (*Backend)(nil)

// New returns an unconfigured fs backend.
func New() *Backend { return &Backend{} }

func (s *Backend) state() (*rootState, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.cur == nil {
		return nil, pluginapi.Errorf(pluginapi.CodeUnavailable, "", "fs backend is not configured")
	}
	return s.cur, nil
}

func (s *Backend) Info(context.Context) (pluginapi.Info, error) {
	return pluginapi.Info{
		Name: "fs", Version: Version,
		ContractMajor: pluginapi.ContractMajor, ContractMinor: pluginapi.ContractMinor,
		Capabilities: pluginapi.Capabilities{RangeGet: true, PutFile: true, GetFile: true, IfAbsent: true, IfMatch: true, List: true},
		Limits:       pluginapi.Limits{MaxMetadataBytes: maxMetadataBytes},
	}, nil
}

// Configure opens (creating if needed) the directory named by the "root"
// setting and removes temporary files left by dead processes.
func (s *Backend) Configure(ctx context.Context, req pluginapi.ConfigureRequest) (pluginapi.ConfigureResult, error) {
	var keys []string
	for k := range req.Config {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if k != "root" {
			return pluginapi.ConfigureResult{}, pluginapi.Errorf(pluginapi.CodeInvalidConfig, "", "unknown setting %q (known: %s)", k, strings.Join(ConfigKeys, ", "))
		}
	}
	root := req.Config["root"]
	if root == "" || !filepath.IsAbs(root) || strings.IndexByte(root, 0) >= 0 {
		return pluginapi.ConfigureResult{}, pluginapi.Errorf(pluginapi.CodeInvalidConfig, "", "setting \"root\" must be an absolute directory path, got %q", root)
	}
	objects, tmp, err := prepareRoot(filepath.Clean(root))
	if err != nil {
		return pluginapi.ConfigureResult{}, pluginapi.Errorf(pluginapi.CodeInvalidConfig, "", "setting \"root\": %w", err)
	}
	removeStaleTemps(tmp)
	info, _ := s.Info(ctx)
	st := &rootState{root: root, objects: objects, tmp: tmp, chunk: pluginapi.NegotiateChunkSize(req.ChunkSize, info.Limits)}
	s.mu.Lock()
	if s.cur != nil {
		s.retired = append(s.retired, s.cur)
	}
	s.cur = st
	s.mu.Unlock()
	return pluginapi.ConfigureResult{ChunkSize: st.chunk}, nil
}

// Close releases the root's directories. Calls after Close fail.
func (s *Backend) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	all := s.retired
	if s.cur != nil {
		all = append(all, s.cur)
	}
	for _, st := range all {
		_ = st.objects.Close()
		_ = st.tmp.Close()
	}
	s.cur, s.retired = nil, nil
	return nil
}

// removeStaleTemps deletes temporary files whose writer process is gone.
func removeStaleTemps(tmp *os.File) {
	names, err := tmp.Readdirnames(-1)
	if err != nil {
		return
	}
	_, _ = tmp.Seek(0, 0)
	for _, n := range names {
		var pid int
		if _, err := fmt.Sscanf(n, "%d-", &pid); err != nil || pid <= 0 {
			continue
		}
		if pid != os.Getpid() && errors.Is(unix.Kill(pid, 0), unix.ESRCH) {
			_ = unix.Unlinkat(int(tmp.Fd()), n, 0)
		}
	}
}

func (s *Backend) Probe(ctx context.Context, req pluginapi.ProbeRequest) error {
	st, err := s.state()
	if err != nil {
		return err
	}
	if _, err := st.objects.Stat(); err != nil {
		return &pluginapi.Error{Code: pluginapi.CodeUnavailable, Message: "root is not accessible", Err: err}
	}
	if req.WriteKey == "" {
		return nil
	}
	return probeWrite(ctx, s, req.WriteKey)
}

func (s *Backend) Head(_ context.Context, key string) (pluginapi.ObjectInfo, error) {
	f, h, _, err := s.openObject(key)
	if err != nil {
		return pluginapi.ObjectInfo{}, err
	}
	_ = f.Close()
	return h.info(key), nil
}

// Delete unlinks the object under its directory's lock, then removes the
// directories it leaves empty.
func (s *Backend) Delete(_ context.Context, key string) error {
	chain, name, err := s.walk(key, false)
	if errors.Is(err, unix.ENOENT) {
		return nil
	}
	if err != nil {
		return fsError(key, "delete", err)
	}
	defer chain.close()
	parent := chain.parent()
	if err := lockDir(parent); err != nil {
		return fsError(key, "lock", err)
	}
	err = unix.Unlinkat(int(parent.Fd()), name, 0)
	if err == nil {
		err = parent.Sync()
	}
	unlockDir(parent)
	if err != nil && !errors.Is(err, unix.ENOENT) {
		return fsError(key, "delete", err)
	}
	pruneEmptyDirs(chain)
	return nil
}

// pruneEmptyDirs removes now-empty directories from the bottom up; a
// directory that a concurrent Put just filled is not empty and stays.
func pruneEmptyDirs(chain *dirChain) {
	for i := len(chain.dirs) - 1; i >= 1; i-- {
		up := chain.dirs[i-1]
		if err := unix.Unlinkat(int(up.Fd()), chain.names[i-1], unix.AT_REMOVEDIR); err != nil {
			return
		}
		_ = up.Sync()
	}
}

func lockDir(d *os.File) error {
	for {
		err := unix.Flock(int(d.Fd()), unix.LOCK_EX)
		if !errors.Is(err, unix.EINTR) {
			return err
		}
	}
}

func unlockDir(d *os.File) { _ = unix.Flock(int(d.Fd()), unix.LOCK_UN) }
