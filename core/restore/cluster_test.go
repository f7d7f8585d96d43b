package restore_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/aof2/aof2/conformance/fake"
	"github.com/aof2/aof2/core"
	"github.com/aof2/aof2/core/restore"
	"github.com/aof2/aof2/core/tier2"
	"github.com/aof2/aof2/core/types"
	"github.com/aof2/aof2/internal/testwait"
)

// RunCluster takes, per stream, the segment objects that continue one
// another from the stream's first record, and stops at the first id tier
// 2 does not hold (an upload not done yet): nothing after a gap, no lost
// ids, nothing written to tier 2. A stream whose first segment tier 2
// lacks is left to the peer copy.
func TestRunClusterTakesTheRunFromTheStart(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), testwait.Default)
	defer cancel()
	b := fake.New(fake.Options{})
	kept, _ := writeStreams(t, b, manifestOpts, 1, 2)
	layout := newRemote(t, b).Layout()
	segs := func(s types.StreamID) []string { return objectsOf(b, layout, s, tier2.KindSegment) }
	one, two := segs(1), segs(2)
	require.GreaterOrEqual(t, len(one), 3, "the gap needs two segments before it")
	gap := types.SegmentID(0)
	if ref, err := layout.Parse(one[2]); err == nil {
		gap = types.SegmentID(ref.ID)
	}
	require.NoError(t, b.Delete(ctx, one[2]))
	require.NoError(t, b.Delete(ctx, two[0]))
	before := len(b.Keys())

	dir := t.TempDir()
	rep, err := restore.RunCluster(ctx, restore.Config{DataDir: dir, Remote: newRemote(t, b), SegmentSize: segSize, Manifest: manifestOpts})
	require.NoError(t, err)
	require.Len(t, rep.Streams, 2)
	require.Equal(t, 2, rep.Streams[0].Cold, "stream 1: the two segments before the gap")
	require.Empty(t, rep.Streams[0].Lost)
	require.True(t, rep.Streams[1].Skipped, "stream 2: its first segment is not in tier 2")
	require.Equal(t, before, len(b.Keys()), "nothing written to tier 2")

	// Opened without tiering: a cluster member's store opens so, and
	// its cold segments are what tier 2 holds (read back end to end in
	// cmd/aof2-host's TestClusterWipedNodeRejoinsFromTier2).
	st, err := core.Open(dir, core.Config{SegmentSize: segSize, InitialSegmentSize: segSize, Manifest: manifestOpts})
	require.NoError(t, err)
	defer st.Close()
	s, err := st.Lookup(1)
	require.NoError(t, err)
	require.Equal(t, rep.Streams[0].Records, s.Info().Records)
	var ids []types.SegmentID
	for _, g := range s.SegmentList() {
		require.False(t, g.Resident, "segment %d: cold", g.ID)
		ids = append(ids, g.ID)
	}
	require.Len(t, ids, 2)
	require.Less(t, ids[1], gap)
	n := 0
	for _, w := range kept {
		if w.stream == 1 && w.id.Segment() < gap {
			n++
		}
	}
	require.EqualValues(t, n, rep.Streams[0].Records, "every record before the gap")
	_, err = st.Lookup(2)
	require.ErrorIs(t, err, core.ErrUnknownStream)
}

// An object whose trailer does not verify ends the run there instead of
// failing the rejoin: the peer copy brings the rest.
func TestRunClusterCutsTheRunAtADamagedObject(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), testwait.Default)
	defer cancel()
	b := fake.New(fake.Options{})
	writeStreams(t, b, manifestOpts, 1)
	layout := newRemote(t, b).Layout()
	one := objectsOf(b, layout, 1, tier2.KindSegment)
	require.GreaterOrEqual(t, len(one), 3)
	info, ok := b.Stored(one[1])
	require.True(t, ok)
	require.NoError(t, b.Rot(one[1], int64(info.Size)-2))

	rep, err := restore.RunCluster(ctx, restore.Config{DataDir: t.TempDir(), Remote: newRemote(t, b), SegmentSize: segSize, Manifest: manifestOpts})
	require.NoError(t, err)
	require.Len(t, rep.Streams, 1)
	require.Equal(t, 1, rep.Streams[0].Cold, "the segment before the damaged one")
}

// A stream whose first segments the cluster's retention dropped is taken
// from its oldest segment: objects below it (dropped, not swept) are
// passed over, the stream starts at that segment's first record. Tier 2
// without that segment fails the stream (ErrOldestNotInTier2), and a
// rerun once it is there goes on, keeping what the first run restored.
func TestRunClusterTakesACutStreamFromItsOldestSegment(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), testwait.Default)
	defer cancel()
	b := fake.New(fake.Options{})
	kept, _ := writeStreams(t, b, manifestOpts, 1, 2)
	layout := newRemote(t, b).Layout()
	idOf := func(key string) types.SegmentID {
		ref, err := layout.Parse(key)
		require.NoError(t, err)
		return types.SegmentID(ref.ID)
	}
	one, two := objectsOf(b, layout, 1, tier2.KindSegment), objectsOf(b, layout, 2, tier2.KindSegment)
	require.GreaterOrEqual(t, len(one), 3)
	require.GreaterOrEqual(t, len(two), 3)
	oldest1 := idOf(one[2]) // the ids below it dropped: one[0]'s object still there (not swept), one[1]'s deleted
	require.NoError(t, b.Delete(ctx, one[1]))
	oldest2 := idOf(two[1])

	dir := t.TempDir()
	// Stream 2's oldest as a lagging member reports it: a segment tier 2
	// does not hold (one past its last object).
	cfg := restore.Config{DataDir: dir, Remote: newRemote(t, b), SegmentSize: segSize, Manifest: manifestOpts,
		Oldest: map[types.StreamID]types.SegmentID{1: oldest1, 2: idOf(two[len(two)-1]) + 1}}
	rep, err := restore.RunCluster(ctx, cfg)
	require.ErrorIs(t, err, restore.ErrOldestNotInTier2)
	pending, perr := restore.Pending(nil, dir)
	require.NoError(t, perr)
	require.True(t, pending, "an unfinished rejoin is resumed")
	require.Len(t, rep.Streams, 2)
	require.Empty(t, rep.Streams[0].Error)
	require.Equal(t, len(one)-2, rep.Streams[0].Cold, "stream 1: from its oldest segment to its last")

	cfg.Oldest[2] = oldest2 // asked again
	rep, err = restore.RunCluster(ctx, cfg)
	require.NoError(t, err)
	require.True(t, rep.Streams[0].Skipped, "stream 1: restored by the first run")
	require.Equal(t, len(two)-1, rep.Streams[1].Cold)

	st, err := core.Open(dir, core.Config{SegmentSize: segSize, InitialSegmentSize: segSize, Manifest: manifestOpts})
	require.NoError(t, err)
	defer st.Close()
	for _, c := range []struct {
		stream types.StreamID
		oldest types.SegmentID
	}{{1, oldest1}, {2, oldest2}} {
		s, err := st.Lookup(c.stream)
		require.NoError(t, err)
		segs := s.SegmentList()
		require.Equal(t, c.oldest, segs[0].ID)
		var below, from uint64
		for _, w := range kept {
			if w.stream == c.stream && w.id.Segment() < c.oldest {
				below++
			} else if w.stream == c.stream {
				from++
			}
		}
		require.Equal(t, below, segs[0].BaseRecord, "stream %d: starts at its oldest segment's first record", c.stream)
		require.Equal(t, from, s.Info().Records-segs[0].BaseRecord, "stream %d: every record from its oldest segment", c.stream)
	}
}
