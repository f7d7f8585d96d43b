package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/aof2/aof2/client"
	"github.com/aof2/aof2/core"
	"github.com/aof2/aof2/core/segment"
)

// TestClusterDamagedMemberHeals: a member whose tail segment was damaged
// while it was stopped (a flipped bit in a record the durable mark proves)
// starts with the tail rewound to its last intact record and ends with the
// records its peers hold, at the same ids; the snapshots here are newer
// than the damage, so what lies before them is copied from a peer through
// its API, and the Raft log replays the rest. Nothing is filled, nothing
// is lost, the dropped bytes are kept.
func TestClusterDamagedMemberHeals(t *testing.T) {
	bin := hostBinaries(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	c := newTestCluster(t, bin, 3, "AOF2_CLUSTER_SNAPSHOT_THRESHOLD=16", "AOF2_CLUSTER_SNAPSHOT_INTERVAL=100ms", "AOF2_CLUSTER_TRAILING_LOGS=4")
	l := c.leader(ctx)
	cl, err := client.Dial(ctx, l.grpc)
	require.NoError(t, err)
	defer cl.Close()
	const stream = client.StreamID(3)
	for i := range 60 {
		_, err := cl.Append(ctx, stream, fmt.Appendf(nil, "before %d", i))
		require.NoError(t, err)
	}
	c.sameEverywhere(ctx, stream)

	f := c.follower(l)
	// A snapshot past the stream's first entries: the damage below (in
	// the stream's first record) is older than it.
	waitMetric(t, f.h, "aof_cluster_snapshot_index", 16)
	f.h.stop() // a clean stop: the durable mark proves every record
	f.h = nil
	segs, err := filepath.Glob(filepath.Join(f.dataDir, "streams", fmt.Sprint(stream), "segments", "*.seg"))
	require.NoError(t, err)
	require.NotEmpty(t, segs)
	slices.Sort(segs)
	tail := segs[len(segs)-1] // names start with the zero-padded segment id
	b, err := os.ReadFile(tail)
	require.NoError(t, err)
	b[segment.HeaderSize+segment.RecordHeaderSize+2] ^= 0x08 // the tail's first record
	require.NoError(t, os.WriteFile(tail, b, 0o644))

	for i := range 40 {
		_, err := cl.Append(ctx, stream, fmt.Appendf(nil, "after %d", i))
		require.NoError(t, err)
	}
	c.restart(f)
	t.Cleanup(func() {
		if t.Failed() && f.h != nil {
			t.Logf("%s:\n%s", f.id, f.h.stderr)
		}
	})
	all := c.sameEverywhere(ctx, stream)
	require.Len(t, all[stream], 100)
	for i, r := range all[stream] {
		want := fmt.Sprintf("before %d", i)
		if i >= 60 {
			want = fmt.Sprintf("after %d", i-60)
		}
		require.Equal(t, want, string(r.Payload), "record %d", i)
	}
	waitMetric(t, f.h, "aof_cluster_tails_rewound_total", 1)
	copied, ok := scrapeSum(f.h, "aof_cluster_catchup_bytes_total")
	require.True(t, ok)
	require.Positive(t, copied, "the records before the snapshot came from a peer")
	q, err := filepath.Glob(tail + core.QuarantineSuffix + "*")
	require.NoError(t, err)
	require.Len(t, q, 1, "the dropped bytes are kept beside the segment")
	st, ok := c.status(ctx, f)
	require.True(t, ok)
	require.Empty(t, st.ApplyFailed)
}
