package restore_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/aof2/aof2/conformance/fake"
	"github.com/aof2/aof2/core/coordinator"
	"github.com/aof2/aof2/core/manifest"
	"github.com/aof2/aof2/core/restore"
	"github.com/aof2/aof2/core/tier2"
	"github.com/aof2/aof2/core/types"
	"github.com/aof2/aof2/pluginapi"
)

// objects lists stream s's tier-2 objects of kind k, oldest first.
func objects(t *testing.T, b *fake.Backend, s types.StreamID, k tier2.Kind) []string {
	t.Helper()
	layout, err := tier2.NewLayout("")
	require.NoError(t, err)
	return objectsOf(b, layout, s, k)
}

// snapshotBucket returns every key and its etag, to check that a
// refused restore changed nothing in tier 2: the writer record (the
// takeover before the restore claims the prefix) and the lost-segment
// records of the streams that were restored are left out.
func snapshotBucket(t *testing.T, b *fake.Backend) map[string]string {
	t.Helper()
	layout, err := tier2.NewLayout("")
	require.NoError(t, err)
	out := map[string]string{}
	for _, k := range b.Keys() {
		if ref, err := layout.Parse(k); k == tier2.WriterKey || (err == nil && ref.Kind == tier2.KindLost) {
			continue
		} else if err == nil && ref.Kind == tier2.KindManifestChunk {
			if data, err := getAll(b, k); err == nil {
				if recs, _ := manifest.ChunkRecords(data, ref.ID); len(recs) == 1 {
					if _, fence, _ := manifest.FenceOf(recs[0]); fence {
						continue // a restore's fence of the stream's commit log, alone in its chunk
					}
				}
			}
		}
		info, _ := b.Stored(k)
		out[k] = info.ETag
	}
	return out
}

func putRaw(t *testing.T, b *fake.Backend, key string, data []byte) {
	t.Helper()
	_ = b.Delete(context.Background(), key)
	_, err := b.Put(context.Background(), pluginapi.PutRequest{Key: key, Size: uint64(len(data)), CRC64: pluginapi.CRC64(data)}, bytes.NewReader(data))
	require.NoError(t, err)
}

// TestRestoreBadInput: each kind of bad tier-2 content is a typed error
// naming what is wrong, or (a damaged snapshot with an older one to fall
// back on) is passed over and reported; tier 2 is never written.
func TestRestoreBadInput(t *testing.T) {
	noSnapshots := manifestOpts
	noSnapshots.SnapshotEveryBytes = -1
	cases := []struct {
		name   string
		mo     manifest.Options
		damage func(t *testing.T, b *fake.Backend, dir string)
		want   error // nil: the restore succeeds
		check  func(t *testing.T, rep restore.Report)
	}{
		{"corrupt newest snapshot", manifestOpts, func(t *testing.T, b *fake.Backend, _ string) {
			snaps := objects(t, b, 1, tier2.KindSnapshot)
			require.NoError(t, b.Rot(snaps[len(snaps)-1], 40))
		}, nil, func(t *testing.T, rep restore.Report) {
			require.Len(t, rep.Streams[0].SkippedSnapshots, 1, "the damaged snapshot is reported")
		}},
		{"missing chunk in the middle", noSnapshots, func(t *testing.T, b *fake.Backend, _ string) {
			chunks := objects(t, b, 1, tier2.KindManifestChunk)
			require.GreaterOrEqual(t, len(chunks), 3)
			require.NoError(t, b.Delete(context.Background(), chunks[1]))
		}, restore.ErrHistoryGap, nil},
		{"corrupt chunk", noSnapshots, func(t *testing.T, b *fake.Backend, _ string) {
			chunks := objects(t, b, 1, tier2.KindManifestChunk)
			key := chunks[len(chunks)/2]
			info, _ := b.Stored(key)
			data := make([]byte, info.Size)
			copy(data, "not a chunk")
			putRaw(t, b, key, data)
		}, restore.ErrCorruptHistory, nil},
		{"another format version", manifestOpts, func(t *testing.T, b *fake.Backend, _ string) {
			var d tier2.Descriptor
			rc, err := getAll(b, tier2.DescriptorKey)
			require.NoError(t, err)
			require.NoError(t, json.Unmarshal(rc, &d))
			d.SegmentFormat = 2
			raw, _ := json.Marshal(d)
			putRaw(t, b, tier2.DescriptorKey, raw)
		}, tier2.ErrIncompatibleStore, nil},
		{"descriptor of another store", manifestOpts, func(t *testing.T, _ *fake.Backend, dir string) {
			require.NoError(t, os.WriteFile(filepath.Join(dir, coordinator.StoreFile), []byte(`{"store_id":"0123456789abcdef"}`), 0o644))
		}, coordinator.ErrForeignStore, nil},
		{"segment object of another stream", manifestOpts, func(t *testing.T, b *fake.Backend, _ string) {
			one, two := objects(t, b, 1, tier2.KindSegment), objects(t, b, 2, tier2.KindSegment)
			rc, err := getAll(b, two[0])
			require.NoError(t, err)
			putRaw(t, b, one[0], rc)
		}, restore.ErrSegmentMismatch, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			b := fake.New(fake.Options{})
			kept, lost := writeStreams(t, b, tc.mo, 1, 2)
			dir := t.TempDir()
			tc.damage(t, b, dir)
			before := snapshotBucket(t, b)
			rep, err := takeoverAndRestore(context.Background(), t, dir, b)
			require.Equal(t, before, snapshotBucket(t, b), "restore changed nothing in tier 2 but lost-segment records and fences")
			if tc.want != nil {
				require.ErrorIs(t, err, tc.want)
				pending, perr := restore.Pending(nil, dir)
				require.NoError(t, perr)
				if errors.Is(tc.want, coordinator.ErrForeignStore) || errors.Is(tc.want, tier2.ErrIncompatibleStore) {
					require.False(t, pending, "refused before anything was staged")
					return
				}
				require.True(t, pending, "a failed restore leaves the staging directory: serve refuses")
				return
			}
			require.NoError(t, err)
			if tc.check != nil {
				tc.check(t, rep)
			}
			check(t, dir, b, kept, lost)
		})
	}
}

func getAll(b *fake.Backend, key string) ([]byte, error) {
	_, rc, err := b.Get(context.Background(), pluginapi.GetRequest{Key: key})
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	return io.ReadAll(rc)
}

// TestRestoreBeyondAndAcrossTheHistory: the tier-2 history lags the
// segments (its later chunks not uploaded yet), and one segment object in
// the middle is gone. The segments past the history are restored from
// their objects alone; the missing one is lost between its neighbours,
// which bound it exactly, and every other record reads back.
func TestRestoreBeyondAndAcrossTheHistory(t *testing.T) {
	mo := manifestOpts
	mo.SnapshotEveryBytes = -1
	b := fake.New(fake.Options{})
	kept, lost := writeStreams(t, b, mo, 1)
	chunks := objects(t, b, 1, tier2.KindManifestChunk)
	require.GreaterOrEqual(t, len(chunks), 2, "%v", b.Keys())
	for _, key := range chunks[len(chunks)/2:] {
		require.NoError(t, b.Delete(context.Background(), key))
	}
	segs := objects(t, b, 1, tier2.KindSegment)
	require.GreaterOrEqual(t, len(segs), 3)
	require.NoError(t, b.Delete(context.Background(), segs[1]))
	var stillKept []written
	for _, w := range kept {
		if w.id.Segment() == 2 {
			lost = append(lost, w)
		} else {
			stillKept = append(stillKept, w)
		}
	}
	dir := t.TempDir()
	rep, err := takeoverAndRestore(context.Background(), t, dir, b)
	require.NoError(t, err)
	require.Contains(t, rep.Streams[0].Lost, types.SegmentID(2))
	check(t, dir, b, stillKept, lost)
}

// TestRestoreRerunConverges: a restore stopped at random points (its
// context cancelled mid-way, as a kill would stop it) leaves the staging
// directory; rerun, it ends in the same state as a restore that was
// never interrupted: the same files, the same stubs byte for byte.
func TestRestoreRerunConverges(t *testing.T) {
	b := fake.New(fake.Options{})
	kept, lost := writeStreams(t, b, manifestOpts, 1, 2, 3)
	clean := t.TempDir()
	_, err := takeoverAndRestore(context.Background(), t, clean, b)
	require.NoError(t, err)
	want := tree(t, clean)
	last := clean
	for i := range 8 {
		dir := t.TempDir()
		ctx, cancel := context.WithCancel(context.Background())
		_, err := coordinator.Takeover(context.Background(), nil, dir, newRemote(t, b))
		require.NoError(t, err)
		cfg := restoreCfg(dir, b, t)
		// Cancel after a varying number of tier-2 requests.
		b2 := &cancelAfter{Backend: b, n: int64(3 + 7*i), cancel: cancel}
		cfg.Remote = newRemoteOver(t, b2)
		_, err = restore.Run(ctx, cfg, nil)
		cancel()
		if err == nil {
			continue // finished before the cut
		}
		if pending, perr := restore.Pending(nil, dir); !pending {
			require.NoError(t, perr)
			entries, _ := os.ReadDir(filepath.Join(dir, "streams"))
			require.Empty(t, entries, "no staging directory: cut before any stream was restored")
		}
		_, err = restore.Run(context.Background(), restoreCfg(dir, b, t), nil)
		require.NoError(t, err)
		require.Equal(t, want, tree(t, dir), "cut after %d requests", b2.n)
		last = dir
	}
	// The last restore's node holds the prefix; the others' histories
	// end at their fences, which later restores followed. However often
	// a restore was cut and rerun, each epoch fenced each log once.
	layout, err := tier2.NewLayout("")
	require.NoError(t, err)
	for _, s := range []types.StreamID{1, 2, 3} {
		per := map[uint64]int{}
		for _, k := range objects(t, b, s, tier2.KindManifestChunk) {
			ref, _ := layout.Parse(k)
			data, err := getAll(b, k)
			require.NoError(t, err)
			if f, ok, err := manifest.ChunkFence(data, ref.ID); err == nil && ok {
				per[f.Epoch]++
			}
		}
		require.NotEmpty(t, per)
		for epoch, n := range per {
			require.Equal(t, 1, n, "stream %d: epoch %d fenced its log %d times", s, epoch, n)
		}
	}
	check(t, last, b, kept, lost)
}

// TestRestoreUnderTier2Faults: with 20 % of tier-2 requests failing (5xx,
// throttling, truncated and wrong bytes), a restore either
// finishes or stops with an error and is rerun; it never installs
// anything that does not verify, and once it finishes the directory is
// the one a fault-free restore builds and every record reads back.
func TestRestoreUnderTier2Faults(t *testing.T) {
	b := fake.New(fake.Options{})
	kept, lost := writeStreams(t, b, manifestOpts, 1, 2)
	clean := t.TempDir()
	_, err := takeoverAndRestore(context.Background(), t, clean, b)
	require.NoError(t, err)
	want := tree(t, clean)

	dir := t.TempDir()
	_, err = coordinator.Takeover(context.Background(), nil, dir, newRemote(t, b))
	require.NoError(t, err)
	require.NoError(t, b.Inject(
		fake.Fault{Mode: fake.ServerError, Rate: 0.08},
		fake.Fault{Mode: fake.Truncate, Rate: 0.04},
		fake.Fault{Mode: fake.WrongBytes, Rate: 0.04},
		fake.Fault{Mode: fake.Throttle, Rate: 0.04, RetryAfter: time.Millisecond},
	))
	attempts := 0
	for ; attempts < 50; attempts++ {
		// Each attempt is a rerun of the command: a new store, whose
		// breaker starts closed.
		if _, err = restore.Run(context.Background(), restoreCfg(dir, b, t), nil); err == nil {
			break
		}
		t.Logf("attempt %d: %v", attempts+1, err)
	}
	require.NoError(t, err, "a restore finishes within 50 attempts at a 20 %% fault rate")
	b.ClearFaults()
	require.Equal(t, want, tree(t, dir))
	require.Positive(t, b.Injected()[fake.ServerError], "faults were injected")
	check(t, dir, b, kept, lost)
}
