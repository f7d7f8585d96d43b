package cluster

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"testing"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
	"github.com/stretchr/testify/require"

	"github.com/aof2/aof2/core"
)

// storePeer serves records from another member's store, in process: the
// read a peer's client API answers (host/node wires the real client).
type storePeer struct {
	st       *core.Store
	perReply int // at most this many records per reply (a peer's byte limit); 0: limit only
	// applied is the peer's applied index; 0: it applied every entry.
	applied uint64
}

func (p storePeer) Applied(context.Context, APIAddr) (uint64, error) {
	if p.applied == 0 {
		return math.MaxUint64, nil
	}
	return p.applied, nil
}

func (p storePeer) ReadRecords(ctx context.Context, _ APIAddr, stream core.StreamID, from uint64, limit int) ([]PeerRecord, error) {
	s, err := p.st.Lookup(stream)
	if err != nil {
		return nil, err
	}
	r, err := s.NewReader(core.AtOrdinal(from))
	if err != nil {
		return nil, err
	}
	defer r.Close()
	if p.perReply > 0 {
		limit = min(limit, p.perReply)
	}
	var out []PeerRecord
	for len(out) < limit {
		rec, err := r.NextCtx(ctx)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, err
		}
		out = append(out, PeerRecord{ID: rec.ID, Ordinal: from + uint64(len(out)), Timestamp: rec.Timestamp, ExtID: rec.ExtID, Payload: bytes.Clone(rec.Payload)})
	}
	return out, nil
}

// applyLog applies n append entries of a few records each to f, with a
// seal every seventh entry, and returns f's snapshot document.
func applyLog(t *testing.T, f *fsm, n int) []byte {
	t.Helper()
	for i := 1; i <= n; i++ {
		c := appendCommand(1, []Record{{Timestamp: int64(i), Payload: bytes.Repeat([]byte{byte(i)}, 3000)}, {Timestamp: int64(i), Payload: fmt.Appendf(nil, "e%d", i)}})
		if i%7 == 0 {
			c = command{kind: kindSeal, stream: 1}
		}
		f.ApplyBatch([]*raft.Log{entry(uint64(i), c)})
	}
	require.NoError(t, f.err())
	snap, err := f.Snapshot()
	require.NoError(t, err)
	b, err := json.Marshal(snap)
	require.NoError(t, err)
	return b
}

// restoreFromPeer restores snapshot document doc, with members in place
// of its own, into a new FSM over st (member "me") that reads other
// members' records from peer.
func restoreFromPeer(t *testing.T, st, peer *core.Store, doc []byte, members map[string]APIAddr) (*fsm, error) {
	t.Helper()
	return restoreFrom(t, st, storePeer{st: peer}, doc, members)
}

// restoreFrom is restoreFromPeer with any peer reader.
func restoreFrom(t *testing.T, st *core.Store, peer PeerReader, doc []byte, members map[string]APIAddr) (*fsm, error) {
	t.Helper()
	f := newFSM(context.Background(), st, hclog.NewNullLogger())
	f.peers, f.self = peer, "me"
	var d snapshotDoc
	require.NoError(t, json.Unmarshal(doc, &d))
	d.Members = members
	b, err := json.Marshal(d)
	require.NoError(t, err)
	return f, f.Restore(io.NopCloser(bytes.NewReader(b)))
}

// A node a snapshot finds behind copies the missing records from a peer
// and ends with the peer's segments: the same ids, the same seals, the
// same footers.
func TestCatchUpRebuildsThePeersSegments(t *testing.T) {
	peer := openStore(t, t.TempDir())
	defer peer.Close()
	doc := applyLog(t, newFSM(context.Background(), peer, hclog.NewNullLogger()), 900)

	st := openStore(t, t.TempDir())
	defer st.Close()
	f, err := restoreFromPeer(t, st, peer, doc, map[string]APIAddr{"me": {}, "peer": {GRPC: "p"}})
	require.NoError(t, err)
	require.Positive(t, f.copiedBytes.Load())

	want, err := peer.Lookup(1)
	require.NoError(t, err)
	got, err := st.Lookup(1)
	require.NoError(t, err)
	require.Equal(t, want.Info().Records, got.Info().Records)
	require.Equal(t, want.Info().LastExtID, got.Info().LastExtID)
	ws, gs := want.SegmentList(), got.SegmentList()
	require.Len(t, gs, len(ws))
	require.Greater(t, len(ws), 2)
	for i := range ws {
		require.Equal(t, ws[i].ID, gs[i].ID)
		require.Equal(t, ws[i].BaseRecord, gs[i].BaseRecord)
		if ws[i].Footer != nil {
			require.NotNil(t, gs[i].Footer, "segment %d sealed here too", ws[i].ID)
			require.Equal(t, *ws[i].Footer, *gs[i].Footer, "segment %d", ws[i].ID)
		}
	}
}

// firstEntryBehind returns a peer that applied five entries (applyLog)
// and its snapshot document, and a store that holds, in its active
// segment, the first entry's records with second as the second one (the
// peer's is "e1"), published as applying does.
func firstEntryBehind(t *testing.T, second []byte) (peer *core.Store, doc []byte, st *core.Store, s *core.Stream) {
	t.Helper()
	peer = openStore(t, t.TempDir())
	t.Cleanup(func() { _ = peer.Close() })
	doc = applyLog(t, newFSM(context.Background(), peer, hclog.NewNullLogger()), 5)
	st = openStore(t, t.TempDir())
	t.Cleanup(func() { _ = st.Close() })
	s, err := st.Stream(1)
	require.NoError(t, err)
	_, err = s.AppendBatch([][]byte{bytes.Repeat([]byte{1}, 3000), second}, core.AppendOptions{Timestamp: 1, ExtID: 1})
	require.NoError(t, err)
	require.NoError(t, s.Publish())
	return peer, doc, st, s
}

// A store that disagrees with the peer on what precedes the missing
// records stops the copy before appending a record at another id than
// the peer's: a seal the peer never made, or a last record in the active
// segment that is not the peer's (the next record's offset follows from
// it).
func TestCatchUpStopsAtADivergence(t *testing.T) {
	for _, tc := range []struct {
		name   string
		second []byte // the store's second record; the peer's is "e1"
		seal   bool
	}{
		{"a seal the peer never made", []byte("e1"), true},
		{"another last record", []byte("not e1"), false},
		{"the same size, other bytes", []byte("E1"), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			peer, doc, st, s := firstEntryBehind(t, tc.second)
			if tc.seal {
				require.NoError(t, s.Seal(context.Background()))
			}
			_, err := restoreFromPeer(t, st, peer, doc, map[string]APIAddr{"peer": {GRPC: "p"}})
			require.ErrorIs(t, err, ErrDiverged)
			require.ErrorIs(t, err, ErrBehindSnapshot)
			require.Equal(t, uint64(2), s.Info().Records, "nothing appended at another id")
		})
	}
}

// A peer whose replies hold one record each (its byte limit, with large
// records) still brings a node whose last record is in its active segment
// up to date: the reply that holds only the record compared is no sign
// that the peer is behind.
func TestCatchUpOneRecordPerReply(t *testing.T) {
	peer, doc, st, _ := firstEntryBehind(t, []byte("e1"))
	f, err := restoreFrom(t, st, storePeer{st: peer, perReply: 1}, doc, map[string]APIAddr{"peer": {GRPC: "p"}})
	require.NoError(t, err)
	require.Positive(t, f.copiedBytes.Load())
	require.Equal(t, readAll(t, peer, 1), readAll(t, st, 1))
}

// After retention dropped a stream's first segments, a node behind the
// snapshot copies from the cluster's oldest segment on when it holds
// every record before it (its last one, in a segment every member
// dropped, is compared with nothing), and drops what it holds below.
// One that lacks records before that segment fails with
// ErrBehindRetention: no member holds them.
func TestCatchUpAfterRetention(t *testing.T) {
	peer := openStore(t, t.TempDir())
	defer peer.Close()
	pf := newFSM(context.Background(), peer, hclog.NewNullLogger())
	pf.tiering = &sealedTiering{st: peer}
	log := []command{
		appendCommand(1, []Record{{Timestamp: 1, Payload: []byte("a1")}, {Timestamp: 1, Payload: []byte("a2")}}),
		{kind: kindSeal, stream: 1},
		appendCommand(1, []Record{{Timestamp: 3, Payload: []byte("b1")}, {Timestamp: 3, Payload: []byte("b2")}}),
		{kind: kindSeal, stream: 1},
		appendCommand(1, []Record{{Timestamp: 5, Payload: []byte("c1")}}),
		{kind: kindDrop, stream: 1, segment: 1, object: object{Key: "k1"}},
		{kind: kindDrop, stream: 1, segment: 2, object: object{Key: "k2"}},
	}
	for i, c := range log {
		pf.ApplyBatch([]*raft.Log{entry(uint64(i+1), c)})
	}
	require.NoError(t, pf.err())
	snap, err := pf.Snapshot()
	require.NoError(t, err)
	doc, err := json.Marshal(snap)
	require.NoError(t, err)
	var d snapshotDoc
	require.NoError(t, json.Unmarshal(doc, &d))
	require.Equal(t, core.SegmentID(3), d.Streams[0].Head)
	require.Equal(t, uint64(4), d.Streams[0].HeadRecord)

	// behind returns a node that applied the first n entries.
	behind := func(n int) (*core.Store, *fsm) {
		st := openStore(t, t.TempDir())
		t.Cleanup(func() { _ = st.Close() })
		f := newFSM(context.Background(), st, hclog.NewNullLogger())
		f.tiering, f.peers, f.self = &sealedTiering{st: st}, storePeer{st: peer}, "me"
		for i, c := range log[:n] {
			f.ApplyBatch([]*raft.Log{entry(uint64(i+1), c)})
		}
		require.NoError(t, f.err())
		d.Members = map[string]APIAddr{"me": {}, "peer": {GRPC: "p"}}
		return st, f
	}
	restore := func(f *fsm) error {
		b, err := json.Marshal(d)
		require.NoError(t, err)
		return f.Restore(io.NopCloser(bytes.NewReader(b)))
	}

	st, f := behind(3) // every record before segment 3, its last in its active segment 2
	require.NoError(t, restore(f))
	s, err := st.Lookup(1)
	require.NoError(t, err)
	segs := s.SegmentList()
	require.Equal(t, core.SegmentID(3), segs[0].ID, "dropped below the cluster's oldest segment")
	require.Equal(t, uint64(5), s.Info().Records)
	require.Equal(t, readAll(t, peer, 1), readAll(t, st, 1))

	_, f = behind(1) // lacks b1 and b2, which no member holds
	err = restore(f)
	require.ErrorIs(t, err, ErrBehindRetention)
	require.ErrorIs(t, err, ErrBehindSnapshot)
}
