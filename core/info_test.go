package core

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/aof2/aof2/core/vfs"
)

func TestStreamInfo(t *testing.T) {
	ctx := context.Background()
	cfg := smallConfig(vfs.NewMem())
	cfg.Sync = SyncNone
	st, err := Open("/data", cfg)
	require.NoError(t, err)
	defer st.Close()
	s, err := st.Stream(3)
	require.NoError(t, err)

	in := s.Info()
	require.Equal(t, StreamID(3), in.ID)
	require.Zero(t, in.Records)

	var last RecordID
	for i := range 200 {
		last, err = s.AppendCtx(ctx, payloadFor(i, 20000), AppendOptions{})
		require.NoError(t, err)
	}
	in = s.Info()
	require.Equal(t, uint64(200), in.Records)
	require.Less(t, in.DurableRecords, in.Records, "sync none: nothing flushed yet")
	require.Greater(t, in.Segments, 2)
	require.Equal(t, in.Segments, in.Resident)
	require.Equal(t, in.Segments-1, in.Sealed)

	require.NoError(t, s.Flush(ctx, last))
	in = s.Info()
	require.Equal(t, in.Records, in.DurableRecords)
	require.Equal(t, in.Bytes, in.DurableBytes)
	require.Greater(t, uint64(in.DurableMark), uint64(last))
	require.NoError(t, in.Failed)
}
