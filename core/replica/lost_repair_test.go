package replica_test

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/aof2/aof2/conformance/fake"
	"github.com/aof2/aof2/core/coordinator"
	"github.com/aof2/aof2/core/restore"
	"github.com/aof2/aof2/core/tier2"
	"github.com/aof2/aof2/core/types"
	"github.com/aof2/aof2/internal/testwait"
	"github.com/aof2/aof2/pluginapi"
)

// listCounter counts the listings of stream 1's objects.
type listCounter struct {
	*fake.Backend
	n atomic.Int64
}

func (l *listCounter) List(ctx context.Context, req pluginapi.ListRequest, fn func([]pluginapi.ObjectInfo) error) error {
	err := l.Backend.List(ctx, req, fn)
	if err == nil && strings.HasPrefix(req.Prefix, "streams/1/") {
		l.n.Add(1)
	}
	return err
}

// TestReplicaKeepsALostSegmentOutOfTier2: a segment the replica follows as
// lost (a restore recorded its loss) stays lost in the replica's manifest
// at every later listing, even though tier 2 holds a stray object under
// its id (the previous writer's last upload, which no history names): the
// listing's repair of followed segments whose records a crash lost must
// not record that object as the lost segment's tier-2 copy.
func TestReplicaKeepsALostSegmentOutOfTier2(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*testwait.Default)
	defer cancel()
	b := fake.New(fake.Options{})
	w := start(t, t.TempDir(), b, false)
	write(ctx, t, w, 100, 1)
	s, err := w.st.Lookup(1)
	require.NoError(t, err)
	require.NoError(t, s.Seal(ctx))
	testwait.Until(t, testwait.Default, 5*time.Millisecond, func() bool { return uploaded(s) }, "the writer's uploads")
	last := s.SegmentList()[len(s.SegmentList())-1].ID
	w.stop()

	bDir := t.TempDir()
	remote := newRemote(t, b)
	_, err = coordinator.Takeover(ctx, nil, bDir, remote)
	require.NoError(t, err)
	rep, err := restore.Run(ctx, restore.Config{DataDir: bDir, Remote: remote, Manifest: manifestOpts, SegmentSize: segSize}, nil)
	require.NoError(t, err)
	require.Contains(t, rep.Streams[0].Lost, last+1)
	stray := remote.Layout().SegmentObjectKey(types.SegmentKey{Stream: 1, Segment: last + 1})
	_, err = remote.Put(ctx, tier2.Upload{Key: stray, Data: []byte("the previous writer's last upload")})
	require.NoError(t, err)

	lc := &listCounter{Backend: b}
	r := start(t, t.TempDir(), lc, true) // lists every 50 ms
	testwait.Until(t, testwait.Default, 5*time.Millisecond, func() bool {
		rs, err := r.st.Lookup(1)
		if err != nil {
			return false
		}
		info, ok := rs.Segment(last + 1)
		return ok && info.Lost
	}, "the replica follows the id as lost")
	rs, err := r.st.Lookup(1)
	require.NoError(t, err)
	// Let listings pass over the followed segment.
	seen := lc.n.Load()
	testwait.Until(t, testwait.Default, 5*time.Millisecond, func() bool { return lc.n.Load() >= seen+3 }, "three more listings of the stream")
	ms, _ := rs.TierLog().Segment(last + 1)
	require.Empty(t, ms.Tier2.Key, "a lost segment has no tier-2 copy in the replica's manifest")
	info, ok := rs.Segment(last + 1)
	require.True(t, ok)
	require.True(t, info.Lost)
}
