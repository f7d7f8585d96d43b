package cluster

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
	"github.com/stretchr/testify/require"

	"github.com/aof2/aof2/core"
	"github.com/aof2/aof2/core/manifest"
	"github.com/aof2/aof2/core/segment"
	"github.com/aof2/aof2/pluginapi"
)

// goneTiering holds no copy of an evicted segment, as a node whose
// tier-2 object the leader deleted for a Drop it has not applied: a
// read from it catches up first, as the coordinator does
// (droppedMeanwhile), and on the apply loop that is refused.
type goneTiering struct{}

func (goneTiering) AdmitSegment(core.SegmentKey, int64) error    { return nil }
func (goneTiering) SegmentSealed(*core.Stream, core.SegmentInfo) {}
func (goneTiering) SegmentRead(core.SegmentKey)                  {}
func (goneTiering) Describe(context.Context, core.SegmentKey) (segment.Header, segment.Footer, error) {
	return segment.Header{}, segment.Footer{}, errors.New("no copy")
}
func (goneTiering) Hydrate(_ context.Context, k core.SegmentKey, _ string) error {
	return fmt.Errorf("segment %d: %w", k.Segment, pluginapi.ErrNotFound)
}
func (goneTiering) ReadRecord(_ context.Context, k core.SegmentKey, _, _ int64) (core.Record, error) {
	return core.Record{}, fmt.Errorf("segment %d: %w", k.Segment, pluginapi.ErrNotFound)
}
func (g goneTiering) ReadFailed(ctx context.Context, k core.SegmentKey, _ error) error {
	return g.gone(ctx, k)
}
func (goneTiering) WarmArtifacts(context.Context, core.StreamID) ([]manifest.WarmArtifact, error) {
	return nil, nil
}
func (goneTiering) Tier2Segments(context.Context, core.StreamID) ([]manifest.Tier2Segment, error) {
	return nil, nil
}
func (goneTiering) CheckNewStream(core.StreamID) error            { return nil }
func (goneTiering) Repair(context.Context, core.SegmentKey) error { return errors.New("no copy") }

func (goneTiering) gone(ctx context.Context, k core.SegmentKey) error {
	var catchUp error = errors.New("caught up: the object is lost")
	if inApplyLoop(ctx) {
		catchUp = errCatchUpWhileApplying
	}
	return fmt.Errorf("segment %d: tier 2 has no object: %w", k.Segment, catchUp)
}

// entryAcrossSegments is the log of stream 1 used below: entry 3's
// records go past the first segment.
func entryAcrossSegments() []*raft.Log {
	big := make([]Record, 300)
	for i := range big {
		big[i] = Record{Timestamp: 3, Payload: bytes.Repeat([]byte{byte(i)}, 4000)}
	}
	return []*raft.Log{
		entry(1, appendCommand(1, []Record{{Timestamp: 1, Payload: []byte("first")}})),
		entry(3, appendCommand(1, big)),
		entry(5, appendCommand(1, []Record{{Timestamp: 5, Payload: []byte("after")}})),
	}
}

// behindWithGoneTail returns a store holding stream 1 as a node that
// applied entry 1 and the part of entry 3 in the first segment, sealed
// where the peer's is, its copy gone (evicted, no tier holds it).
func behindWithGoneTail(t *testing.T, peer *core.Store) *core.Store {
	t.Helper()
	ps, err := peer.Lookup(1)
	require.NoError(t, err)
	first := ps.SegmentList()[0]
	require.NotNil(t, first.Footer)
	st, err := core.Open(t.TempDir(), core.Config{SegmentSize: segment.MinCapacity, TailReplayed: true, Tiering: goneTiering{}})
	require.NoError(t, err)
	t.Cleanup(func() { _ = st.Close() })
	s, err := st.Stream(1)
	require.NoError(t, err)
	r, err := ps.NewReader(core.AtStart())
	require.NoError(t, err)
	defer r.Close()
	for range first.Footer.RecordCount {
		rec, err := r.Next()
		require.NoError(t, err)
		_, err = s.AppendCtx(context.Background(), rec.Payload, core.AppendOptions{Timestamp: rec.Timestamp, ExtID: rec.ExtID})
		require.NoError(t, err)
	}
	require.NoError(t, s.Seal(context.Background()))
	require.Equal(t, *first.Footer, *s.SegmentList()[0].Footer, "the same first segment as the peer's")
	require.NoError(t, s.Evict(first.ID))
	return st
}

// recordsFrom reads stream 1 of st from ordinal from on.
func recordsFrom(t *testing.T, st *core.Store, from uint64) []rec {
	t.Helper()
	s, err := st.Lookup(1)
	require.NoError(t, err)
	r, err := s.NewReader(core.AtOrdinal(from))
	require.NoError(t, err)
	defer r.Close()
	var out []rec
	for {
		x, err := r.Next()
		if err != nil {
			return out
		}
		out = append(out, rec{x.ID, x.Ordinal, x.ExtID, x.Timestamp, string(x.Payload)})
	}
}

// TestReplayCompletesAnEntryFromAPeer: a replay resumes at an entry
// whose records here lie in a segment with no copy left (countTail cannot
// count them); it copies the rest of the entry from a member that applied
// it, with the peer's ids, and applies on — the CI run where a rejoined
// member's apply loop waited on itself for that segment.
func TestReplayCompletesAnEntryFromAPeer(t *testing.T) {
	peer := openStore(t, t.TempDir())
	defer peer.Close()
	pf := newFSM(context.Background(), peer, hclog.NewNullLogger())
	pf.ApplyBatch(entryAcrossSegments())
	require.NoError(t, pf.err())
	ps, err := peer.Lookup(1)
	require.NoError(t, err)
	require.Greater(t, len(ps.SegmentList()), 1, "entry 3 goes past the first segment")

	st := behindWithGoneTail(t, peer)
	f := newFSM(context.Background(), st, hclog.NewNullLogger())
	f.peers, f.self = storePeer{st: peer, perReply: 7}, "me" // the rest of the entry over many replies
	f.mu.members = map[string]APIAddr{"me": {}, "p": {}}
	res := f.ApplyBatch(entryAcrossSegments())
	require.NoError(t, f.err())
	require.Empty(t, res[1].(*appliedEntry).Groups[0].IDs, "entry 3 completed by the copy")
	require.Len(t, res[2].(*appliedEntry).Groups[0].IDs, 1)

	cut := ps.SegmentList()[1].BaseRecord
	s, err := st.Lookup(1)
	require.NoError(t, err)
	require.Equal(t, ps.Info().Records, s.Info().Records)
	require.Equal(t, recordsFrom(t, peer, cut), recordsFrom(t, st, cut))
	require.Positive(t, f.copiedBytes.Load())
}

// TestReplayDoesNotGuessWithoutAPeer: no member that applied the entry
// answers; applying stops rather than guess how much of it is in.
func TestReplayDoesNotGuessWithoutAPeer(t *testing.T) {
	defer func(w time.Duration) { completeWait = w }(completeWait)
	completeWait = 300 * time.Millisecond
	peer := openStore(t, t.TempDir())
	defer peer.Close()
	newFSM(context.Background(), peer, hclog.NewNullLogger()).ApplyBatch(entryAcrossSegments())

	for name, p := range map[string]PeerReader{
		"behind": storePeer{st: peer, applied: 2},
		"none":   nil,
	} {
		t.Run(name, func(t *testing.T) {
			st := behindWithGoneTail(t, peer)
			s, err := st.Lookup(1)
			require.NoError(t, err)
			before := s.Info().Records
			f := newFSM(context.Background(), st, hclog.NewNullLogger())
			f.peers, f.self = p, "me"
			f.mu.members = map[string]APIAddr{"me": {}, "p": {}}
			res := f.ApplyBatch(entryAcrossSegments())
			require.ErrorIs(t, res[1].(error), ErrFSMFailed)
			require.ErrorIs(t, f.err(), errUncountable)
			require.Equal(t, before, s.Info().Records, "nothing appended")
		})
	}
}

// TestDropOfTheLastEntrysSegmentIsRefused: a Drop of a segment holding
// records of the stream's last entry is refused alike on every node (the
// leader keeps the object): after a crash, a replay of that entry would
// count its records from the store and miss those. Once another entry is
// appended the segment goes, and a replay of the whole log then appends
// nothing twice.
func TestDropOfTheLastEntrysSegmentIsRefused(t *testing.T) {
	ctx := context.Background()
	st := openStore(t, t.TempDir())
	defer st.Close()
	f := newFSM(ctx, st, hclog.NewNullLogger())
	tiering := &sealedTiering{st: st}
	f.tiering = tiering
	log := entryAcrossSegments()
	f.ApplyBatch(log[:2])
	require.NoError(t, f.err())
	s, err := st.Lookup(1)
	require.NoError(t, err)
	require.NoError(t, s.WaitSealed(ctx, 1))

	drop := entry(4, command{kind: kindDrop, stream: 1, segment: 1, object: object{Key: "k1"}})
	res := f.ApplyBatch([]*raft.Log{drop})
	require.ErrorIs(t, res[0].(error), errDropHoldsLastEntry)
	require.NoError(t, f.err(), "refused, not failed")
	_, kept := s.Segment(1)
	require.True(t, kept)

	f.ApplyBatch([]*raft.Log{log[2], entry(6, command{kind: kindDrop, stream: 1, segment: 1, object: object{Key: "k1"}})})
	require.NoError(t, f.err())
	_, kept = s.Segment(1)
	require.False(t, kept, "dropped once entry 5 is the last")
	before := readAll(t, st, 1)

	replay := newFSM(ctx, st, hclog.NewNullLogger())
	replay.tiering = tiering
	replay.ApplyBatch(append(entryAcrossSegments(), drop))
	require.NoError(t, replay.err())
	require.Equal(t, before, readAll(t, st, 1))
}

// TestReplayOfAnEntryCutByTheStreamsStart: every record from the first
// one kept here carries the entry a replay resumes, which may have begun
// in a segment no member keeps (a store a rejoin took from the cluster's
// oldest segment). A member that applied the entry completes it here;
// the records kept are all this node could count, and counting them as
// the entry's start appended the rest of it twice.
func TestReplayOfAnEntryCutByTheStreamsStart(t *testing.T) {
	ctx := context.Background()
	peer := openStore(t, t.TempDir())
	defer peer.Close()
	newFSM(ctx, peer, hclog.NewNullLogger()).ApplyBatch(entryAcrossSegments())
	ps, err := peer.Lookup(1)
	require.NoError(t, err)
	segs := ps.SegmentList()
	require.Greater(t, len(segs), 2)
	end := segs[2].BaseRecord // this node holds the first two segments' records

	st := openStore(t, t.TempDir())
	defer st.Close()
	s, err := st.Stream(1)
	require.NoError(t, err)
	r, err := ps.NewReader(core.AtStart())
	require.NoError(t, err)
	for range end {
		rec, err := r.Next()
		require.NoError(t, err)
		_, err = s.AppendCtx(context.Background(), rec.Payload, core.AppendOptions{Timestamp: rec.Timestamp, ExtID: rec.ExtID})
		require.NoError(t, err)
	}
	r.Close()
	require.NoError(t, s.Seal(ctx))
	require.NoError(t, s.DropHead(1)) // the store starts at segment 2, in entry 3
	cut := s.Info().FirstOrdinal
	require.Positive(t, cut)

	f := newFSM(ctx, st, hclog.NewNullLogger())
	f.peers, f.self = storePeer{st: peer}, "me"
	f.mu.members = map[string]APIAddr{"me": {}, "p": {}}
	f.ApplyBatch(entryAcrossSegments())
	require.NoError(t, f.err())
	require.Equal(t, ps.Info().Records, s.Info().Records)
	require.Equal(t, recordsFrom(t, peer, cut), recordsFrom(t, st, cut))
}

// TestReplayBehindEveryMembersRetention: every member that applied the
// entry dropped the records after this node's last one; no restart
// brings them back, so applying stops with ErrBehindRetention and the
// way out (a rejoin), not a retry for ever.
func TestReplayBehindEveryMembersRetention(t *testing.T) {
	ctx := context.Background()
	full := openStore(t, t.TempDir())
	defer full.Close()
	newFSM(ctx, full, hclog.NewNullLogger()).ApplyBatch(entryAcrossSegments())
	st := behindWithGoneTail(t, full)

	dropped := openStore(t, t.TempDir())
	defer dropped.Close()
	newFSM(ctx, dropped, hclog.NewNullLogger()).ApplyBatch(entryAcrossSegments())
	ds, err := dropped.Lookup(1)
	require.NoError(t, err)
	for _, id := range []core.SegmentID{1, 2} {
		require.NoError(t, ds.WaitSealed(ctx, id))
		require.NoError(t, ds.DropHead(id))
	}

	f := newFSM(ctx, st, hclog.NewNullLogger())
	f.peers, f.self = storePeer{st: dropped}, "me"
	f.mu.members = map[string]APIAddr{"me": {}, "p": {}}
	res := f.ApplyBatch(entryAcrossSegments())
	require.ErrorIs(t, res[1].(error), ErrFSMFailed)
	require.ErrorIs(t, f.err(), ErrBehindRetention)
}
