package core

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/aof2/aof2/core/segment"
)

func TestPublishShowsUnsyncedRecords(t *testing.T) {
	st, err := Open(t.TempDir(), Config{SegmentSize: segment.MinCapacity, Sync: SyncInterval, FlushInterval: time.Hour, FlushBytes: 1 << 30, TailReplayed: true})
	require.NoError(t, err)
	defer st.Close()
	s, err := st.Stream(1)
	require.NoError(t, err)
	id, err := s.Append([]byte("a"), AppendOptions{})
	require.NoError(t, err)
	tl, err := s.Tail(AtStart())
	require.NoError(t, err)
	defer tl.Close()
	_, err = tl.TryNext()
	require.Equal(t, Tail, KindOf(err), "a tailer sees only durable records before Publish: %v", err)

	require.NoError(t, s.Publish())
	rec, err := tl.Next(context.Background())
	require.NoError(t, err)
	require.Equal(t, id, rec.ID)
	require.Zero(t, s.Info().DurableRecords, "published is not durable")

	require.NoError(t, s.Flush(context.Background(), id))
	require.Equal(t, uint64(1), s.Info().DurableRecords)
}

func TestPublishNeedsTailReplayed(t *testing.T) {
	st, err := Open(t.TempDir(), Config{SegmentSize: segment.MinCapacity})
	require.NoError(t, err)
	defer st.Close()
	s, err := st.Stream(1)
	require.NoError(t, err)
	require.True(t, errors.Is(s.Publish(), ErrNotReplayed))
}
