package cluster

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
	"github.com/stretchr/testify/require"

	"github.com/aof2/aof2/core"
)

// TestCatchUpSealedLastRecordDiverged: a store whose last record sits in
// a sealed segment and differs from the peer's record at the same ordinal
// (same id: same segment, same offset, same size; other bytes) is refused
// (ErrDiverged), as the same divergence in the active segment is
// (TestCatchUpStopsAtADivergence "the same size, other bytes"). Before,
// the copy went on without comparing, and the node served a record the
// cluster never committed.
func TestCatchUpSealedLastRecordDiverged(t *testing.T) {
	peer := openStore(t, t.TempDir())
	defer peer.Close()
	pf := newFSM(context.Background(), peer, hclog.NewNullLogger())
	log := []command{
		appendCommand(1, []Record{{Timestamp: 1, Payload: []byte("a1")}, {Timestamp: 1, Payload: []byte("e1")}}),
		{kind: kindSeal, stream: 1},
		appendCommand(1, []Record{{Timestamp: 3, Payload: []byte("b1")}}),
	}
	for i, c := range log {
		pf.ApplyBatch([]*raft.Log{entry(uint64(i+1), c)})
	}
	require.NoError(t, pf.err())
	snap, err := pf.Snapshot()
	require.NoError(t, err)
	doc, err := json.Marshal(snap)
	require.NoError(t, err)

	// This node: entry 1 with another last record of the same size, sealed.
	st := openStore(t, t.TempDir())
	defer st.Close()
	s, err := st.Stream(1)
	require.NoError(t, err)
	_, err = s.AppendBatch([][]byte{[]byte("a1"), []byte("E1")}, core.AppendOptions{Timestamp: 1, ExtID: 1})
	require.NoError(t, err)
	require.NoError(t, s.Seal(context.Background()))
	require.NoError(t, s.Publish())

	_, err = restoreFromPeer(t, st, peer, doc, map[string]APIAddr{"peer": {GRPC: "p"}})
	got, want := readAll(t, st, 1), readAll(t, peer, 1)
	t.Logf("restore error: %v", err)
	t.Logf("here: %+v", got)
	t.Logf("peer: %+v", want)
	require.ErrorIs(t, err, ErrDiverged, "a store that disagrees with the peer on a record before the copied ones must not be caught up")
}
