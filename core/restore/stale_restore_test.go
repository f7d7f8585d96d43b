package restore_test

import (
	"context"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/aof2/aof2/conformance/fake"
	"github.com/aof2/aof2/core"
	"github.com/aof2/aof2/core/coordinator"
	"github.com/aof2/aof2/core/restore"
	"github.com/aof2/aof2/core/tier2"
	"github.com/aof2/aof2/internal/testwait"
	"github.com/aof2/aof2/pluginapi"
)

// putHook runs hook once, right after the first Put whose key match
// accepts has been stored.
type putHook struct {
	*fake.Backend
	match func(key string) bool
	once  sync.Once
	hook  func()
}

func (p *putHook) Put(ctx context.Context, req pluginapi.PutRequest, body io.Reader) (pluginapi.ObjectInfo, error) {
	info, err := p.Backend.Put(ctx, req, body)
	if err == nil && p.match(req.Key) {
		p.once.Do(p.hook)
	}
	return info, err
}

// TestRestoreThatLostItsClaimRecordsNoLoss: node B restores the prefix;
// right after B's fence is in tier 2, node C takes the prefix over. B no
// longer holds the writer record, so it must make no further tier-2
// mutation: it records no segment id as lost (C's restore decides what
// is lost, from what tier 2 holds when C lists it) and its restore fails
// with ErrPrefixClaimed instead of handing B a data directory of a
// prefix it no longer writes.
func TestRestoreThatLostItsClaimRecordsNoLoss(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), testwait.Default)
	defer cancel()
	fb := fake.New(fake.Options{})
	writeStreams(t, fb, manifestOpts, 1) // its active segment and reservation: ids a restore records lost
	layout, err := tier2.NewLayout("")
	require.NoError(t, err)
	require.Empty(t, objectsOf(fb, layout, 1, tier2.KindLost))

	bDir, cDir := t.TempDir(), t.TempDir()
	_, err = coordinator.Takeover(ctx, nil, bDir, newRemote(t, fb))
	require.NoError(t, err)
	ph := &putHook{Backend: fb,
		match: func(key string) bool { return strings.HasSuffix(key, tier2.ChunkSuffix) }, // B's fence
		hook: func() {
			_, err := coordinator.Takeover(ctx, nil, cDir, newRemote(t, fb))
			require.NoError(t, err)
		}}
	cfg := restoreCfg(bDir, fb, t)
	cfg.Remote = newRemoteOver(t, ph)
	_, err = restore.Run(ctx, cfg, nil)
	require.ErrorIs(t, err, coordinator.ErrPrefixClaimed, "B's restore ends once the prefix is C's")
	require.Empty(t, objectsOf(fb, layout, 1, tier2.KindLost), "no lost record from a node that no longer holds the prefix")

	// C restores and decides what is lost.
	rep, err := restore.Run(ctx, restoreCfg(cDir, fb, t), nil)
	require.NoError(t, err)
	require.NotEmpty(t, rep.Streams[0].Lost)
	require.Len(t, objectsOf(fb, layout, 1, tier2.KindLost), len(rep.Streams[0].Lost))
}

// TestServeTakeoverOverATrimmedLogWritesNothing: node A's last chunks
// never reached tier 2 (its commit-log uploads failed); node B took the
// prefix over, restored, wrote, and its tier-2 manifest trim removed the
// chunks below its newest one, leaving free some of the indices A's
// local log holds. A takes the prefix back and starts with its stale
// data directory: its history diverged from tier 2's, so the start is
// refused with ErrHistoryDiverged and — as docs/adr-fencing.md promises
// — nothing is written for the stream: none of A's stale chunks lands
// in the indices the trim freed.
func TestServeTakeoverOverATrimmedLogWritesNothing(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), testwait.Default)
	defer cancel()
	fb := fake.New(fake.Options{})
	mo := manifestOpts
	mo.SnapshotEveryBytes = -1 // no snapshot: no trim but the test's own
	layout, err := tier2.NewLayout("")
	require.NoError(t, err)

	aDir := t.TempDir()
	a := startNodeOver(t, aDir, fb, mo)
	s, err := a.st.Stream(1)
	require.NoError(t, err)
	for i := range 20 {
		_, err := s.AppendDurable(ctx, payload(1, i), core.AppendOptions{})
		require.NoError(t, err)
	}
	require.NoError(t, s.Seal(ctx))
	testwait.Until(t, testwait.Default, 5*time.Millisecond, func() bool { return uploaded(s) }, "A's stream in tier 2")
	require.NoError(t, s.TierLog().Rotate(ctx))
	testwait.Until(t, testwait.Default, 5*time.Millisecond, func() bool { return uploaded(s) }, "A's log in tier 2")
	// A's commit log stops reaching tier 2: its next chunks stay local.
	require.NoError(t, fb.Inject(fake.Fault{Mode: fake.ServerError, Ops: []fake.Op{fake.OpPut}, KeyPrefix: layout.StreamPrefix(1) + "manifest/"}))
	for i := range 8 {
		_, err := s.AppendDurable(ctx, payload(1, 100+i), core.AppendOptions{})
		require.NoError(t, err)
		require.NoError(t, s.Seal(ctx)) // manifest records to seal into a chunk
		require.NoError(t, s.TierLog().Rotate(ctx))
	}
	pending := 0
	for _, ch := range s.TierLog().SealedChunks() {
		if !ch.Uploaded {
			pending++
		}
	}
	require.GreaterOrEqual(t, pending, 8, "A's last chunks are not in tier 2")
	a.stop(t)
	fb.ClearFaults()

	// B takes over, restores, writes a little.
	bDir := t.TempDir()
	_, err = takeoverAndRestore(ctx, t, bDir, fb)
	require.NoError(t, err)
	b := startNodeOver(t, bDir, fb, mo)
	bs, err := b.st.Lookup(1)
	require.NoError(t, err)
	_, err = bs.AppendDurable(ctx, []byte("B writes"), core.AppendOptions{})
	require.NoError(t, err)
	require.NoError(t, bs.Seal(ctx))
	testwait.Until(t, testwait.Default, 5*time.Millisecond, func() bool { return uploaded(bs) }, "B's stream in tier 2")
	b.stop(t)

	// B's trim: only its newest chunk stays, at an index A's local log
	// also holds.
	bLast, _ := lastChunk(t, fb, 1)
	aLast := s.TierLog().SealedChunks()[len(s.TierLog().SealedChunks())-1].Index
	require.LessOrEqual(t, bLast, aLast, "B's log ends within A's local one")
	for _, k := range objectsOf(fb, layout, 1, tier2.KindManifestChunk) {
		if ref, _ := layout.Parse(k); ref.ID < bLast {
			require.NoError(t, fb.Delete(ctx, k))
		}
	}
	tip := objectsByKey(fb)

	_, err = coordinator.Takeover(ctx, nil, aDir, newRemote(t, fb))
	require.NoError(t, err)
	remote := newRemote(t, fb)
	defer remote.Close(context.Background())
	c, err := coordinator.New(coordinator.Config{DataDir: aDir, Tier2: remote, ScanInterval: 10 * time.Millisecond})
	require.NoError(t, err)
	st, err := core.Open(aDir, core.Config{Tiering: c, SegmentSize: segSize, InitialSegmentSize: segSize, Manifest: mo})
	require.NoError(t, err)
	err = c.Start(ctx, st)
	require.NoError(t, st.Close())
	require.NoError(t, c.Close())
	require.ErrorIs(t, err, coordinator.ErrHistoryDiverged)
	for k, etag := range tip {
		info, ok := fb.Stored(k)
		require.True(t, ok, k)
		if k != tier2.WriterKey {
			require.Equal(t, etag, info.ETag, "%s untouched", k)
		}
	}
	var added []string
	for _, k := range fb.Keys() {
		if _, ok := tip[k]; !ok {
			added = append(added, k)
		}
	}
	require.Empty(t, added, "nothing written for a stream whose history diverged")
}
