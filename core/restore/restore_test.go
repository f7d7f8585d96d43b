package restore_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/stretchr/testify/require"

	"github.com/aof2/aof2/conformance/fake"
	"github.com/aof2/aof2/core"
	"github.com/aof2/aof2/core/budget"
	"github.com/aof2/aof2/core/coordinator"
	"github.com/aof2/aof2/core/manifest"
	"github.com/aof2/aof2/core/restore"
	"github.com/aof2/aof2/core/segment"
	"github.com/aof2/aof2/core/tier2"
	"github.com/aof2/aof2/core/types"
	"github.com/aof2/aof2/internal/testwait"
)

const segSize = segment.MinCapacity

// node is a store with its coordinator over a shared fake bucket.
type node struct {
	dir    string
	remote *tier2.Store
	c      *coordinator.Coordinator
	st     *core.Store
}

var manifestOpts = manifest.Options{ChunkCapacity: manifest.MinChunkCapacity, SnapshotEveryChunks: 3, RotationPeriod: 5 * time.Millisecond}

func newRemote(t testing.TB, b *fake.Backend) *tier2.Store {
	t.Helper()
	remote, err := tier2.New(b, tier2.Config{Logger: hclog.NewNullLogger()})
	require.NoError(t, err)
	return remote
}

func startNode(t testing.TB, dir string, b *fake.Backend) *node {
	t.Helper()
	remote := newRemote(t, b)
	c, err := coordinator.New(coordinator.Config{DataDir: dir, Tier2: remote, ScanInterval: 10 * time.Millisecond,
		Tier0: budget.Config{MaxBytes: 4 * segSize, Policy: budget.PolicyTier2}})
	require.NoError(t, err)
	st, err := core.Open(dir, core.Config{Tiering: c, SegmentSize: segSize, InitialSegmentSize: segSize, Manifest: manifestOpts})
	if err != nil {
		_ = c.Close()
	}
	require.NoError(t, err)
	require.NoError(t, c.Start(context.Background(), st))
	return &node{dir: dir, remote: remote, c: c, st: st}
}

func (n *node) stop(t testing.TB) {
	t.Helper()
	require.NoError(t, n.st.Close())
	require.NoError(t, n.c.Close())
	require.NoError(t, n.remote.Close(context.Background()))
}

func payload(s types.StreamID, i int) []byte {
	return fmt.Appendf(nil, "stream %d record %06d %s", s, i, make([]byte, 1500+i%700))
}

type written struct {
	stream  types.StreamID
	id      core.RecordID
	payload []byte
}

// inTier2 reports whether every sealed segment and chunk of s is in tier
// 2 and tier 2 holds at least one snapshot of it.
func inTier2(s *core.Stream, b *fake.Backend, layout tier2.Layout) bool {
	for _, info := range s.SegmentList() {
		if ms, _ := s.TierLog().Segment(info.ID); info.Footer != nil && ms.Tier2.Key == "" {
			return false
		}
	}
	for _, ch := range s.TierLog().SealedChunks() {
		if !ch.Uploaded {
			return false
		}
	}
	return hasSnapshot(s.ID(), b, layout)
}

func hasSnapshot(s types.StreamID, b *fake.Backend, layout tier2.Layout) bool {
	for _, k := range b.Keys() {
		if ref, err := layout.Parse(k); err == nil && ref.Stream == s && ref.Kind == tier2.KindSnapshot {
			return true
		}
	}
	return false
}

func restoreCfg(dir string, b *fake.Backend, t testing.TB) restore.Config {
	return restore.Config{DataDir: dir, Remote: newRemote(t, b), Manifest: manifestOpts, SegmentSize: segSize}
}

// TestRestoreRebuildsTheNode is the disaster-recovery path in process:
// two streams written, every sealed segment uploaded, then records
// acknowledged in active segments that never reach tier 2; the data
// directory is lost. restore rebuilds a new one from the bucket alone:
// every record tier 2 holds reads back byte-exact with its id, the
// active segments are reported lost, and appends continue in a segment
// no earlier record used.
func TestRestoreRebuildsTheNode(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), testwait.Default)
	defer cancel()
	b := fake.New(fake.Options{})
	a := startNode(t, t.TempDir(), b)
	layout := a.remote.Layout()
	var kept, lost []written
	for _, sid := range []types.StreamID{1, 2} {
		s, err := a.st.Stream(sid)
		require.NoError(t, err)
		// Enough records that tier 2 holds a snapshot of the stream.
		i := 0
		for ; i < 900 || (!hasSnapshot(sid, b, layout) && i < 20000); i++ {
			p := payload(sid, i)
			id, err := s.AppendCtx(ctx, p, core.AppendOptions{})
			require.NoError(t, err)
			kept = append(kept, written{sid, id, p})
		}
		require.NoError(t, s.Seal(ctx))
		testwait.Until(t, testwait.Default, 5*time.Millisecond, func() bool { return inTier2(s, b, layout) },
			"stream %d in tier 2 with a snapshot", sid)
		for end := i + 50; i < end; i++ {
			p := payload(sid, i)
			id, err := s.AppendDurable(ctx, p, core.AppendOptions{})
			require.NoError(t, err)
			lost = append(lost, written{sid, id, p})
		}
		_, err = a.remote.Reserve(ctx, sid, lost[len(lost)-1].id.Segment()+1) // MANUAL-RESERVE
		require.NoError(t, err)
	}
	a.stop(t)

	dir := t.TempDir()
	rep, err := restore.Run(ctx, restoreCfg(dir, b, t), nil)
	require.NoError(t, err)
	require.Len(t, rep.Streams, 2)
	for _, sr := range rep.Streams {
		require.NotNil(t, sr.Snapshot, "stream %d restored from a snapshot", sr.Stream)
		require.NotEmpty(t, sr.Lost, "stream %d: the active segment is lost", sr.Stream)
		require.Positive(t, sr.Cold)
	}
	_, err = os.Stat(filepath.Join(dir, restore.StagingDir))
	require.True(t, errors.Is(err, os.ErrNotExist), "the staging directory is gone")

	n := startNode(t, dir, b)
	defer n.stop(t)
	for _, w := range kept {
		s, err := n.st.Lookup(w.stream)
		require.NoError(t, err)
		rec, err := s.ReadAt(ctx, w.id)
		require.NoError(t, err, "record %s", w.id)
		require.Equal(t, w.payload, rec.Payload, "record %s", w.id)
	}
	for _, w := range lost {
		s, err := n.st.Lookup(w.stream)
		require.NoError(t, err)
		_, err = s.ReadAt(ctx, w.id)
		require.Error(t, err, "record %s was never in tier 2", w.id)
	}
	for _, sid := range []types.StreamID{1, 2} {
		s, err := n.st.Lookup(sid)
		require.NoError(t, err)
		id, err := s.AppendDurable(ctx, []byte("after the restore"), core.AppendOptions{})
		require.NoError(t, err)
		for _, w := range slices.Concat(kept, lost) {
			if w.stream == sid {
				require.Greater(t, id.Segment(), w.id.Segment(), "a new record never takes a used segment id")
			}
		}
	}
}
