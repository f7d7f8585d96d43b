package coordinator

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"

	"github.com/aof2/aof2/conformance/fake"
	"github.com/aof2/aof2/core"
	"github.com/aof2/aof2/core/manifest"
	"github.com/aof2/aof2/core/segment"
	"github.com/aof2/aof2/core/tier1"
	"github.com/aof2/aof2/core/types"
	"github.com/aof2/aof2/core/vfs"
	"github.com/aof2/aof2/pluginapi"
)

// TestScrub: damage nobody reads is found by a scrub pass and repaired
// from a verified copy, without any read: a flipped payload byte in a
// sealed tier-0 file (the file is replaced, the damaged one kept), a
// corrupt warm artifact (rebuilt), a deleted tier-2 object (uploaded
// again), a warm artifact that still decodes to the segment but is not
// the uploaded object's bytes (fetched again from tier 2). A segment with
// no good copy anywhere is reported unrepairable and nothing of it is
// deleted.
func TestScrub(t *testing.T) {
	type damage struct {
		tier0, tier1 bool // flipped while the rig is stopped
		reencoded    bool // the artifact compressed again at another level while stopped
		tier2        bool // the object deleted while it runs
		rot          bool // a byte of the object flipped at rest while it runs
	}
	for _, tc := range []struct {
		name   string
		damage damage
		want   map[string]bool // tier -> repaired
	}{
		{"tier0 payload flip", damage{tier0: true}, map[string]bool{ScrubTier0: true}},
		{"warm artifact corrupt", damage{tier1: true}, map[string]bool{ScrubTier1: true}},
		{"warm artifact decodes but is not the uploaded object", damage{reencoded: true}, map[string]bool{ScrubTier1: true}},
		{"tier2 object deleted", damage{tier2: true}, map[string]bool{ScrubTier2: true}},
		{"tier2 object rotten at rest", damage{rot: true}, map[string]bool{ScrubTier2: true}},
		{"tier0 and warm damaged, from tier 2", damage{tier0: true, tier1: true}, map[string]bool{ScrubTier0: true, ScrubTier1: true}},
		{"no good copy", damage{tier0: true, tier1: true, tier2: true}, map[string]bool{ScrubTier0: false, ScrubTier1: false, ScrubTier2: false}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			dir := t.TempDir()
			backend := fake.New(fake.Options{})
			r := openRig(t, dir, backend, 64)
			s := writeUploaded(t, ctx, r, 7, 0, 1500)
			segs := s.SegmentList()
			require.Greater(t, len(segs), 2)
			victim := segs[1]
			k := types.SegmentKey{Stream: 7, Segment: victim.ID}
			artifact := tier1.ArtifactPath(dir, k)
			want := readAll(t, ctx, s)
			r.close(t)

			if tc.damage.tier0 {
				flipByte(t, victim.Path, segment.HeaderSize+segment.RecordHeaderSize+40)
			}
			if tc.damage.tier1 {
				corruptArtifact(t, ctx, artifact, tier1.Expected{Key: k, SegmentCRC: victim.Footer.SegmentCRC})
			}
			if tc.damage.reencoded {
				before := fileSize(t, artifact)
				_, err := tier1.CompressSegment(ctx, vfs.OS, tier1.Source{Stream: 7, Path: victim.Path, Segment: victim.ID}, artifact, tier1.Options{Level: tier1.LevelBest})
				require.NoError(t, err)
				require.NotEqual(t, before, fileSize(t, artifact), "other bytes, the same records")
			}
			r = openRig(t, dir, backend, 64)
			defer r.close(t)
			s, err := r.st.Lookup(7)
			require.NoError(t, err)
			ms, _ := s.TierLog().Segment(victim.ID)
			require.NotEmpty(t, ms.Tier2.Key)
			if tc.damage.tier2 {
				require.NoError(t, backend.Delete(ctx, ms.Tier2.Key))
			}
			if tc.damage.rot {
				require.NoError(t, backend.Rot(ms.Tier2.Key, 100))
			}

			sealed := 0
			for _, info := range s.SegmentList() {
				if info.Footer != nil {
					sealed++
				}
			}
			var progress []ScrubProgress
			sum, err := r.c.Scrub(ctx, ScrubOptions{Streams: []types.StreamID{7}}, func(p ScrubProgress) { progress = append(progress, p) })
			got := map[string]bool{}
			for _, f := range sum.Findings {
				require.Equal(t, victim.ID, f.Segment, "only the damaged segment has findings: %+v", f)
				got[f.Tier] = f.Repaired
			}
			require.Equal(t, tc.want, got, "findings: %+v", sum.Findings)
			unrepaired := 0
			for tier, repaired := range tc.want {
				result := ScrubRepaired
				if !repaired {
					result = ScrubUnrepairable
					unrepaired++
				}
				require.Equal(t, 1.0, testutil.ToFloat64(r.c.m.scrubFindings.WithLabelValues(tier, result)), tier)
			}
			if unrepaired > 0 {
				require.ErrorIs(t, err, ErrScrubFindings)
			} else {
				require.NoError(t, err)
			}
			require.Equal(t, unrepaired, sum.Unrepaired())
			require.Len(t, progress, sealed, "one progress report per sealed segment")
			require.Equal(t, sealed, progress[len(progress)-1].Done)
			require.Equal(t, sealed, progress[len(progress)-1].Total)
			require.Positive(t, sum.BytesVerified[ScrubTier0])
			require.Positive(t, sum.BytesVerified[ScrubTier1])
			require.Positive(t, sum.BytesVerified[ScrubTier2], "the default budget GETs these small objects in full")

			names, err := os.ReadDir(filepath.Dir(victim.Path))
			require.NoError(t, err)
			kept := false
			for _, n := range names {
				kept = kept || strings.HasPrefix(n.Name(), filepath.Base(victim.Path)+core.DamagedSuffix)
			}
			require.Equal(t, tc.damage.tier0 && tc.want[ScrubTier0], kept, "a replaced tier-0 copy is kept for inspection")
			_, err = os.Stat(victim.Path)
			require.NoError(t, err, "the tier-0 file is never deleted")

			if unrepaired > 0 {
				_, err = os.Stat(artifact)
				require.NoError(t, err, "the damaged artifact, maybe the last copy, is kept")
				ms, _ := s.TierLog().Segment(victim.ID)
				require.Equal(t, manifest.NeedsRecovery, ms.Residency, "the lost tier-2 object is flagged")
				return
			}
			if tc.damage.tier2 {
				_, ok := backend.Stored(ms.Tier2.Key)
				require.True(t, ok, "the object is uploaded again")
			}
			if tc.damage.rot {
				obj, ok := backend.Stored(ms.Tier2.Key)
				require.True(t, ok)
				now, _ := s.TierLog().Segment(victim.ID)
				require.NotEqual(t, ms.Tier2.ETag, obj.ETag, "the rotten object is replaced")
				require.Equal(t, obj.ETag, now.Tier2.ETag, "the manifest records the new etag")
			}
			// A second pass finds nothing: every copy verifies.
			sum, err = r.c.Scrub(ctx, ScrubOptions{}, nil)
			require.NoError(t, err)
			require.Empty(t, sum.Findings)
			require.Equal(t, want, readAll(t, ctx, s), "every record reads back")
		})
	}
}

// corruptArtifact flips the first byte from the artifact's middle on whose
// flip makes it fail verification: a flip can land on a bit the decoder
// never uses (the re-encoded row covers an artifact that decodes right
// but is not the uploaded one).
func corruptArtifact(t *testing.T, ctx context.Context, path string, exp tier1.Expected) {
	t.Helper()
	size := fileSize(t, path)
	for off := size / 2; off < size; off++ {
		flipByte(t, path, off)
		f, err := os.Open(path)
		require.NoError(t, err)
		a, err := tier1.OpenReaderAt(f, size, path)
		if err == nil {
			err = tier1.VerifyArtifact(ctx, a, exp)
			a.Close()
		}
		f.Close()
		if err != nil {
			return
		}
		flipByte(t, path, off) // harmless: undo it, try the next byte
	}
	t.Fatalf("no single-byte flip in the second half of %s fails verification", path)
}

// TestScrubNeverOverwritesAnotherObject: an object under a segment's key
// that is not the one the manifest names (another writer's bytes, another
// etag) is reported unrepairable and left as it is, even with a verified
// local copy at hand: only an object that rotted at rest is replaced.
func TestScrubNeverOverwritesAnotherObject(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	backend := fake.New(fake.Options{})
	r := openRig(t, t.TempDir(), backend, 64)
	defer r.close(t)
	s := writeUploaded(t, ctx, r, 7, 0, 1500)
	victim := s.SegmentList()[1]
	ms, _ := s.TierLog().Segment(victim.ID)
	theirs := []byte("another writer's object")
	_, err := backend.Put(ctx, pluginapi.PutRequest{Key: ms.Tier2.Key, Size: uint64(len(theirs)), CRC64: pluginapi.CRC64(theirs)}, bytes.NewReader(theirs))
	require.NoError(t, err)
	before, _ := backend.Stored(ms.Tier2.Key)

	sum, err := r.c.Scrub(ctx, ScrubOptions{Streams: []types.StreamID{7}}, nil)
	require.ErrorIs(t, err, ErrScrubFindings)
	require.Len(t, sum.Findings, 1)
	f := sum.Findings[0]
	require.Equal(t, ScrubTier2, f.Tier)
	require.Equal(t, "mismatch", f.Problem)
	require.False(t, f.Repaired)
	require.Contains(t, f.Detail, "never overwrites")
	after, _ := backend.Stored(ms.Tier2.Key)
	require.Equal(t, before.ETag, after.ETag, "the object is left as it is")
}
