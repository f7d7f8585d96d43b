package core

import (
	"context"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/aof2/aof2/core/vfs"
)

// syncSites counts, per goroutine role, the syncs of segment files: those
// a waiter ran itself (syncInline) and those the syncer ran (syncLoop).
type syncSites struct {
	mu             sync.Mutex
	inline, syncer int // guarded by mu
}

func (c *syncSites) inject(op vfs.Op) vfs.Fault {
	if op.Kind != vfs.OpSync || filepath.Base(filepath.Dir(op.Path)) != "segments" {
		return vfs.NoFault
	}
	buf := make([]byte, 16<<10)
	stack := string(buf[:runtime.Stack(buf, false)])
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case strings.Contains(stack, "core.(*Stream).syncInline"):
		c.inline++
	case strings.Contains(stack, "core.(*Stream).syncLoop"):
		c.syncer++
	}
	return vfs.NoFault
}

func (c *syncSites) counts() (inline, syncer int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.inline, c.syncer
}

// TestLoneWaiterSyncsInline: under sync = always a durable append that
// waits alone runs its sync round itself instead of handing it to the
// syncer and waiting to be woken (docs/adr-write-path.md); every append is
// durable either way.
func TestLoneWaiterSyncsInline(t *testing.T) {
	sites := &syncSites{}
	st, err := Open(t.TempDir(), Config{FS: vfs.Wrap(vfs.OS, vfs.InjectorFunc(sites.inject)), Sync: SyncAlways})
	require.NoError(t, err)
	defer st.Close()
	s, err := st.Stream(1)
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	const n = 50
	for i := range n {
		id, err := s.AppendDurable(ctx, []byte{byte(i), 1, 2, 3}, AppendOptions{})
		require.NoError(t, err)
		require.Greater(t, s.durableMark.Load(), uint64(id), "durable on return")
	}
	inline, syncer := sites.counts()
	t.Logf("segment syncs: %d inline, %d by the syncer", inline, syncer)
	// The syncer may win a round now and then (it is kicked by every
	// append); a lone waiter runs most of them.
	require.Greater(t, inline, 0, "no round ran on the waiting goroutine")
}
