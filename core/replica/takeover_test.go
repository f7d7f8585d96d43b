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

// TestReplicaFollowsATakeover: writer A loses its disk with records
// acknowledged in a segment never uploaded; B takes the prefix over,
// restores (recording the ids A may have used as lost in tier 2) and
// writes on. A replica that followed A goes on past the lost ids to B's
// segments — not stalled — and serves the same history as a node that
// restores the prefix: every record in tier 2 byte-exact, A's lost
// records refused as lost on both.
func TestReplicaFollowsATakeover(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*testwait.Default)
	defer cancel()
	b := fake.New(fake.Options{})
	a := start(t, t.TempDir(), b, false)
	kept := write(ctx, t, a, 120, 1)
	r := start(t, t.TempDir(), b, true)
	testwait.Until(t, testwait.Default, 5*time.Millisecond, func() bool { return caughtUp(r, a, 1) }, "the replica follows A")
	as, err := a.st.Lookup(1)
	require.NoError(t, err)
	var lost []written
	for i := range 30 {
		p := payload(1, 1000+i)
		id, err := as.AppendDurable(ctx, p, core.AppendOptions{})
		require.NoError(t, err)
		lost = append(lost, written{1, id, p})
	}
	a.stop() // the active segment is sealed but never uploaded: lost with A

	bDir := t.TempDir()
	_, err = coordinator.Takeover(ctx, nil, bDir, newRemote(t, b))
	require.NoError(t, err)
	rep, err := restore.Run(ctx, restore.Config{DataDir: bDir, Remote: newRemote(t, b), Manifest: manifestOpts, SegmentSize: segSize}, nil)
	require.NoError(t, err)
	require.NotEmpty(t, rep.Streams[0].Lost)
	bn := start(t, bDir, b, false)
	more := write(ctx, t, bn, 120, 1)
	testwait.Until(t, testwait.Default, 5*time.Millisecond, func() bool { return caughtUp(r, bn, 1) }, "the replica follows B past A's lost ids")
	require.Zero(t, gauge(t, r.reg, "aof_replica_stalled", "1"))

	cDir := t.TempDir()
	_, err = coordinator.Takeover(ctx, nil, cDir, newRemote(t, b))
	require.NoError(t, err)
	bn.stop()
	_, err = restore.Run(ctx, restore.Config{DataDir: cDir, Remote: newRemote(t, b), Manifest: manifestOpts, SegmentSize: segSize}, nil)
	require.NoError(t, err)
	c := start(t, cDir, b, false)
	readBack(ctx, t, r, append(kept, more...))
	readBack(ctx, t, c, append(kept, more...))
	for _, x := range lost {
		for _, n := range []*node{r, c} {
			s, err := n.st.Lookup(1)
			require.NoError(t, err)
			_, err = s.ReadAt(ctx, x.id)
			require.ErrorIs(t, err, core.ErrCorrupt, "record %s was lost with A", x.id)
		}
	}
	rs, err := r.st.Lookup(1)
	require.NoError(t, err)
	cs, err := c.st.Lookup(1)
	require.NoError(t, err)
	rl, cl := rs.SegmentList(), cs.SegmentList()
	require.GreaterOrEqual(t, len(cl), len(rl), "C adds B's reservation window as lost")
	for i := range rl {
		require.Equal(t, cl[i].ID, rl[i].ID)
		require.Equal(t, cl[i].BaseRecord, rl[i].BaseRecord, "segment %d", rl[i].ID)
		require.Equal(t, cl[i].BaseOffset, rl[i].BaseOffset, "segment %d", rl[i].ID)
		require.Equal(t, cl[i].Lost, rl[i].Lost, "segment %d", rl[i].ID)
	}
}

// TestReplicaDropsRetiredSegments: segments the writer's retention
// deleted from tier 2 are dropped by the replica, recorded so that a
// restart opens the stream without them.
func TestReplicaDropsRetiredSegments(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*testwait.Default)
	defer cancel()
	b := fake.New(fake.Options{})
	w := start(t, t.TempDir(), b, false)
	ws := write(ctx, t, w, 200, 1)
	dir := t.TempDir()
	r := start(t, dir, b, true)
	testwait.Until(t, testwait.Default, 5*time.Millisecond, func() bool { return caughtUp(r, w, 1) }, "the replica catches up")
	for id := types.SegmentID(1); id <= 2; id++ { // the writer's retention
		require.NoError(t, b.Delete(ctx, w.remote.Layout().SegmentObjectKey(types.SegmentKey{Stream: 1, Segment: id})))
	}
	rs, err := r.st.Lookup(1)
	require.NoError(t, err)
	testwait.Until(t, testwait.Default, 5*time.Millisecond, func() bool { return rs.SegmentList()[0].ID == 3 }, "the replica drops segments 1 and 2")
	r.stop()
	r2 := start(t, dir, b, true)
	rs, err = r2.st.Lookup(1)
	require.NoError(t, err, "the stream opens after the restart")
	require.Equal(t, types.SegmentID(3), rs.SegmentList()[0].ID)
	var rest []written
	for _, x := range ws {
		if x.id.Segment() >= 3 {
			rest = append(rest, x)
		}
	}
	readBack(ctx, t, r2, rest)
}
