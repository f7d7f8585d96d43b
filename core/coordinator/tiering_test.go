package coordinator

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/stretchr/testify/require"

	"github.com/aof2/aof2/conformance/fake"
	"github.com/aof2/aof2/core"
	"github.com/aof2/aof2/core/budget"
	"github.com/aof2/aof2/core/tier1"
	"github.com/aof2/aof2/core/tier2"
	"github.com/aof2/aof2/core/types"
	"github.com/aof2/aof2/core/vfs"
)

// TestFetchedArtifactIsDurableBeforeItIsAdopted: an artifact the plugin
// downloads into the warm directory (by path, on the real file system) is
// fsynced before the rename that makes it the warm copy, which a commit
// of CompressionDone then vouches for. A rename of unsynced bytes could
// leave a damaged warm copy after a power loss.
func TestFetchedArtifactIsDurableBeforeItIsAdopted(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var (
		mu  sync.Mutex
		ops []vfs.Op
	)
	fsys := vfs.Wrap(vfs.OS, vfs.InjectorFunc(func(op vfs.Op) vfs.Fault {
		if strings.Contains(op.Path, tier1.ArtifactSuffix) {
			mu.Lock()
			ops = append(ops, op)
			mu.Unlock()
		}
		return vfs.NoFault
	}))
	require.True(t, vfs.OnOS(fsys))
	remote, err := tier2.New(fake.New(fake.Options{}), tier2.Config{Logger: hclog.NewNullLogger()})
	require.NoError(t, err)
	dir := t.TempDir()
	r := startRig(t, Config{DataDir: dir, FS: fsys, Tier2: remote, ScanInterval: 20 * time.Millisecond,
		Tier0: budget.Config{Policy: budget.PolicyTier2}}, core.Config{})
	defer r.close(t)
	s := writeUploaded(t, ctx, r, 3, 0, 100)
	k := types.SegmentKey{Stream: 3, Segment: 1}
	_, err = r.c.Warm().Remove(k)
	require.NoError(t, err)
	info, _ := s.Segment(1)
	mu.Lock()
	ops = nil
	mu.Unlock()
	require.NoError(t, r.c.fetchArtifact(ctx, k, tier1.Expected{Key: k, SegmentCRC: info.Footer.SegmentCRC, Uploaded: true}))

	mu.Lock()
	defer mu.Unlock()
	final := tier1.ArtifactPath(dir, k)
	synced, renamed := -1, -1
	for i, op := range ops {
		download := strings.HasPrefix(op.Path, final+".fetch-") && strings.HasSuffix(op.Path, tier1.TempSuffix)
		switch {
		case op.Kind == vfs.OpSync && download:
			synced = i
		case op.Kind == vfs.OpRename && download:
			renamed = i
		}
	}
	require.GreaterOrEqual(t, renamed, 0, "the download is renamed into place: %v", ops)
	require.GreaterOrEqual(t, synced, 0, "the downloaded file is fsynced: %v", ops)
	require.Less(t, synced, renamed, "fsynced before the rename")
}
