package replica_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/aof2/aof2/conformance/fake"
	"github.com/aof2/aof2/core"
	"github.com/aof2/aof2/core/coordinator"
	"github.com/aof2/aof2/core/restore"
	"github.com/aof2/aof2/core/types"
	"github.com/aof2/aof2/internal/testwait"
)

// TestReplicaStartsAtARecordedLoss: the stream's first live id in
// tier 2 is one a restore recorded as lost (the writer's retention deleted
// the cold segments before it). A new replica must follow the lost ids and
// then the writer's later segments; it must not sit on an empty stream
// reporting itself caught up.
func TestReplicaStartsAtARecordedLoss(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*testwait.Default)
	defer cancel()
	b := fake.New(fake.Options{})
	// A: segments 1..3 uploaded, then records in segment 4 that never reach tier 2.
	a := start(t, t.TempDir(), b, false)
	write(ctx, t, a, 120, 1)
	as, err := a.st.Lookup(1)
	require.NoError(t, err)
	testwait.Until(t, testwait.Default, 5*time.Millisecond, func() bool { return uploaded(as) }, "A's uploads")
	for i := range 30 {
		_, err := as.AppendDurable(ctx, payload(1, 1000+i), core.AppendOptions{})
		require.NoError(t, err)
	}
	a.stop()

	// B takes over and restores: ids 4.. are recorded lost in tier 2.
	bDir := t.TempDir()
	_, err = coordinator.Takeover(ctx, nil, bDir, newRemote(t, b))
	require.NoError(t, err)
	rep, err := restore.Run(ctx, restore.Config{DataDir: bDir, Remote: newRemote(t, b), Manifest: manifestOpts, SegmentSize: segSize}, nil)
	require.NoError(t, err)
	require.Equal(t, types.SegmentID(4), rep.Streams[0].Lost[0])

	// B's retention deletes the cold segments 1..3; the lost ids stay.
	writerRetention = coordinator.Retention{MaxBytes: 10000}
	bn := start(t, bDir, b, false)
	writerRetention = coordinator.Retention{}
	layout := bn.remote.Layout()
	testwait.Until(t, testwait.Default, 5*time.Millisecond, func() bool {
		l, err := bn.remote.ListStream(ctx, 1)
		return err == nil && len(l.Segments) == 0 && len(l.Lost) > 0 && l.Lost[0].Ref.ID == 4
	}, "B's retention deletes segments 1..3 and keeps the lost ids")
	bn.stop()

	// B again, without retention, writes on: new segments after the lost ids.
	bn = start(t, bDir, b, false)
	more := write(ctx, t, bn, 80, 1)
	bs, err := bn.st.Lookup(1)
	require.NoError(t, err)
	testwait.Until(t, testwait.Default, 5*time.Millisecond, func() bool { return uploaded(bs) }, "B's uploads")
	l, err := bn.remote.ListStream(ctx, 1)
	require.NoError(t, err)
	t.Logf("tier 2: lost %d..%d, segments %d..%d", l.Lost[0].Ref.ID, l.Lost[len(l.Lost)-1].Ref.ID, l.Segments[0].Ref.ID, l.Segments[len(l.Segments)-1].Ref.ID)
	_ = layout

	// A new replica.
	r := start(t, t.TempDir(), b, true)
	deadline := time.Now().Add(10 * time.Second)
	var rl []core.SegmentInfo
	for time.Now().Before(deadline) {
		if rs, err := r.st.Lookup(1); err == nil {
			rl = rs.SegmentList()
			if caughtUp(r, bn, 1) {
				break
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	stalled, _ := gaugeValue(r.reg, "aof_replica_stalled", "1")
	lagRecs, _ := gaugeValue(r.reg, "aof_replica_lag_records", "1")
	t.Logf("replica: %d segments, stalled=%v lag_records=%v", len(rl), stalled, lagRecs)
	require.True(t, caughtUp(r, bn, 1), "the replica follows the lost ids and B's segments (it holds %d segments)", len(rl))
	readBack(ctx, t, r, more)
}
