package cluster

import (
	"bytes"
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/aof2/aof2/core"
	"github.com/aof2/aof2/core/segment"
)

func reviewHuge() []byte {
	return bytes.Repeat([]byte{'x'}, int(segment.MaxRecordSize(segment.MinCapacity))+1)
}

// applyThenReplay applies e to a fresh store, restarts (clean close and
// reopen), replays e as raft does after a restart without a snapshot, and
// returns the entry's result and the stream's payloads before and after.
func applyThenReplay(t *testing.T, e *raft.Log) (*appliedEntry, []string, []string) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "store")
	st := openStore(t, dir)
	f := newFSM(context.Background(), st, hclog.NewNullLogger())
	res := f.ApplyBatch([]*raft.Log{e})
	require.NoError(t, f.err())
	before := payloads(readAll(t, st, 1))
	s, err := st.Lookup(1)
	require.NoError(t, err)
	require.NoError(t, s.FlushAll(context.Background()))
	require.NoError(t, st.Close())

	st = openStore(t, dir)
	defer st.Close()
	f = newFSM(context.Background(), st, hclog.NewNullLogger())
	f.ApplyBatch([]*raft.Log{e})
	require.NoError(t, f.err())
	return res[0].(*appliedEntry), before, payloads(readAll(t, st, 1))
}

// TestRefusedGroupDoesNotCountAtReplay: a group refused whole (one record
// too large) followed, in the same entry, by another request for the same
// stream: the replay's skip count does not take the refused group as
// present, so the next group is not applied again.
func TestRefusedGroupDoesNotCountAtReplay(t *testing.T) {
	e := entry(1, command{kind: kindAppend, groups: []group{
		{stream: 1, records: []Record{{Timestamp: 1, Payload: reviewHuge()}}},
		{stream: 1, records: []Record{{Timestamp: 3, Payload: []byte("b0")}, {Timestamp: 3, Payload: []byte("b1")}}},
	}})
	ae, before, after := applyThenReplay(t, e)
	require.ErrorIs(t, ae.Groups[0].Err, core.ErrRecordTooLarge)
	require.Equal(t, []string{"b0", "b1"}, before)
	require.Equal(t, before, after, "replaying the entry after a restart changed the store")
}

// TestPartlyRefusedGroupAppendsNothing: a group whose records span two
// timestamps (two runs), the second refused: nothing of it is appended (it
// is reported refused), and the replay does not duplicate the next group.
func TestPartlyRefusedGroupAppendsNothing(t *testing.T) {
	e := entry(1, command{kind: kindAppend, groups: []group{
		{stream: 1, records: []Record{{Timestamp: 1, Payload: []byte("a0")}, {Timestamp: 2, Payload: reviewHuge()}}},
		{stream: 1, records: []Record{{Timestamp: 3, Payload: []byte("b0")}, {Timestamp: 3, Payload: []byte("b1")}}},
	}})
	ae, before, after := applyThenReplay(t, e)
	require.ErrorIs(t, ae.Groups[0].Err, core.ErrRecordTooLarge)
	assert.NotContains(t, before, "a0", "group 0 reported refused, yet its first record was appended")
	assert.Equal(t, before, after, "replaying the entry after a restart changed the store")
}

// TestClusterRefusedAppendLeavesNothing: through Node.Append on a real
// cluster, a request refused with ErrRecordTooLarge leaves none of its
// records on any node.
func TestClusterRefusedAppendLeavesNothing(t *testing.T) {
	c := newTestCluster(t, 3, LogStoreBolt)
	l := c.leader()
	ctx := context.Background()
	_, err := l.node.Append(ctx, 1, []Record{{Timestamp: 1, Payload: []byte("a0")}, {Timestamp: 2, Payload: reviewHuge()}})
	require.ErrorIs(t, err, core.ErrRecordTooLarge, "the caller is told the request was refused")
	got := c.requireSame(1)
	require.Empty(t, got[1], "a refused request left records on every node: %+v", got[1])
}

// TestClusterRestartAfterRefusedGroupAgrees: on a real cluster, the entry
// the leader's group commit builds when a too-large request and another
// request for the same stream arrive together. A follower restarted
// cleanly replays it and ends with the same records as the others (before,
// one more: ids diverged across members).
func TestClusterRestartAfterRefusedGroupAgrees(t *testing.T) {
	c := newTestCluster(t, 3, LogStoreBolt)
	l := c.leader()
	ctx := context.Background()
	// What proposeLoop builds from two queued proposals (proposer.go).
	cmd := command{kind: kindAppend, groups: []group{
		{stream: 1, records: []Record{{Timestamp: 1, Payload: reviewHuge()}}},
		{stream: 1, records: []Record{{Timestamp: 2, Payload: []byte("b0")}, {Timestamp: 2, Payload: []byte("b1")}}},
	}}
	res, err := l.node.wait(ctx, l.node.raft.Apply(cmd.encode(), 5*time.Second))
	require.NoError(t, err)
	ae := res.(*appliedEntry)
	require.ErrorIs(t, ae.Groups[0].Err, core.ErrRecordTooLarge)
	require.Len(t, ae.Groups[1].IDs, 2)
	c.requireSame(1)

	f := c.followers(l)[0]
	c.stop(f)
	c.start(f)
	got := c.requireSame(1)
	t.Logf("after the restart: %v", payloads(got[1]))
}
