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
	"github.com/aof2/aof2/core/types"
)

// sealedTiering records the moves it is given, refusing, as the
// coordinator does, a segment that is not sealed here.
type sealedTiering struct {
	st  *core.Store
	mu  sync.Mutex
	got []types.SegmentKey // guarded by mu
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
