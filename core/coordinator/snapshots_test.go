package coordinator

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"

	"github.com/aof2/aof2/conformance/fake"
	"github.com/aof2/aof2/core"
	"github.com/aof2/aof2/core/manifest"
	"github.com/aof2/aof2/core/tier2"
	"github.com/aof2/aof2/internal/testwait"
	"github.com/aof2/aof2/pluginapi"
)

// TestTier2ManifestStaysSmall: the manifest's snapshots reach tier 2 as
// they are taken, with their log position, and once two of them are there
// the chunks and snapshots they cover are deleted from tier 2: a stream's
// tier-2 manifest holds its last two snapshots and the chunks from the
// older one on, not its whole history. What stays is enough to rebuild the
// manifest: the older snapshot's position lies in a chunk tier 2 holds,
// and every chunk from there to the newest is there.
func TestTier2ManifestStaysSmall(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), testwait.Default)
	defer cancel()
	backend := fake.New(fake.Options{})
	r := startRig(t, Config{DataDir: t.TempDir(), Tier2: newRemote(t, backend), ScanInterval: 10 * time.Millisecond},
		core.Config{Manifest: manifest.Options{ChunkCapacity: manifest.MinChunkCapacity, SnapshotEveryChunks: 4,
			RotationPeriod: 5 * time.Millisecond}})
	defer r.close(t)
	s, err := r.st.Stream(3)
	require.NoError(t, err)
	const n = 6000 // 15 segments (they grow to the rig's size), 15 manifest chunks at least
	for i := range n {
		_, err := s.AppendCtx(ctx, payload(i), core.AppendOptions{})
		require.NoError(t, err)
		if i%400 == 399 {
			// How many chunks the rotation timer seals depends on timing;
			// these seals make 15 at least, so snapshots are taken.
			require.NoError(t, s.TierLog().Rotate(ctx))
		}
	}
	require.NoError(t, s.Seal(ctx))
	waitInTier2(t, s)

	layout := r.remote.Layout()
	objects := func() (chunks, snaps []uint64) {
		for _, key := range backend.Keys() {
			ref, err := layout.Parse(key)
			if err != nil || ref.Stream != 3 {
				continue
			}
			switch ref.Kind {
			case tier2.KindManifestChunk:
				chunks = append(chunks, ref.ID)
			case tier2.KindSnapshot:
				snaps = append(snaps, ref.ID)
			}
		}
		return chunks, snaps
	}
	for deadline := time.Now().Add(testwait.Default); ; time.Sleep(pollTick) {
		chunks, snaps := objects()
		if len(snaps) == 2 && len(chunks) > 0 && chunks[0] > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("waited %s for the tier-2 manifest trimmed to two snapshots and the chunks after the older one: chunks %v, snapshots %v, local %+v, %d segments",
				testwait.Default, chunks, snaps, s.TierLog().SealedChunks(), len(s.SegmentList()))
		}
	}
	require.Positive(t, testutil.ToFloat64(r.c.m.snapshotUploads))
	require.Positive(t, testutil.ToFloat64(r.c.m.manifestTrims.WithLabelValues("chunk")))

	chunks, snaps := objects()
	older, err := r.remote.Stat(ctx, layout.SnapshotKey(3, snaps[0]))
	require.NoError(t, err)
	md, err := tier2.ParseMetadata(older.Metadata)
	require.NoError(t, err)
	require.True(t, md.HasPosition)
	require.LessOrEqual(t, chunks[0], md.SnapshotChunk, "the older snapshot's position lies in the chunks tier 2 holds")
	for i := 1; i < len(chunks); i++ {
		require.Equal(t, chunks[i-1]+1, chunks[i], "the chunks from the older snapshot on are all there: %v", chunks)
	}
	sealed := tlChunksSealed(t, s)
	t.Logf("%d segments; tier-2 manifest: %d chunks (%d..%d) and snapshots %v, of %d chunks sealed", len(s.SegmentList()), len(chunks),
		chunks[0], chunks[len(chunks)-1], snaps, sealed)
	require.Less(t, len(chunks), int(sealed), "fewer chunks than the history has")
	require.Equal(t, n, readAll(t, ctx, s))
}

// tlChunksSealed is how many manifest chunks the stream has sealed so
// far: the index after the newest sealed one.
func tlChunksSealed(t testing.TB, s *core.Stream) uint64 {
	t.Helper()
	var next uint64
	for _, ch := range s.TierLog().SealedChunks() {
		next = max(next, ch.Index+1)
	}
	require.Positive(t, next)
	return next
}

// BenchmarkTier2ManifestObjects counts a stream's tier-2 objects once it
// has AOF2_MANIFEST_SEGMENTS (default 1,000) sealed segments of one record
// each, on the default manifest settings: the segments, and a manifest of
// two snapshots and the chunks since the older one — not one chunk per
// rotation of the stream's history. Run with -benchtime 1x.
func BenchmarkTier2ManifestObjects(b *testing.B) {
	n := 1000
	if v := os.Getenv("AOF2_MANIFEST_SEGMENTS"); v != "" {
		var err error
		n, err = strconv.Atoi(v)
		require.NoError(b, err)
	}
	for range b.N {
		ctx, cancel := context.WithTimeout(context.Background(), time.Hour)
		backend := fake.New(fake.Options{})
		r := startRig(b, Config{DataDir: b.TempDir(), Tier2: newRemote(b, backend), ScanInterval: 10 * time.Millisecond, Workers: 4},
			core.Config{SegmentTargetBytes: 1})
		s, err := r.st.Stream(5)
		require.NoError(b, err)
		start := time.Now()
		for i := range n {
			_, err := s.AppendDurable(ctx, []byte(fmt.Sprintf("record %d", i)), core.AppendOptions{})
			require.NoError(b, err)
		}
		require.NoError(b, s.Seal(ctx))
		layout := r.remote.Layout()
		count := func() (segs, chunks, snaps int) {
			for _, key := range backend.Keys() {
				ref, err := layout.Parse(key)
				if err != nil || ref.Stream != 5 {
					continue
				}
				switch ref.Kind {
				case tier2.KindSegment:
					segs++
				case tier2.KindManifestChunk:
					chunks++
				case tier2.KindSnapshot:
					snaps++
				}
			}
			return segs, chunks, snaps
		}
		testwait.Until(b, time.Hour, 100*time.Millisecond, func() bool {
			segs, _, _ := count()
			return segs >= n
		}, "every segment uploaded")
		uploaded := time.Since(start)
		// Let the last chunks and snapshot settle: a few rotations and scans.
		require.NoError(b, s.TierLog().Rotate(ctx))
		time.Sleep(2 * time.Second)
		segs, chunks, snaps := count()
		sealed := tlChunksSealed(b, s)
		b.ReportMetric(float64(segs), "segment-objects")
		b.ReportMetric(float64(chunks), "chunk-objects")
		b.ReportMetric(float64(snaps), "snapshot-objects")
		b.ReportMetric(float64(sealed), "chunks-sealed")
		b.Logf("%d sealed segments uploaded in %s: tier 2 holds %d segment objects, %d manifest chunks and %d snapshots (%d chunks sealed in all)",
			n, uploaded.Round(time.Millisecond), segs, chunks, snaps, sealed)
		r.close(b)
		cancel()
	}
}

// TestSnapshotIDTaken: after a takeover, the key of the snapshot id this
// log takes next already holds the previous writer's snapshot (its last
// upload landed after the takeover's listing). The local snapshot stays
// local, nothing is overwritten or counted as data loss, and the log's
// later snapshots take ids past it and are uploaded. At epoch 1 (no other
// writer ever) the same object is a data loss, reported.
func TestSnapshotIDTaken(t *testing.T) {
	for _, tc := range []struct {
		name     string
		takeover bool
	}{{"after a takeover", true}, {"first writer", false}} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), testwait.Default)
			defer cancel()
			backend := fake.New(fake.Options{})
			remote := newRemote(t, backend)
			dir := t.TempDir()
			if tc.takeover {
				_, err := Takeover(ctx, nil, t.TempDir(), remote) // epoch 1: another node
				require.NoError(t, err)
				rec, err := Takeover(ctx, nil, dir, remote)
				require.NoError(t, err)
				require.Equal(t, uint64(2), rec.Epoch)
			}
			r := startRig(t, Config{DataDir: dir, Tier2: remote, ScanInterval: 10 * time.Millisecond}, core.Config{})
			defer r.close(t)
			s, err := r.st.Stream(3)
			require.NoError(t, err)
			key := remote.Layout().Key(tier2.Ref{Kind: tier2.KindSnapshot, Stream: 3, ID: 1})
			_, err = remote.Put(ctx, tier2.Upload{Key: key, Data: []byte("a previous writer's snapshot 1")})
			require.NoError(t, err)
			before, _ := backend.Stored(key)
			for round := range 3 {
				for i := range 50 {
					_, err := s.AppendCtx(ctx, payload(round*50+i), core.AppendOptions{})
					require.NoError(t, err)
				}
				require.NoError(t, s.FlushAll(ctx))
				info, err := s.TierLog().Snapshot(ctx)
				require.NoError(t, err)
				require.NoError(t, s.TierLog().Rotate(ctx)) // its position's chunk goes to tier 2: it may follow
				if !tc.takeover {
					testwait.Until(t, testwait.Default, pollTick, func() bool { return remote.Stats().DataLoss > 0 }, "the taken id is a data loss")
					after, _ := backend.Stored(key)
					require.Equal(t, before.ETag, after.ETag, "nothing is overwritten")
					require.True(t, r.c.t2m.snapshotTaken(3, info.ID), "reported once, not retried")
					n := remote.Stats().DataLoss
					time.Sleep(100 * time.Millisecond) // ten scans
					require.Equal(t, n, remote.Stats().DataLoss, "one loss, counted once")
					return
				}
				testwait.Until(t, testwait.Default, pollTick, func() bool {
					return r.c.t2m.snapshotUploaded(3, info.ID) || r.c.t2m.snapshotTaken(3, info.ID)
				}, "snapshot %d uploaded or left to the other writer", info.ID)
			}
			testwait.Until(t, testwait.Default, pollTick, func() bool {
				_, err := remote.Stat(ctx, remote.Layout().Key(tier2.Ref{Kind: tier2.KindSnapshot, Stream: 3, ID: 3}))
				return err == nil
			}, "the log's later snapshots reach tier 2")
			after, _ := backend.Stored(key)
			require.Equal(t, before.ETag, after.ETag, "the other writer's snapshot is not replaced")
			require.True(t, r.c.t2m.snapshotTaken(3, 1))
			require.Zero(t, remote.Stats().DataLoss)
		})
	}
}

// TestSnapshotWaitsForItsChunk: a snapshot whose position lies in the
// active chunk is not uploaded until that chunk is sealed and in tier 2:
// tier 2 never holds a snapshot of state its commit log lacks.
func TestSnapshotWaitsForItsChunk(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), testwait.Default)
	defer cancel()
	backend := fake.New(fake.Options{})
	remote := newRemote(t, backend)
	r := startRig(t, Config{DataDir: t.TempDir(), Tier2: remote, ScanInterval: 10 * time.Millisecond},
		core.Config{Manifest: manifest.Options{RotationPeriod: time.Hour}})
	defer r.close(t)
	s, err := r.st.Stream(3)
	require.NoError(t, err)
	for i := range 50 {
		_, err := s.AppendCtx(ctx, payload(i), core.AppendOptions{})
		require.NoError(t, err)
	}
	require.NoError(t, s.FlushAll(ctx))
	info, err := s.TierLog().Snapshot(ctx)
	require.NoError(t, err)
	require.Greater(t, info.ChunkOffset, uint64(manifest.ChunkHeaderLen), "positioned inside the active chunk")
	key := remote.Layout().Key(tier2.Ref{Kind: tier2.KindSnapshot, Stream: 3, ID: info.ID})
	time.Sleep(100 * time.Millisecond) // ten scans
	_, err = remote.Stat(ctx, key)
	require.ErrorIs(t, err, pluginapi.ErrNotFound, "not uploaded while its chunk is not in tier 2")
	require.NoError(t, s.TierLog().Rotate(ctx))
	testwait.Until(t, testwait.Default, pollTick, func() bool {
		_, err := remote.Stat(ctx, key)
		return err == nil
	}, "uploaded once its chunk is")
}
