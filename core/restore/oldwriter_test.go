package restore_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/aof2/aof2/conformance/fake"
	"github.com/aof2/aof2/core"
	"github.com/aof2/aof2/core/coordinator"
	"github.com/aof2/aof2/core/manifest"
	"github.com/aof2/aof2/core/restore"
	"github.com/aof2/aof2/core/tier2"
	"github.com/aof2/aof2/core/types"
	"github.com/aof2/aof2/internal/testwait"
	"github.com/aof2/aof2/pluginapi"
)

// staleWriter shows its node the writer record as it was while stale is
// set: the node's check before each mutation passes after a takeover, as
// it does for a writer paused between its check and its write. The first
// create that finds its key taken ends the illusion (the node's next
// check sees the new record).
type staleWriter struct {
	*fake.Backend
	stale atomic.Bool
	seen  atomic.Pointer[pluginapi.ObjectInfo]
	taken atomic.Int32 // creates that found their key taken
}

func (s *staleWriter) Head(ctx context.Context, key string) (pluginapi.ObjectInfo, error) {
	info, err := s.Backend.Head(ctx, key)
	if key != tier2.WriterKey {
		return info, err
	}
	if old := s.seen.Load(); s.stale.Load() && old != nil {
		return *old, nil
	}
	if err == nil {
		s.seen.Store(&info)
	}
	return info, err
}

func (s *staleWriter) Put(ctx context.Context, req pluginapi.PutRequest, body io.Reader) (pluginapi.ObjectInfo, error) {
	info, err := s.Backend.Put(ctx, req, body)
	s.noteTaken(err)
	return info, err
}

func (s *staleWriter) noteTaken(err error) {
	if errors.Is(err, pluginapi.ErrAlreadyExists) || errors.Is(err, pluginapi.ErrPrecondition) {
		s.taken.Add(1)
		s.stale.Store(false)
	}
}

func (s *staleWriter) PutFile(ctx context.Context, req pluginapi.PutRequest, path string) (pluginapi.ObjectInfo, error) {
	info, err := s.Backend.PutFile(ctx, req, path)
	s.noteTaken(err)
	return info, err
}

// lastChunk returns the index and bytes of the newest commit-log chunk of
// stream s in b.
func lastChunk(t *testing.T, b *fake.Backend, s types.StreamID) (uint64, []byte) {
	t.Helper()
	layout, err := tier2.NewLayout("")
	require.NoError(t, err)
	var idx uint64
	key := ""
	for _, k := range objectsOf(b, layout, s, tier2.KindManifestChunk) {
		ref, _ := layout.Parse(k)
		if key == "" || ref.ID > idx {
			idx, key = ref.ID, k
		}
	}
	require.NotEmpty(t, key, "stream %d has a commit log", s)
	data, err := getAll(b, key)
	require.NoError(t, err)
	return idx, data
}

// TestOldWriterMeetsTheFence: a writer that slips a commit-log chunk
// through the gap between its check of the writer record and its write
// (here: it does not see the takeover until its write fails) finds the
// index taken by the new writer's fence. It is fenced by that failure
// alone — no data-loss alarm — and the chunk is no part of the history:
// the new writer restores, writes after its fence, and a third node
// restoring the prefix reads the new writer's records.
func TestOldWriterMeetsTheFence(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), testwait.Default)
	defer cancel()
	fb := fake.New(fake.Options{})
	sw := &staleWriter{Backend: fb}
	a := startNodeOver(t, t.TempDir(), sw, manifestOpts)
	s, err := a.st.Stream(1)
	require.NoError(t, err)
	for i := range 40 {
		_, err := s.AppendDurable(ctx, payload(1, i), core.AppendOptions{})
		require.NoError(t, err)
	}
	require.NoError(t, s.Seal(ctx))
	testwait.Until(t, testwait.Default, 5*time.Millisecond, func() bool { return uploaded(s) }, "A's stream in tier 2")
	sw.stale.Store(true) // A keeps seeing the writer record it saw last

	bDir := t.TempDir()
	rep, err := takeoverAndRestore(ctx, t, bDir, fb)
	require.NoError(t, err)
	fenceAt, data := lastChunk(t, fb, 1)
	f, ok, err := manifest.ChunkFence(data, fenceAt)
	require.NoError(t, err)
	require.True(t, ok, "restore ends the stream's log with its fence")
	require.Equal(t, uint64(2), f.Epoch)
	restored := rep.Streams[0]
	require.Equal(t, restored.FirstChunk+uint64(restored.Chunks), fenceAt, "the fence follows the history restored")

	// A, still believing it is the writer, commits more: its next chunk
	// takes the fence's index.
	for i := 40; i < 60; i++ {
		_, err := s.AppendDurable(ctx, payload(1, i), core.AppendOptions{})
		if err != nil {
			require.ErrorIs(t, err, core.ErrFenced)
			break
		}
	}
	_ = s.Seal(ctx)
	require.NoError(t, s.TierLog().Rotate(ctx))
	testwait.Until(t, testwait.Default, 5*time.Millisecond, func() bool { return a.c.Fenced() != nil }, "A fenced by its taken chunk index")
	require.Positive(t, sw.taken.Load(), "A's create met a taken key")
	_, err = s.AppendDurable(ctx, []byte("after"), core.AppendOptions{})
	require.ErrorIs(t, err, core.ErrFenced)
	idx, after := lastChunk(t, fb, 1)
	require.Equal(t, fenceAt, idx, "A extended nothing")
	require.Equal(t, data, after, "the fence is not replaced")
	require.Zero(t, a.remote.Stats().DataLoss, "a taken index after a takeover is no data-loss alarm")
	a.stop(t)

	b := startNodeOver(t, bDir, fb, manifestOpts)
	bs, err := b.st.Lookup(1)
	require.NoError(t, err)
	var bAcked []written
	for i := range 30 {
		p := payload(1, 1000+i)
		id, err := bs.AppendDurable(ctx, p, core.AppendOptions{})
		require.NoError(t, err)
		bAcked = append(bAcked, written{1, id, p})
	}
	require.NoError(t, bs.Seal(ctx))
	testwait.Until(t, testwait.Default, 5*time.Millisecond, func() bool { return uploaded(bs) }, "B's stream in tier 2")
	b.stop(t)
	require.Greater(t, func() uint64 { i, _ := lastChunk(t, fb, 1); return i }(), fenceAt, "B's log goes on after its fence")

	c := t.TempDir()
	_, err = takeoverAndRestore(ctx, t, c, fb)
	require.NoError(t, err)
	cn := startNodeOver(t, c, fb, manifestOpts)
	defer cn.stop(t)
	cs, err := cn.st.Lookup(1)
	require.NoError(t, err)
	for _, w := range bAcked {
		rec, err := cs.ReadAt(ctx, w.id)
		require.NoError(t, err, "record %s", w.id)
		require.Equal(t, w.payload, rec.Payload)
	}
}

// TestServeTakeoverFencesLocalHistory: a node whose data directory keeps
// its streams takes the prefix over (serve -takeover). At its first start
// at the new epoch it fences every stream's tier-2 log after its own
// history, once; a restart does not fence again. A node whose local
// history another writer has extended since is refused at start with
// ErrHistoryDiverged, its streams untouched in tier 2.
func TestServeTakeoverFencesLocalHistory(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), testwait.Default)
	defer cancel()
	fb := fake.New(fake.Options{})
	aDir := t.TempDir()
	// No automatic snapshots: one lets the coordinator trim the chunks
	// before it from tier 2, the fence's among them, and the fence could
	// no longer be counted (it was, 1 run in ~150 under load).
	mo := manifestOpts
	mo.SnapshotEveryBytes = -1
	writeAndStop := func(dir string, from int) {
		n := startNodeOver(t, dir, fb, mo)
		s, err := n.st.Stream(1)
		require.NoError(t, err)
		for i := range 20 {
			_, err := s.AppendDurable(ctx, payload(1, from+i), core.AppendOptions{})
			require.NoError(t, err)
		}
		require.NoError(t, s.Seal(ctx))
		testwait.Until(t, testwait.Default, 5*time.Millisecond, func() bool { return uploaded(s) }, "stream in tier 2")
		require.NoError(t, s.TierLog().Rotate(ctx)) // the records of the uploads too
		testwait.Until(t, testwait.Default, 5*time.Millisecond, func() bool { return uploaded(s) }, "stream's log in tier 2")
		n.stop(t)
	}
	writeAndStop(aDir, 0)
	before, _ := lastChunk(t, fb, 1)

	_, err := coordinator.Takeover(ctx, nil, aDir, newRemote(t, fb))
	require.NoError(t, err)
	writeAndStop(aDir, 100)
	layout, _ := tier2.NewLayout("")
	fences := func() map[uint64]manifest.Fence {
		out := map[uint64]manifest.Fence{}
		for _, k := range objectsOf(fb, layout, 1, tier2.KindManifestChunk) {
			ref, _ := layout.Parse(k)
			b, err := getAll(fb, k)
			require.NoError(t, err)
			f, ok, err := manifest.ChunkFence(b, ref.ID)
			require.NoError(t, err)
			if ok {
				out[ref.ID] = f
			}
		}
		return out
	}
	got := fences()
	require.Len(t, got, 1, "one fence")
	for idx, f := range got {
		// After the chunks A had uploaded (and the one its restart
		// sealed from what the first run left in its active chunk).
		require.Greater(t, idx, before)
		require.Equal(t, uint64(2), f.Epoch)
	}
	var wf struct{ Epoch, Fenced uint64 }
	raw, err := os.ReadFile(filepath.Join(aDir, coordinator.WriterFile))
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(raw, &wf))
	require.Equal(t, uint64(2), wf.Fenced)
	writeAndStop(aDir, 200)
	for idx := range fences() { // the first may be trimmed from tier 2 by now
		require.Contains(t, got, idx, "a restart at the same epoch fences nothing more")
	}

	// Another node takes over, restores and writes; A takes the prefix
	// back with its stale history.
	bDir := t.TempDir()
	_, err = takeoverAndRestore(ctx, t, bDir, fb)
	require.NoError(t, err)
	writeAndStop(bDir, 300)
	tip := objectsByKey(fb)
	_, err = coordinator.Takeover(ctx, nil, aDir, newRemote(t, fb))
	require.NoError(t, err)
	startA := func() error {
		remote := newRemote(t, fb)
		defer remote.Close(context.Background())
		c, err := coordinator.New(coordinator.Config{DataDir: aDir, Tier2: remote, ScanInterval: 10 * time.Millisecond})
		require.NoError(t, err)
		st, err := core.Open(aDir, core.Config{Tiering: c, SegmentSize: segSize, InitialSegmentSize: segSize, Manifest: mo})
		require.NoError(t, err)
		err = c.Start(ctx, st)
		require.NoError(t, st.Close())
		require.NoError(t, c.Close())
		return err
	}
	untouched := func() {
		for k, etag := range tip {
			info, ok := fb.Stored(k)
			require.True(t, ok, k)
			if k != tier2.WriterKey {
				require.Equal(t, etag, info.ETag, "%s untouched", k)
			}
		}
		require.Len(t, fb.Keys(), len(tip), "nothing added")
	}
	for range 2 { // refused again at a restart: its local fence never reached tier 2
		err = startA()
		require.ErrorIs(t, err, coordinator.ErrHistoryDiverged)
		require.ErrorContains(t, err, "aof2-host restore -stream 1")
		untouched()
	}
	// The same where B's tier-2 manifest trim left the index A would
	// create free: tier 2 holds chunks past A's history.
	bLast, _ := lastChunk(t, fb, 1)
	var aLast uint64
	entries, err := os.ReadDir(filepath.Join(aDir, "streams", "1", "manifest"))
	require.NoError(t, err)
	for _, e := range entries {
		if n, err := strconv.ParseUint(strings.TrimSuffix(e.Name(), ".mlog"), 10, 64); err == nil {
			aLast = max(aLast, n)
		}
	}
	require.Greater(t, bLast, aLast+1, "B's log reaches past A's")
	trimmed := map[string][]byte{}
	for _, k := range objectsOf(fb, layout, 1, tier2.KindManifestChunk) {
		if ref, _ := layout.Parse(k); ref.ID <= aLast+1 {
			data, err := getAll(fb, k)
			require.NoError(t, err)
			trimmed[k] = data
			require.NoError(t, fb.Delete(ctx, k))
			delete(tip, k)
		}
	}
	err = startA()
	require.ErrorIs(t, err, coordinator.ErrHistoryDiverged)
	require.ErrorContains(t, err, "past this data directory's chunk")
	untouched()
	for k, data := range trimmed { // B's history, whole again for the remedy below
		putRaw(t, fb, k, data)
	}

	// The remedy: the stream restored from tier 2 goes on after the
	// other writer's history.
	require.NoError(t, os.Rename(filepath.Join(aDir, "streams", "1"), filepath.Join(t.TempDir(), "aside")))
	_, err = restore.Run(ctx, restoreCfg(aDir, fb, t), []types.StreamID{1})
	require.NoError(t, err)
	writeAndStop(aDir, 400)
}

// listHook runs hook once, after the first List of a stream's objects.
type listHook struct {
	*fake.Backend
	once sync.Once
	hook func()
}

func (l *listHook) List(ctx context.Context, req pluginapi.ListRequest, fn func([]pluginapi.ObjectInfo) error) error {
	err := l.Backend.List(ctx, req, fn)
	if strings.HasPrefix(req.Prefix, "streams/1/") {
		l.once.Do(l.hook)
	}
	return err
}

// TestTakeoverDuringRestore: node C takes the prefix over and restores it
// while node B's restore of the same prefix runs. B's restore writes no
// fence after C's (it finds the writer record is no longer its own) and
// fails with ErrPrefixClaimed; the log ends with C's fence and C serves.
func TestTakeoverDuringRestore(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), testwait.Default)
	defer cancel()
	fb := fake.New(fake.Options{})
	writeStreams(t, fb, manifestOpts, 1)
	bDir, cDir := t.TempDir(), t.TempDir()
	_, err := coordinator.Takeover(ctx, nil, bDir, newRemote(t, fb))
	require.NoError(t, err)
	lh := &listHook{Backend: fb, hook: func() {
		_, err := takeoverAndRestore(ctx, t, cDir, fb)
		require.NoError(t, err)
	}}
	cfg := restoreCfg(bDir, fb, t)
	cfg.Remote = newRemoteOver(t, lh)
	_, err = restore.Run(ctx, cfg, nil)
	require.ErrorIs(t, err, coordinator.ErrPrefixClaimed)
	idx, data := lastChunk(t, fb, 1)
	f, ok, err := manifest.ChunkFence(data, idx)
	require.NoError(t, err)
	require.True(t, ok)
	require.Equal(t, uint64(3), f.Epoch, "the log ends with C's fence")
	c := startNode(t, cDir, fb)
	defer c.stop(t)
	s, err := c.st.Lookup(1)
	require.NoError(t, err)
	_, err = s.AppendDurable(ctx, []byte("C writes"), core.AppendOptions{})
	require.NoError(t, err)
	require.NoError(t, s.Seal(ctx))
	testwait.Until(t, testwait.Default, 5*time.Millisecond, func() bool { return uploaded(s) }, "C's stream in tier 2")
	require.Zero(t, c.remote.Stats().DataLoss)
}
