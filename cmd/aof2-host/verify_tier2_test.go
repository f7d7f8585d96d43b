package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/aof2/aof2/core/manifest"
	"github.com/aof2/aof2/core/tier2"
	"github.com/aof2/aof2/core/types"
	"github.com/aof2/aof2/pluginapi"
)

// fakeObjects is an in-memory tier 2 for the checker: objects by key, an
// error per key, and a count of the requests made.
type fakeObjects struct {
	layout  tier2.Layout
	objects map[string]pluginapi.ObjectInfo
	errs    map[string]error
	listErr error

	mu    sync.Mutex
	stats []string
	lists int
}

func (f *fakeObjects) Stat(_ context.Context, key string) (pluginapi.ObjectInfo, error) {
	f.mu.Lock()
	f.stats = append(f.stats, key)
	f.mu.Unlock()
	if err := f.errs[key]; err != nil {
		return pluginapi.ObjectInfo{}, err
	}
	if err := pluginapi.ValidateKey(key); err != nil {
		return pluginapi.ObjectInfo{}, err
	}
	info, ok := f.objects[key]
	if !ok {
		return pluginapi.ObjectInfo{}, pluginapi.NotFoundError(key)
	}
	return info, nil
}

func (f *fakeObjects) ListStream(_ context.Context, stream types.StreamID) (tier2.Listing, error) {
	f.mu.Lock()
	f.lists++
	f.mu.Unlock()
	if f.listErr != nil {
		return tier2.Listing{}, f.listErr
	}
	out := tier2.Listing{Stream: stream}
	for key, info := range f.objects {
		ref, err := f.layout.Parse(key)
		if err == nil && ref.Stream == stream && ref.Kind == tier2.KindManifestChunk {
			out.ManifestChunks = append(out.ManifestChunks, tier2.Listed{Ref: ref, Info: info})
		}
	}
	return out, nil
}

func (f *fakeObjects) Layout() tier2.Layout { return f.layout }

// object is what an upload through core/tier2 stores for ref.
func object(layout tier2.Layout, ref tier2.Ref, etag string, size uint64, crc uint64) (string, pluginapi.ObjectInfo) {
	key := layout.Key(ref)
	md := map[string]string{tier2.MetaKind: ref.Kind.String(), tier2.MetaStream: fmt.Sprint(ref.Stream),
		idMetaKey(ref.Kind): fmt.Sprint(ref.ID), tier2.MetaSize: fmt.Sprint(size), tier2.MetaCRC64: fmt.Sprintf("%016x", crc)}
	return key, pluginapi.ObjectInfo{Key: key, Size: size, ETag: etag, CRC64: crc, HasCRC64: true, Metadata: md}
}

// TestTier2CheckerFindings covers each way an object can disagree with the
// manifest, and the cases that are not findings.
func TestTier2CheckerFindings(t *testing.T) {
	ctx := context.Background()
	const stream = types.StreamID(9)
	layout, err := tier2.NewLayout("prod")
	require.NoError(t, err)
	seg := func(id uint64) tier2.Ref { return tier2.Ref{Kind: tier2.KindSegment, Stream: stream, ID: id} }
	chunk := func(i uint64) tier2.Ref { return tier2.Ref{Kind: tier2.KindManifestChunk, Stream: stream, ID: i} }
	f := &fakeObjects{layout: layout, objects: map[string]pluginapi.ObjectInfo{}, errs: map[string]error{}}
	put := func(ref tier2.Ref, etag string, size uint64, edit func(*pluginapi.ObjectInfo)) string {
		key, info := object(layout, ref, etag, size, 0xabc0+ref.ID)
		if edit != nil {
			edit(&info)
		}
		f.objects[key] = info
		return key
	}
	state := func(id uint64, key, etag string, edit func(*manifest.SegmentState)) manifest.SegmentState {
		s := manifest.SegmentState{SegmentID: types.SegmentID(id), Sealed: true, Tier2: manifest.Tier2Object{Key: key, ETag: etag}}
		if edit != nil {
			edit(&s)
		}
		return s
	}
	in := &manifest.Inspection{StreamID: stream}
	// Sound objects: no finding.
	in.Segments = append(in.Segments, state(1, put(seg(1), "e1", 100, nil), "e1", nil))
	// Recorded under an older prefix: the recorded key is what is asked for.
	old := "old/streams/9/segments/00000000000000000002.seg.zst"
	f.objects[old] = pluginapi.ObjectInfo{Key: old, Size: 7, ETag: "e2", Metadata: map[string]string{tier2.MetaKind: "segment", tier2.MetaStream: "9", tier2.MetaSegment: "2"}}
	in.Segments = append(in.Segments, state(2, old, "e2", nil))
	// Not in tier 2 (yet): not asked for.
	in.Segments = append(in.Segments, manifest.SegmentState{SegmentID: 3, Tier2: manifest.Tier2Object{PendingUpload: layout.Key(seg(3))}})
	// Gone, with its delete queued: not a finding.
	in.Segments = append(in.Segments, state(4, layout.Key(seg(4)), "e4", func(s *manifest.SegmentState) { s.Tier2.PendingDeletes = []string{s.Tier2.Key} }))
	// Gone, no local copy.
	in.Segments = append(in.Segments, state(5, layout.Key(seg(5)), "e5", nil))
	// Gone, with a delete queued for another key only.
	in.Segments = append(in.Segments, state(6, layout.Key(seg(6)), "e6", func(s *manifest.SegmentState) {
		s.Tier2.PendingDeletes = []string{"prod/elsewhere"}
		s.Tier0 = true
	}))
	// Another etag.
	in.Segments = append(in.Segments, state(7, put(seg(7), "new", 100, nil), "e7", nil))
	// Metadata naming another stream, a size that is not the uploaded one,
	// two checksums that disagree.
	in.Segments = append(in.Segments, state(8, put(seg(8), "e8", 100, func(i *pluginapi.ObjectInfo) {
		i.Metadata[tier2.MetaStream] = "10"
		i.Size = 99
		i.CRC64 = 1
	}), "e8", nil))
	// Damaged (the backend says so).
	k9 := layout.Key(seg(9))
	f.errs[k9] = &pluginapi.Error{Code: pluginapi.CodeChecksum, Key: k9, Message: "read header"}
	in.Segments = append(in.Segments, state(9, k9, "e9", nil))
	// A recorded key tier 2 refuses.
	in.Segments = append(in.Segments, state(10, "prod//bad", "e10", nil))

	// Chunks: 0 to 7 removed locally (2 and 4 to 7 not in tier 2), 8 to
	// 10 local and flagged uploaded (10 has the wrong size, 9 is gone),
	// 11 sealed but not uploaded, 12 active, a crashed .tmp.
	for _, i := range []uint64{0, 1, 3} {
		put(chunk(i), "c", 10, nil)
	}
	put(chunk(8), "c", 4096, nil)
	put(chunk(10), "c", 4000, nil)
	sealedUp := &manifest.ChunkHeader{Flags: manifest.FlagSealed | manifest.FlagUploaded}
	for _, i := range []uint64{8, 9, 10} {
		in.Chunks = append(in.Chunks, manifest.ChunkReport{File: fmt.Sprintf("%020d.mlog", i), Index: i, Committed: true, Header: sealedUp, FileSize: 4096})
	}
	in.Chunks = append(in.Chunks,
		manifest.ChunkReport{Index: 11, Committed: true, Header: &manifest.ChunkHeader{Flags: manifest.FlagSealed}, FileSize: 4096},
		manifest.ChunkReport{Index: 12, Committed: true, Header: &manifest.ChunkHeader{}, FileSize: 4096},
		manifest.ChunkReport{Index: 13, Committed: false, Header: sealedUp})

	for _, canList := range []bool{true, false} {
		t.Run(fmt.Sprintf("list=%v", canList), func(t *testing.T) {
			f.stats, f.lists = nil, 0
			c := &tier2Checker{store: f, canList: canList, workers: 3}
			got, rep, err := c.check(ctx, stream, in)
			require.NoError(t, err)
			var lines []string
			for _, fd := range got {
				require.Equal(t, manifest.SeverityError, fd.Severity)
				lines = append(lines, fd.Code+" "+fd.Key+" "+fd.File+": "+fd.Message)
			}
			want := []string{
				"tier2_missing prod/streams/9/segments/00000000000000000005.seg.zst : segment 5: the manifest records it in tier 2 but the object is not there, and no local copy remains: its records are lost unless the object is restored",
				"tier2_missing prod/streams/9/segments/00000000000000000006.seg.zst : segment 6: the manifest records it in tier 2 but the object is not there; a copy remains in tier 0 (the host uploads it again at its next start)",
				`tier2_mismatch prod/streams/9/segments/00000000000000000007.seg.zst : segment 7 is not the object the manifest recorded: etag "new", the manifest recorded "e7"`,
				"tier2_mismatch prod/streams/9/segments/00000000000000000008.seg.zst : segment 8 is not the object the manifest recorded: metadata stream 10, want 9; 99 bytes stored, uploaded as 100; stored checksum 0000000000000001, uploaded as 000000000000abc8",
				`tier2_mismatch prod/streams/9/segments/00000000000000000009.seg.zst : segment 9: the backend reports the object damaged: checksum mismatch (key "prod/streams/9/segments/00000000000000000009.seg.zst"): read header`,
				"tier2_mismatch prod//bad : segment 10: the manifest records a key tier 2 refuses: ",
			}
			removed := []string{
				"tier2_missing prod/streams/9/manifest/00000000000000000002.mlog : manifest chunk 2 was removed locally after its upload but is not in tier 2",
				"tier2_missing prod/streams/9/manifest/00000000000000000004.mlog : manifest chunks 4 to 7 (4 objects, the first named) were removed locally after their upload but are not in tier 2",
			}
			if !canList {
				removed = []string{
					"tier2_missing prod/streams/9/manifest/00000000000000000002.mlog : manifest chunk 2 is flagged uploaded but is not in tier 2",
				}
				for i := 4; i <= 7; i++ {
					removed = append(removed, fmt.Sprintf("tier2_missing prod/streams/9/manifest/%020d.mlog : manifest chunk %d is flagged uploaded but is not in tier 2", i, i))
				}
			}
			if canList {
				want = append(removed, want...)
			} else {
				want = append(want, removed...)
			}
			want = append(want,
				"tier2_missing prod/streams/9/manifest/00000000000000000009.mlog 00000000000000000009.mlog: manifest chunk 9 is flagged uploaded but is not in tier 2",
				"tier2_mismatch prod/streams/9/manifest/00000000000000000010.mlog 00000000000000000010.mlog: manifest chunk 10 is not the object the manifest recorded: 4000 bytes, the local file has 4096")
			require.Equal(t, len(want), len(lines), strings.Join(lines, "\n"))
			for i := range want {
				assert.True(t, strings.HasPrefix(lines[i], want[i]), "finding %d:\n got %s\nwant %s", i, lines[i], want[i])
			}
			assert.Equal(t, tier2Report{Checked: true, Segments: 9, Chunks: 11, PendingDeletes: 1}, rep)
			for _, k := range f.stats {
				assert.NotContains(t, k, "00000000000000000003.seg.zst", "a pending upload is not asked for")
				assert.NotContains(t, k, "00000000000000000011.mlog", "a chunk not flagged uploaded is not asked for")
				assert.NotContains(t, k, "00000000000000000013.mlog", "an uncommitted chunk is not asked for")
			}
			if canList {
				assert.Equal(t, 1, f.lists)
				assert.Len(t, f.stats, 9+3, "a Head per segment and per local uploaded chunk")
			} else {
				assert.Zero(t, f.lists)
				assert.Len(t, f.stats, 9+8+3, "a Head per removed chunk too")
			}

			// A replica's chunks are its own: only its segments are asked for.
			f.stats, f.lists = nil, 0
			rc := &tier2Checker{store: f, canList: canList, workers: 3, replica: true}
			got, rep, err = rc.check(ctx, stream, in)
			require.NoError(t, err)
			assert.Len(t, got, 6, "the segment findings only")
			assert.Zero(t, rep.Chunks)
			assert.Contains(t, rep.Note, "read replica")
			for _, k := range f.stats {
				assert.NotContains(t, k, ".mlog")
			}
		})
	}
}

// TestTier2CheckerUnreachable: an error that is not about one object stops
// the check; it is a tier2Error (exit 4), never findings or "ok".
func TestTier2CheckerUnreachable(t *testing.T) {
	ctx := context.Background()
	layout, err := tier2.NewLayout("")
	require.NoError(t, err)
	in := &manifest.Inspection{StreamID: 1}
	f := &fakeObjects{layout: layout, objects: map[string]pluginapi.ObjectInfo{}, errs: map[string]error{}}
	for i := range 20 {
		key := layout.SegmentObjectKey(types.SegmentKey{Stream: 1, Segment: types.SegmentID(i + 1)})
		in.Segments = append(in.Segments, manifest.SegmentState{SegmentID: types.SegmentID(i + 1), Tier2: manifest.Tier2Object{Key: key}})
		f.errs[key] = &pluginapi.Error{Code: pluginapi.CodeUnavailable, Message: "connection refused"}
	}
	_, _, err = (&tier2Checker{store: f, workers: 4}).check(ctx, 1, in)
	var te tier2Error
	require.ErrorAs(t, err, &te)
	require.ErrorIs(t, err, pluginapi.ErrUnavailable)
	require.Equal(t, exitIO, exitCode(err))
	require.Contains(t, err.Error(), "connection refused")
	require.Contains(t, err.Error(), "-skip-tier2")
	require.Less(t, len(f.stats), 20, "the first failure stops the others")

	// A failed listing (chunks removed locally) is the same.
	in = &manifest.Inspection{StreamID: 1, Chunks: []manifest.ChunkReport{{Index: 5, Committed: true, Header: &manifest.ChunkHeader{}}}}
	f.listErr = &pluginapi.Error{Code: pluginapi.CodeAuth, Message: "expired token"}
	_, _, err = (&tier2Checker{store: f, canList: true, workers: 4}).check(ctx, 1, in)
	require.ErrorAs(t, err, &te)
	require.Equal(t, exitIO, exitCode(err), "tier 2 refusing the credentials is tier 2 unreachable here")

	// A plugin binary that is not there is not "not found" (exit 2) either.
	require.Equal(t, exitIO, exitCode(tier2Error{fmt.Errorf("no plugin binary: %w", os.ErrNotExist)}))

	// Interrupted: the context's error, not tier 2's.
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	in = &manifest.Inspection{StreamID: 1, Segments: []manifest.SegmentState{{SegmentID: 1, Tier2: manifest.Tier2Object{Key: "k"}}}}
	_, _, err = (&tier2Checker{store: &fakeObjects{layout: layout, errs: map[string]error{"k": context.Canceled}}, workers: 1}).check(cctx, 1, in)
	require.ErrorIs(t, err, context.Canceled)
	require.False(t, errors.As(err, &te))
}
