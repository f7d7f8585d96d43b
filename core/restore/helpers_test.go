package restore_test

import (
	"context"
	"io"
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
