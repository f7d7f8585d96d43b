package main

import (
	"context"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/aof2/aof2/client"
	"github.com/aof2/aof2/core/types"
	"github.com/aof2/aof2/internal/testwait"
)

// segmentObjects lists the fs backend's segment object files of stream
// (by segment id) under root: key streams/S/segments/ID.seg.zst is file
// streams.d/S.d/segments.d/ID.seg.zst.o (plugins/fs).
func segmentObjects(t *testing.T, root string, stream client.StreamID) map[client.SegmentID]string {
	t.Helper()
	out := map[client.SegmentID]string{}
	dir := "/streams.d/" + strconv.FormatUint(uint64(stream), 10) + ".d/segments.d/"
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		slash := filepath.ToSlash(path)
		if !strings.Contains(slash, dir) || !strings.HasSuffix(slash, ".seg.zst.o") {
			return nil
		}
		id, err := strconv.ParseUint(strings.TrimSuffix(filepath.Base(path), ".seg.zst.o"), 10, 64)
		if err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
		out[client.SegmentID(id)] = path
		return nil
	})
	if os.IsNotExist(err) {
		return out
	}
	require.NoError(t, err)
	return out
}

// oldestSegment asks node n for stream's oldest segment.
func oldestSegment(ctx context.Context, t *testing.T, n *clusterNode, stream client.StreamID) client.SegmentRow {
	t.Helper()
	cl, err := client.Dial(ctx, n.grpc)
	require.NoError(t, err)
	defer cl.Close()
	rows, err := cl.Segments(ctx, client.SegmentFilter{Stream: &stream})
	require.NoError(t, err)
	require.NotEmpty(t, rows)
	return slices.MinFunc(rows, func(a, b client.SegmentRow) int { return int(a.Segment) - int(b.Segment) })
}

// TestClusterRetentionDeletesThroughTheLog: three real hosts over one fs
// tier 2 with retention by size. The leader drops a stream's oldest
// segments through Drop entries: every node drops the same ones, reads
// below the cut get NotFound everywhere, and tier 2 keeps no object
// below the oldest segment. A delete a failover cut (a dropped
// segment's object put back, then the leader killed) is made by the next
// leader's sweep. A wiped member that rejoins with join starts the
// stream at the cluster's oldest segment, from tier 2, and ends with the
// same records as the others.
func TestClusterRetentionDeletesThroughTheLog(t *testing.T) {
	bin := hostBinaries(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	objects := filepath.Join(t.TempDir(), "objects")
	c := newTier2Cluster(t, bin, objects, "AOF2_RETENTION_MAX_BYTES=3MiB")
	l := c.leader(ctx)
	cl, err := client.Dial(ctx, l.grpc)
	require.NoError(t, err)
	defer cl.Close()
	const stream = client.StreamID(5)

	writeBatches(ctx, t, cl, stream, 25) // 2 MB, under the limit: uploads, no drop
	waitMetric(t, l.h, "aof_cluster_tier_moves_total", 3)
	before := segmentObjects(t, objects, stream)
	first := slices.Min(slices.Collect(maps.Keys(before)))
	saved, err := os.ReadFile(before[first])
	require.NoError(t, err)

	writeBatches(ctx, t, cl, stream, 100) // 8 MB more: the oldest segments go
	for _, n := range c.nodes {
		waitMetric(t, n.h, "aof_cluster_drops_total", 3)
	}
	all := c.sameEverywhere(ctx, stream)
	require.Positive(t, all[stream][0].Ordinal, "the stream's first records were dropped")
	oldest := oldestSegment(ctx, t, l, stream)
	for _, n := range c.nodes {
		require.Equal(t, oldest.Segment, oldestSegment(ctx, t, n, stream).Segment, "%s drops the same segments", n.id)
		ncl, err := client.Dial(ctx, n.grpc)
		require.NoError(t, err)
		_, err = ncl.Read(ctx, stream, client.AtOrdinal(0), 1)
		require.ErrorIs(t, err, types.ErrNotFound, "%s: a read below the cut", n.id)
		require.NoError(t, ncl.Close())
	}
	testwait.Until(t, testwait.Default, 20*time.Millisecond, func() bool {
		head := oldestSegment(ctx, t, l, stream).Segment
		for id := range segmentObjects(t, objects, stream) {
			if id < head {
				return false
			}
		}
		return true
	}, "tier 2 keeps no object below the oldest segment")

	// A delete a failover cut: the object of a dropped segment is back
	// (the leader died before its delete), then the leader dies. The
	// next one sweeps it.
	require.NoError(t, os.WriteFile(before[first], saved, 0o644))
	c.kill(l)
	l = c.leader(ctx)
	testwait.Until(t, testwait.Default, 20*time.Millisecond, func() bool {
		_, err := os.Stat(before[first])
		return os.IsNotExist(err)
	}, "the next leader deletes the object of a segment dropped before it led")
	for _, n := range c.nodes {
		c.restart(n)
	}

	// A wiped member rejoins after retention: from the oldest segment.
	f := c.follower(l)
	c.wipe(f)
	cl2, err := client.Dial(ctx, l.grpc)
	require.NoError(t, err)
	defer cl2.Close()
	writeBatches(ctx, t, cl2, stream, 50) // more drops
	c.rejoin(ctx, f, l, cl2, stream)
	writeBatches(ctx, t, cl2, stream, 5)
	all = c.sameEverywhere(ctx, stream)
	require.Positive(t, all[stream][0].Ordinal)
	require.Equal(t, oldestSegment(ctx, t, l, stream).Segment, oldestSegment(ctx, t, f, stream).Segment)
	c.copiedLittle(f, all[stream])
}

// TestClusterRejoinWhenRetentionLeftOnlyTheActiveSegment: retention by
// age dropped every sealed segment of a stream, so its only segment is
// the active one, which tier 2 never gets until it is sealed. A wiped
// member rejoining with join seals it through the member (a Seal entry),
// waits for its upload, and starts the stream there.
func TestClusterRejoinWhenRetentionLeftOnlyTheActiveSegment(t *testing.T) {
	bin := hostBinaries(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	c := newTier2Cluster(t, bin, filepath.Join(t.TempDir(), "objects"), "AOF2_RETENTION_MAX_AGE=1s")
	l := c.leader(ctx)
	cl, err := client.Dial(ctx, l.grpc)
	require.NoError(t, err)
	defer cl.Close()
	const stream = client.StreamID(7)
	writeBatches(ctx, t, cl, stream, 10)
	f := c.follower(l)
	c.wipe(f)
	var only client.SegmentRow
	testwait.Until(t, testwait.Default, 20*time.Millisecond, func() bool {
		rows, err := cl.Segments(ctx, client.SegmentFilter{Stream: new(stream)})
		require.NoError(t, err)
		if len(rows) != 1 || rows[0].BaseRecord == 0 {
			return false
		}
		only = rows[0]
		return true
	}, "retention drops every sealed segment")
	require.False(t, only.Sealed)
	c.rejoin(ctx, f, l, cl, stream) // small appends: they stay in the active segment
	_, err = cl.Append(ctx, stream, []byte("after"))
	require.NoError(t, err)
	all := c.sameEverywhere(ctx, stream)
	require.Equal(t, "after", string(all[stream][len(all[stream])-1].Payload))
	require.GreaterOrEqual(t, all[stream][0].Ordinal, only.BaseRecord)
	require.GreaterOrEqual(t, oldestSegment(ctx, t, f, stream).Segment, only.Segment)
}
