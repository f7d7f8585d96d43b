package cluster

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"sync"
	"testing"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
	"github.com/stretchr/testify/require"

	"github.com/aof2/aof2/core"
	"github.com/aof2/aof2/core/coordinator"
	"github.com/aof2/aof2/core/manifest"
	"github.com/aof2/aof2/core/types"
)

// sealedTiering records the moves it is given, refusing, as the
// coordinator does, a segment that is not sealed here.
type sealedTiering struct {
	st      *core.Store
	mu      sync.Mutex
	got     []types.SegmentKey // guarded by mu: the moves adopted
	dropped []types.SegmentKey // guarded by mu: the drops adopted
}

func (r *sealedTiering) AdoptUpload(ctx context.Context, k types.SegmentKey, key, etag string) error {
	s, err := r.st.Lookup(k.Stream)
	if err != nil {
		return err
	}
	if err := s.WaitSealed(ctx, k.Segment); err != nil {
		return fmt.Errorf("%w: %w", coordinator.ErrNotSealedHere, err)
	}
	r.mu.Lock()
	r.got = append(r.got, k)
	r.mu.Unlock()
	return nil
}

// AdoptDrop drops the stream's oldest segment, as the coordinator does
// (without the manifest).
func (r *sealedTiering) AdoptDrop(_ context.Context, k types.SegmentKey) error {
	s, err := r.st.Lookup(k.Stream)
	if err != nil {
		return err
	}
	if _, ok := s.Segment(k.Segment); !ok {
		return nil // dropped already: a replay
	}
	r.mu.Lock()
	r.dropped = append(r.dropped, k)
	r.mu.Unlock()
	return s.DropHead(k.Segment)
}

// Drop entries drop a stream's oldest segments on every node, a replay
// drops nothing more, and a node that restores a snapshot taken after
// them drops what it still holds below the snapshot's oldest segment.
func TestDropsAndTheSnapshotsOldestSegment(t *testing.T) {
	build := func() (*fsm, *sealedTiering, *core.Store) {
		st := openStore(t, t.TempDir())
		t.Cleanup(func() { _ = st.Close() })
		f := newFSM(context.Background(), st, hclog.NewNullLogger())
		tiering := &sealedTiering{st: st}
		f.tiering = tiering
		for i := 1; i <= 4; i++ {
			f.ApplyBatch([]*raft.Log{entry(uint64(2*i-1), appendCommand(1, rec1(fmt.Sprint("r", i)))), entry(uint64(2*i), command{kind: kindSeal, stream: 1})})
		}
		require.NoError(t, f.err())
		return f, tiering, st
	}
	a, ta, stA := build()
	b, tb, stB := build()
	drops := []*raft.Log{
		entry(9, command{kind: kindDrop, stream: 1, segment: 1, object: object{Key: "k1"}}),
		entry(10, command{kind: kindDrop, stream: 1, segment: 2, object: object{Key: "k2"}}),
	}
	a.ApplyBatch(drops)
	require.Equal(t, uint64(2), a.drops.Load())
	a.ApplyBatch(drops[1:]) // a replay after a restart
	require.NoError(t, a.err())
	require.Equal(t, []types.SegmentKey{{Stream: 1, Segment: 1}, {Stream: 1, Segment: 2}}, ta.dropped)
	sa, err := stA.Lookup(1)
	require.NoError(t, err)
	require.Equal(t, core.SegmentID(3), sa.SegmentList()[0].ID)

	snap, err := a.Snapshot()
	require.NoError(t, err)
	doc, err := json.Marshal(snap)
	require.NoError(t, err)
	require.NoError(t, b.Restore(io.NopCloser(bytes.NewReader(doc))))
	sb, err := stB.Lookup(1)
	require.NoError(t, err)
	require.Equal(t, core.SegmentID(3), sb.SegmentList()[0].ID, "dropped below the snapshot's oldest segment")
	require.Equal(t, ta.dropped, tb.dropped)
	require.Zero(t, b.drops.Load(), "drops a snapshot covers were counted when their entries applied")
	require.Equal(t, readAll(t, stA, 1), readAll(t, stB, 1))
}

// A node that missed a Seal and the TierMove of the segment it sealed,
// both covered by the snapshot it restores, applies the seal first and
// then records the move: it may evict that segment like the others.
func TestRestoreSealsThenRecordsTierMoves(t *testing.T) {
	st := openStore(t, t.TempDir())
	defer st.Close()
	f := newFSM(context.Background(), st, hclog.NewNullLogger())
	tiering := &sealedTiering{st: st}
	f.tiering = tiering
	f.ApplyBatch([]*raft.Log{entry(1, appendCommand(1, rec1("a")))})

	doc := snapshotDoc{Version: snapshotVersion, Applied: 3, Streams: []streamPosition{{
		Stream: 1, LastExt: 1, Records: 1, Sealed: true,
		Tier2: []tierObject{{Segment: 1, Key: "streams/1/segments/00000000000000000001.seg.zst", ETag: "e1"}},
	}}}
	b, err := json.Marshal(doc)
	require.NoError(t, err)
	require.NoError(t, f.Restore(io.NopCloser(bytes.NewReader(b))))

	s, err := st.Lookup(1)
	require.NoError(t, err)
	require.Equal(t, 1, s.Info().Sealed, "the seal the snapshot covers")
	require.Equal(t, []types.SegmentKey{{Stream: 1, Segment: 1}}, tiering.got, "the move of the segment it sealed")
	require.Zero(t, f.tierUnmatched.Load())
	require.Zero(t, f.tierMoves.Load(), "moves listed by a snapshot were counted when their entries applied")

	// The entry itself, applied on a node that has the segment sealed.
	f.ApplyBatch([]*raft.Log{entry(4, command{kind: kindTier, stream: 1, segment: 1, object: object{Key: "k", ETag: "e2"}})})
	require.Equal(t, uint64(1), f.tierMoves.Load())
	// And one naming a segment this node does not hold is passed over.
	f.ApplyBatch([]*raft.Log{entry(5, command{kind: kindTier, stream: 1, segment: 9, object: object{Key: "k9", ETag: "e9"}})})
	require.Equal(t, uint64(1), f.tierUnmatched.Load())
	require.NoError(t, f.err(), "passing over is no failure")
}

// A segment whose Drop applied but which a reader still holds here (its
// delete queued in the manifest, the segment still listed) is not the
// cluster's: the snapshot names the next one as the stream's oldest, and
// does not list it among the segments in tier 2.
func TestSnapshotPassesOverADropStillHeld(t *testing.T) {
	st := openStore(t, t.TempDir())
	defer st.Close()
	f := newFSM(context.Background(), st, hclog.NewNullLogger())
	f.tiering = &sealedTiering{st: st}
	for i := 1; i <= 3; i++ {
		f.ApplyBatch([]*raft.Log{entry(uint64(2*i-1), appendCommand(1, rec1(fmt.Sprint("r", i)))), entry(uint64(2*i), command{kind: kindSeal, stream: 1})})
	}
	f.ApplyBatch([]*raft.Log{entry(7, command{kind: kindTier, stream: 1, segment: 1, object: object{Key: "k1", ETag: "e1"}}),
		entry(8, command{kind: kindTier, stream: 1, segment: 2, object: object{Key: "k2", ETag: "e2"}})})
	require.NoError(t, f.err())
	s, err := st.Lookup(1)
	require.NoError(t, err)
	tl := s.TierLog()
	for _, id := range []core.SegmentID{1, 2} {
		require.NoError(t, tl.Record(context.Background(), manifest.UploadDone{Header: manifest.Header{SegmentID: id}, Key: fmt.Sprint("k", id), ETag: "e"}))
	}
	require.NoError(t, tl.Record(context.Background(), manifest.Tier2DeleteQueued{Header: manifest.Header{SegmentID: 1}, Key: "k1"}))

	snap, err := f.Snapshot()
	require.NoError(t, err)
	doc, err := json.Marshal(snap)
	require.NoError(t, err)
	var d snapshotDoc
	require.NoError(t, json.Unmarshal(doc, &d))
	p := d.Streams[0]
	require.Equal(t, core.SegmentID(2), p.Head)
	require.Equal(t, uint64(1), p.HeadRecord)
	var listed []core.SegmentID
	for _, o := range p.Tier2 {
		listed = append(listed, o.Segment)
	}
	require.Equal(t, []core.SegmentID{2}, listed, "segment 2 in tier 2; segment 1, dropped, not listed")
}
