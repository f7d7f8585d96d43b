package cluster

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
	"github.com/stretchr/testify/require"

	"github.com/aof2/aof2/core"
	"github.com/aof2/aof2/core/segment"
)

func openStore(t *testing.T, dir string) *core.Store {
	t.Helper()
	st, err := core.Open(dir, core.Config{SegmentSize: segment.MinCapacity, TailReplayed: true})
	require.NoError(t, err)
	return st
}

func entry(index uint64, c command) *raft.Log {
	return &raft.Log{Index: index, Type: raft.LogCommand, Data: c.encode()}
}

func payloads(rs []rec) []string {
	var out []string
	for _, r := range rs {
		out = append(out, r.Payload)
	}
	return out
}

// A crash keeps a prefix of an entry's records: the replay completes the
// entry from there, skips entries before it, and never duplicates.
func TestApplyCompletesATornEntry(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "store")
	st := openStore(t, dir)
	s, err := st.Stream(1)
	require.NoError(t, err)
	// Entry 4 was applied whole, entry 7 cut after two of its four records.
	_, err = s.AppendBatch([][]byte{[]byte("e4-0")}, core.AppendOptions{Timestamp: 1, ExtID: 4})
	require.NoError(t, err)
	_, err = s.AppendBatch([][]byte{[]byte("e7-0"), []byte("e7-1")}, core.AppendOptions{Timestamp: 2, ExtID: 7})
	require.NoError(t, err)
	require.NoError(t, s.FlushAll(context.Background()))
	require.NoError(t, st.Close())

	st = openStore(t, dir)
	defer st.Close()
	f := newFSM(context.Background(), st, hclog.NewNullLogger())
	recs := func(prefix string, n int) []Record {
		out := make([]Record, n)
		for i := range out {
			out[i] = Record{Timestamp: 2, Payload: fmt.Appendf(nil, "%s-%d", prefix, i)}
		}
		return out
	}
	res := f.ApplyBatch([]*raft.Log{
		entry(4, appendCommand(1, recs("e4", 1))),
		entry(7, appendCommand(1, recs("e7", 4))),
		entry(8, appendCommand(1, recs("e8", 1))),
		entry(9, command{kind: kindSeal, stream: 1}),
		entry(10, appendCommand(1, recs("e10", 1))),
	})
	require.Len(t, res[1].(*appliedEntry).Groups[0].IDs, 2, "the two records the crash cut")
	require.Empty(t, res[0].(*appliedEntry).Groups[0].IDs)
	got := readAll(t, st, 1)
	require.Equal(t, []string{"e4-0", "e7-0", "e7-1", "e7-2", "e7-3", "e8-0", "e10-0"}, payloads(got))
	require.Equal(t, []uint64{4, 7, 7, 7, 7, 8, 10}, []uint64{got[0].ExtID, got[1].ExtID, got[2].ExtID, got[3].ExtID, got[4].ExtID, got[5].ExtID, got[6].ExtID})
	require.NotEqual(t, got[5].ID.Segment(), got[6].ID.Segment(), "entry 9 sealed the segment")
	require.Equal(t, uint64(10), f.applied.Load())

	// Replaying everything again (a restart with no snapshot) changes nothing.
	f = newFSM(context.Background(), st, hclog.NewNullLogger())
	f.ApplyBatch([]*raft.Log{
		entry(7, appendCommand(1, recs("e7", 4))),
		entry(9, command{kind: kindSeal, stream: 1}),
		entry(10, appendCommand(1, recs("e10", 1))),
	})
	require.Equal(t, got, readAll(t, st, 1))
}

// A bad entry stops applying (fail-stop): nothing after it is applied,
// and the node refuses to snapshot past it.
func TestApplyStopsOnABadEntry(t *testing.T) {
	st := openStore(t, t.TempDir())
	defer st.Close()
	f := newFSM(context.Background(), st, hclog.NewNullLogger())
	bad := &raft.Log{Index: 2, Type: raft.LogCommand, Data: []byte("garbage!")}
	res := f.ApplyBatch([]*raft.Log{bad, entry(3, appendCommand(1, []Record{{Timestamp: 1, Payload: []byte("x")}}))})
	require.ErrorIs(t, res[0].(error), ErrFSMFailed)
	require.ErrorIs(t, res[1].(error), ErrFSMFailed)
	require.Empty(t, readAll(t, st, 1))
	_, err := f.Snapshot()
	require.ErrorIs(t, err, ErrFSMFailed)
}

// A record in the store without a Raft index (an append that bypassed the
// log) stops applying: taking its ext_id 0 for "nothing applied yet" would
// append the whole log again after it.
func TestApplyStopsOnARecordWrittenOutsideTheLog(t *testing.T) {
	st := openStore(t, t.TempDir())
	defer st.Close()
	s, err := st.Stream(1)
	require.NoError(t, err)
	_, err = s.AppendBatch([][]byte{[]byte("e4-0")}, core.AppendOptions{Timestamp: 1, ExtID: 4})
	require.NoError(t, err)
	_, err = s.AppendBatch([][]byte{[]byte("outside")}, core.AppendOptions{Timestamp: 2})
	require.NoError(t, err)
	f := newFSM(context.Background(), st, hclog.NewNullLogger())
	res := f.ApplyBatch([]*raft.Log{
		entry(4, appendCommand(1, []Record{{Timestamp: 1, Payload: []byte("e4-0")}})),
		entry(5, appendCommand(1, []Record{{Timestamp: 3, Payload: []byte("e5-0")}})),
	})
	require.ErrorIs(t, res[0].(error), ErrWrittenOutsideLog)
	require.ErrorIs(t, res[1].(error), ErrFSMFailed)
	require.Equal(t, []string{"e4-0", "outside"}, payloads(readAll(t, st, 1)), "nothing applied again")
}

// An entry holding several requests for one stream, cut by a crash in its
// second request, is completed from there on replay.
func TestApplyCompletesATornMultiRequestEntry(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "store")
	st := openStore(t, dir)
	s, err := st.Stream(1)
	require.NoError(t, err)
	// Entry 5: requests [a0 a1] [b0 b1] for stream 1 and [c0] for stream 2;
	// the crash kept a0 a1 b0 of stream 1 and nothing of stream 2.
	_, err = s.AppendBatch([][]byte{[]byte("a0"), []byte("a1"), []byte("b0")}, core.AppendOptions{Timestamp: 1, ExtID: 5})
	require.NoError(t, err)
	require.NoError(t, s.FlushAll(context.Background()))
	require.NoError(t, st.Close())

	st = openStore(t, dir)
	defer st.Close()
	f := newFSM(context.Background(), st, hclog.NewNullLogger())
	r := func(p ...string) []Record {
		var out []Record
		for _, x := range p {
			out = append(out, Record{Timestamp: 1, Payload: []byte(x)})
		}
		return out
	}
	res := f.ApplyBatch([]*raft.Log{entry(5, command{kind: kindAppend, groups: []group{
		{stream: 1, records: r("a0", "a1")}, {stream: 1, records: r("b0", "b1")}, {stream: 2, records: r("c0")}}})})
	e := res[0].(*appliedEntry)
	require.Empty(t, e.Groups[0].IDs)
	require.Len(t, e.Groups[1].IDs, 1)
	require.Len(t, e.Groups[2].IDs, 1)
	require.Equal(t, []string{"a0", "a1", "b0", "b1"}, payloads(readAll(t, st, 1)))
	require.Equal(t, []string{"c0"}, payloads(readAll(t, st, 2)))
}
