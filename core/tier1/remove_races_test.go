package tier1

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/aof2/aof2/core/vfs"
)

// blockRemove pauses the first fs.Remove of path until release is closed.
type blockRemove struct {
	path    string
	once    sync.Once
	reached chan struct{}
	release chan struct{}
}

func (b *blockRemove) Inject(op vfs.Op) vfs.Fault {
	if op.Kind == vfs.OpRemove && op.Path == b.path {
		b.once.Do(func() {
			close(b.reached)
			<-b.release
		})
	}
	return vfs.NoFault
}

// cachedWithRemoveBlocked compresses segment 1 of stream 1 into a cache
// whose first delete of that artifact waits for b.release.
func cachedWithRemoveBlocked(t *testing.T) (*vfs.MemFS, *Cache, testSegment, *blockRemove) {
	t.Helper()
	mem := vfs.NewMem()
	ifs := vfs.Wrap(mem, nil)
	c, _ := openCache(t, Config{FS: ifs})
	s := writeSegment(t, mem, "/data", 1, 1, 1<<20, 64<<10, 1)
	_, err := c.Compress(context.Background(), s.source())
	require.NoError(t, err)
	b := &blockRemove{path: c.Path(s.key()), reached: make(chan struct{}), release: make(chan struct{})}
	ifs.SetInjector(b)
	return mem, c, s, b
}

// TestEvictRacesCompress: Evict drops the entry under the lock and deletes
// the file after unlocking. A Compress of the same segment in that window
// is refused (ErrInProgress) until the delete is done; before, it wrote a
// fresh artifact that Evict's delete then removed, and the cache held (and
// counted) an entry whose file did not exist.
func TestEvictRacesCompress(t *testing.T) {
	mem, c, s, b := cachedWithRemoveBlocked(t)
	c.SetMaxBytes(1) // everything over budget

	evDone := make(chan []Evicted)
	go func() {
		ev, err := c.Evict()
		require.NoError(t, err)
		evDone <- ev
	}()
	<-b.reached // entry dropped, file not yet deleted

	// The segment is compressed again (e.g. tier 0 still holds it, a
	// re-upload or scrub rebuild) while the eviction is deleting.
	_, err := c.Compress(context.Background(), s.source())
	if err != nil {
		require.ErrorIs(t, err, ErrInProgress) // refusing is fine; a lost file is not
	}
	close(b.release)
	ev := <-evDone
	require.Len(t, ev, 1)

	if c.Contains(s.key()) {
		st := c.Stats()
		a, oerr := c.OpenArtifact(s.key())
		if oerr == nil {
			_ = a.Close()
		}
		require.True(t, exists(t, mem, c.Path(s.key())),
			"cache holds %s (stats bytes %d) but its file is gone; OpenArtifact: %v", s.key(), st.Bytes, oerr)
	}
}

// TestRemoveRacesAdopt: the same window with Remove (retention, scrub)
// and Adopt: the adopt is refused while the file is being deleted.
func TestRemoveRacesAdopt(t *testing.T) {
	mem, c, s, b := cachedWithRemoveBlocked(t)
	rmDone := make(chan error)
	go func() {
		_, err := c.Remove(s.key())
		rmDone <- err
	}()
	<-b.reached
	if err := c.Adopt(context.Background(), s.expected()); err != nil {
		require.ErrorIs(t, err, ErrInProgress)
	}
	close(b.release)
	require.NoError(t, <-rmDone)
	if c.Contains(s.key()) {
		require.True(t, exists(t, mem, c.Path(s.key())), "adopted artifact admitted but its file was deleted by the concurrent Remove")
	}
}

// blockSyncDir pauses the first directory sync of dir until release.
type blockSyncDir struct {
	dir     string
	first   atomic.Bool
	reached chan struct{}
	release chan struct{}
}

func (b *blockSyncDir) Inject(op vfs.Op) vfs.Fault {
	if op.Kind == vfs.OpSyncDir && op.Path == b.dir && b.first.CompareAndSwap(false, true) {
		close(b.reached)
		<-b.release
	}
	return vfs.NoFault
}

// TestRemoveRacesCompressCommit: a compression has renamed its artifact
// into place but not admitted it yet (it is syncing the directory). Remove
// of the not-yet-cached key is refused (ErrInProgress); before, it deleted
// the file and the compression then admitted an entry whose file was gone.
func TestRemoveRacesCompressCommit(t *testing.T) {
	mem := vfs.NewMem()
	ifs := vfs.Wrap(mem, nil)
	c, _ := openCache(t, Config{FS: ifs})
	s := writeSegment(t, mem, "/data", 1, 1, 1<<20, 64<<10, 1)
	require.NoError(t, vfs.MkdirAllSync(mem, WarmDir("/data", 1)))
	b := &blockSyncDir{dir: WarmDir("/data", 1), reached: make(chan struct{}), release: make(chan struct{})}
	ifs.SetInjector(b)
	done := make(chan error)
	go func() {
		_, err := c.Compress(context.Background(), s.source())
		done <- err
	}()
	<-b.reached // renamed, not admitted
	_, rerr := c.Remove(s.key())
	if rerr != nil && !errors.Is(rerr, ErrInProgress) && !errors.Is(rerr, ErrNotCached) {
		t.Fatalf("remove: %v", rerr)
	}
	close(b.release)
	require.NoError(t, <-done)
	if c.Contains(s.key()) {
		require.True(t, exists(t, mem, c.Path(s.key())), "compression admitted an artifact a concurrent Remove deleted (remove err %v)", rerr)
	}
}

// TestRemoveAbsentThenCompress: a Remove of an absent key does not leave
// the key marked as being removed (a later compression goes ahead).
func TestRemoveAbsentThenCompress(t *testing.T) {
	mem := vfs.NewMem()
	c, _ := openCache(t, Config{FS: mem})
	s := writeSegment(t, mem, "/data", 1, 1, 1<<20, 64<<10, 1)
	_, err := c.Remove(s.key())
	require.ErrorIs(t, err, ErrNotCached)
	_, err = c.Compress(context.Background(), s.source())
	require.NoError(t, err)
	require.True(t, c.Contains(s.key()))
}
