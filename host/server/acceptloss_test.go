package server_test

import (
	"context"
	"os"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/aof2/aof2/client"
	"github.com/aof2/aof2/core"
	"github.com/aof2/aof2/core/segment"
	"github.com/aof2/aof2/host/server"
	"github.com/aof2/aof2/host/server/servertest"
)

// TestAcceptLossOfALostSegment: the admin API's answer to accepting the
// loss of a sealed segment that could not be read and that no tier held
// says so (lost, the file set aside), as the store's report does, through
// the Go client.
func TestAcceptLossOfALostSegment(t *testing.T) {
	ctx := ctxT(t)
	dir := t.TempDir()
	cfg := core.Config{SegmentSize: segment.MinCapacity, InitialSegmentSize: segment.MinCapacity}
	st, err := core.Open(dir, cfg)
	require.NoError(t, err)
	s, err := st.Stream(1)
	require.NoError(t, err)
	for range 2 {
		_, err := s.AppendDurable(ctx, []byte("sealed"), core.AppendOptions{})
		require.NoError(t, err)
		require.NoError(t, s.Seal(ctx))
	}
	_, err = s.AppendDurable(ctx, []byte("active"), core.AppendOptions{})
	require.NoError(t, err)
	victim, ok := s.Segment(1)
	require.True(t, ok)
	require.NoError(t, st.Close())
	b, err := os.ReadFile(victim.Path)
	require.NoError(t, err)
	b[20] ^= 0x40 // its header
	require.NoError(t, os.WriteFile(victim.Path, b, 0o644))

	st, err = core.Open(dir, cfg)
	require.NoError(t, err)
	t.Cleanup(func() { _ = st.Close() })
	require.Equal(t, []core.SegmentID{1}, st.Recovery()[0].Lost)
	h := servertest.StartNode(t, servertest.NewNode(st), server.Options{})
	c, err := client.Dial(ctx, h.GRPCAddr)
	require.NoError(t, err)
	defer c.Close()
	rep, err := c.AcceptLoss(context.Background(), 1)
	require.NoError(t, err)
	require.True(t, rep.Lost, "%+v", rep)
	require.False(t, rep.Placeholder)
	require.Equal(t, client.SegmentID(1), rep.Segment)
	require.Len(t, rep.Quarantine, 1, "the unreadable file, set aside")
	require.Zero(t, rep.FromNodeWAL)
	_, err = c.Append(ctx, 1, []byte("after"))
	require.NoError(t, err)
}
