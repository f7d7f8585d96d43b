package client_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/aof2/aof2/client"
	"github.com/aof2/aof2/host/server"
	"github.com/aof2/aof2/host/server/servertest"
)

// TestAppendWatermarked: the watermark set with an append is the one the
// next seal carries, and stream info reports it with the newest ext_id.
func TestAppendWatermarked(t *testing.T) {
	h := servertest.Start(t, rollingConfig(), server.Options{})
	c := connect(t, h)
	ctx := ctxT(t)
	_, err := c.AppendWatermarked(ctx, 3, []client.Record{{Payload: []byte("a"), ExtID: 40}, {Payload: []byte("b"), ExtID: 41}}, 39, false)
	require.NoError(t, err)
	info, err := c.Info(ctx, 3)
	require.NoError(t, err)
	require.Equal(t, uint64(39), info.CoordinatorWatermark)
	require.Equal(t, uint64(41), info.LastExtID)
	require.Empty(t, info.Refused)

	info, err = c.Seal(ctx, 3)
	require.NoError(t, err)
	require.Equal(t, uint64(39), info.CoordinatorWatermark, "a seal keeps it for the next one")
	_, err = c.AppendRecords(ctx, 3, []client.Record{{Payload: []byte("c"), ExtID: 42}}, false)
	require.NoError(t, err)
	info, err = c.Info(ctx, 3)
	require.NoError(t, err)
	require.Equal(t, uint64(39), info.CoordinatorWatermark, "a plain append leaves it alone")
	require.Equal(t, uint64(42), info.LastExtID)
}
