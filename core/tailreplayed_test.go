package core

import (
	"context"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/aof2/aof2/core/segment"
	"github.com/aof2/aof2/core/vfs"
)

// TestTailReplayedResumesTheTail: with Config.TailReplayed (a Raft state
// machine), a crash that loses unsynced records leaves the tail open, and
// appending the same records again gives them the ids they had.
func TestTailReplayedResumesTheTail(t *testing.T) {
	mem := vfs.NewMem()
	cfg := Config{FS: mem, SegmentSize: segment.MinCapacity, InitialSegmentSize: segment.MinCapacity, Sync: SyncNone, TailReplayed: true}
	st, err := Open("/d", cfg)
	require.NoError(t, err)
	s, err := st.Stream(1)
	require.NoError(t, err)
	durable := writeDurable(t, s, 50, 100)
	var lost []RecordID
	for i := range 20 {
		id, err := s.Append(payloadFor(1000+i, 100), AppendOptions{ExtID: 7})
		require.NoError(t, err)
		lost = append(lost, id)
	}
	cfg.FS = mem.CrashClone(vfs.CrashOptions{Rand: rand.New(rand.NewPCG(1, 2))}) // nothing unsynced survives
	require.NoError(t, st.Close())

	st, err = Open("/d", cfg)
	require.NoError(t, err)
	defer st.Close()
	rep := st.Recovery()[0]
	require.False(t, rep.TailSealed)
	require.Nil(t, rep.Damage)
	s, err = st.Lookup(1)
	require.NoError(t, err)
	got := readEvery(t, s)
	require.Len(t, got, 50)
	for i, rec := range got {
		require.Equal(t, durable.ids[i], rec.ID)
	}
	for i := range 20 {
		id, err := s.Append(payloadFor(1000+i, 100), AppendOptions{ExtID: 7})
		require.NoError(t, err)
		require.Equal(t, lost[i], id, "record %d of the replay", i)
	}
}

// TestTailReplayedReusesAReservedID: with Config.TailReplayed, a crash
// right after a seal (the next segment id reserved by the durable mark,
// its file not written) leaves no placeholder: the replayed records go
// into that id, as on the nodes that did not crash.
func TestTailReplayedReusesAReservedID(t *testing.T) {
	mem := vfs.NewMem()
	cfg := Config{FS: mem, SegmentSize: segment.MinCapacity, InitialSegmentSize: segment.MinCapacity, Sync: SyncNone, TailReplayed: true}
	st, err := Open("/d", cfg)
	require.NoError(t, err)
	s, err := st.Stream(1)
	require.NoError(t, err)
	writeDurable(t, s, 5, 100)
	require.NoError(t, s.Seal(context.Background()))
	// The next segment's id is reserved once it is prepared.
	require.Eventually(t, func() bool {
		s.mu.Lock()
		defer s.mu.Unlock()
		return s.mu.next != nil
	}, 10*time.Second, time.Millisecond)
	s.markMu.Lock()
	require.NoError(t, s.writeMarkLocked())
	s.markMu.Unlock()
	cfg.FS = mem.CrashClone(vfs.CrashOptions{Rand: rand.New(rand.NewPCG(3, 4))})
	require.NoError(t, st.Close())

	st, err = Open("/d", cfg)
	require.NoError(t, err)
	defer st.Close()
	rep := st.Recovery()[0]
	require.Empty(t, rep.Placeholders)
	s, err = st.Lookup(1)
	require.NoError(t, err)
	require.Equal(t, 1, s.Info().Segments, "no placeholder segment")
	// The restart prepares no file; the append waits for it.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	id, err := s.AppendCtx(ctx, []byte("replayed"), AppendOptions{ExtID: 9})
	require.NoError(t, err)
	require.Equal(t, SegmentID(2), id.Segment())
}

// TestTailReplayedSegmentsAreIdentical: two stores applying the same
// records (same timestamps and ext_ids) with clocks an hour apart write
// byte-identical sealed segments: a cluster's follower hydrates the copy
// its leader uploaded and checks it against its own footer.
func TestTailReplayedSegmentsAreIdentical(t *testing.T) {
	var files [2][]byte
	for i, skew := range []time.Duration{0, time.Hour} {
		mem := vfs.NewMem()
		cfg := Config{FS: mem, SegmentSize: segment.MinCapacity, InitialSegmentSize: segment.MinCapacity, TailReplayed: true,
			Now: func() time.Time { return time.Now().Add(skew) }}
		st, err := Open("/d", cfg)
		require.NoError(t, err)
		s, err := st.Stream(1)
		require.NoError(t, err)
		for r := range 40 {
			_, err := s.Append(payloadFor(r, 100), AppendOptions{ExtID: uint64(r/10 + 1), Timestamp: int64(1e18 + r)})
			require.NoError(t, err)
		}
		require.NoError(t, s.Seal(context.Background()))
		info, ok := s.Segment(1)
		require.True(t, ok)
		require.NotNil(t, info.Footer)
		require.Equal(t, int64(1e18+39), info.Footer.SealedAt, "the last record's time, not the clock's")
		files[i], err = vfs.ReadFile(mem, info.Path)
		require.NoError(t, err)
		require.NoError(t, st.Close())
	}
	require.Equal(t, files[0], files[1])
}

// TestRequireExtID: a store opened with Config.RequireExtID (a cluster
// member's) refuses every record without a log position, on every append
// call, and appends nothing of such a call; records with one go in.
func TestRequireExtID(t *testing.T) {
	ctx := context.Background()
	st, err := Open(t.TempDir(), Config{SegmentSize: segment.MinCapacity, TailReplayed: true, RequireExtID: true})
	require.NoError(t, err)
	defer st.Close()
	s, err := st.Stream(1)
	require.NoError(t, err)
	_, err = s.Append([]byte("a"), AppendOptions{})
	require.ErrorIs(t, err, ErrExtIDRequired)
	_, err = s.AppendCtx(ctx, []byte("a"), AppendOptions{})
	require.ErrorIs(t, err, ErrExtIDRequired)
	_, err = s.AppendDurable(ctx, []byte("a"), AppendOptions{})
	require.ErrorIs(t, err, ErrExtIDRequired)
	ids, err := s.AppendBatch([][]byte{[]byte("a"), []byte("b")}, AppendOptions{Timestamp: 1})
	require.ErrorIs(t, err, ErrExtIDRequired)
	require.Empty(t, ids)
	require.Zero(t, s.Info().Records)

	_, err = s.AppendBatch([][]byte{[]byte("a"), []byte("b")}, AppendOptions{Timestamp: 1, ExtID: 7})
	require.NoError(t, err)
	require.Equal(t, uint64(2), s.Info().Records)
	require.Equal(t, uint64(7), s.Info().LastExtID)

	_, err = Open(t.TempDir(), Config{NodeWAL: true, Sync: SyncAlways, RequireExtID: true})
	require.ErrorIs(t, err, ErrInvalidConfig, "the node WAL's own entries carry no ext_id")
}
