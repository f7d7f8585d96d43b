package core

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/aof2/aof2/core/types"
	"github.com/aof2/aof2/core/vfs"
)

// TestMaxStreams: creating a stream past Config.MaxStreams fails with
// ErrTooManyStreams and leaves nothing behind; existing streams keep
// working, and a store reopened with a lower limit still opens every
// stream on disk but creates no new one.
func TestMaxStreams(t *testing.T) {
	ctx := context.Background()
	fsys := vfs.NewMem()
	cfg := smallConfig(fsys)
	cfg.MaxStreams = 2
	st, err := Open("/data", cfg)
	require.NoError(t, err)
	for _, id := range []StreamID{1, 2} {
		s, err := st.Stream(id)
		require.NoError(t, err)
		_, err = s.AppendDurable(ctx, []byte("x"), AppendOptions{})
		require.NoError(t, err)
	}
	_, err = st.Stream(3)
	require.ErrorIs(t, err, ErrTooManyStreams)
	require.ErrorIs(t, err, types.ErrTooManyStreams)
	require.Contains(t, err.Error(), "stream 3")
	_, err = st.Lookup(3)
	require.ErrorIs(t, err, ErrUnknownStream, "the refused stream was not created")
	names, err := fsys.List("/data/streams")
	require.NoError(t, err)
	require.ElementsMatch(t, []string{"1", "2"}, names, "no directory for the refused stream")
	s, err := st.Stream(2)
	require.NoError(t, err, "an existing stream is returned at the limit")
	_, err = s.AppendDurable(ctx, []byte("y"), AppendOptions{})
	require.NoError(t, err)
	require.NoError(t, st.Close())

	cfg.MaxStreams = 1
	st, err = Open("/data", cfg)
	require.NoError(t, err)
	defer st.Close()
	require.Equal(t, []StreamID{1, 2}, st.Streams(), "streams on disk open whatever the limit")
	_, err = st.Stream(4)
	require.ErrorIs(t, err, ErrTooManyStreams)

	cfg.MaxStreams = -1
	_, err = Open("/other", cfg)
	require.ErrorIs(t, err, ErrInvalidConfig)
}
