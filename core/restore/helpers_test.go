package restore_test

import (
	"context"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/hashicorp/go-hclog"
	"github.com/stretchr/testify/require"

	"github.com/aof2/aof2/conformance/fake"
	"github.com/aof2/aof2/core/tier2"
	"github.com/aof2/aof2/pluginapi"
)

// cancelAfter cancels the restore's context once n requests reached the
// backend: a restore cut off mid-way.
type cancelAfter struct {
	*fake.Backend
	n, seen int64
	cancel  context.CancelFunc
}

func (c *cancelAfter) tick() {
	if atomic.AddInt64(&c.seen, 1) == c.n {
		c.cancel()
	}
}

func (c *cancelAfter) Get(ctx context.Context, req pluginapi.GetRequest) (pluginapi.ObjectRange, io.ReadCloser, error) {
	c.tick()
	return c.Backend.Get(ctx, req)
}

func (c *cancelAfter) List(ctx context.Context, req pluginapi.ListRequest, page func([]pluginapi.ObjectInfo) error) error {
	c.tick()
	return c.Backend.List(ctx, req, page)
}

func (c *cancelAfter) Head(ctx context.Context, key string) (pluginapi.ObjectInfo, error) {
	c.tick()
	return c.Backend.Head(ctx, key)
}

func newRemoteOver(t testing.TB, b pluginapi.Backend) *tier2.Store {
	t.Helper()
	remote, err := tier2.New(b, tier2.Config{Logger: hclog.NewNullLogger()})
	require.NoError(t, err)
	return remote
}

// tree maps every file under dir/streams to its bytes, except manifest
// chunks and views, whose records carry the time they were written: for
// them only the name.
func tree(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	root := filepath.Join(dir, "streams")
	require.NoError(t, filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(root, path)
		if i := strings.Index(rel, "/manifest/"); i >= 0 {
			// Only the directory: each restore adds its own node's fence
			// to the history, the files differ from restore to restore.
			out[rel[:i+len("/manifest")]] = ""
			return nil
		}
		if strings.Contains(rel, "/warm/") {
			out[rel] = ""
			return nil
		}
		b, err := os.ReadFile(path)
		out[rel] = string(b)
		return err
	}))
	return out
}
