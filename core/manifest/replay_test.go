package manifest

import (
	"context"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/aof2/aof2/core/types"
	"github.com/aof2/aof2/core/vfs"
)

var mdirT = filepath.Join(testDir, manifestDirName)

// checkStitched asserts that the chunks of the stream hold recs in order:
// contiguous indices, base_record continuing the previous chunk, every
// chunk sealed, and the decoded records equal to recs.
func checkStitched(t *testing.T, fsys vfs.FS, recs []Record) int {
	t.Helper()
	in, err := NewInspector(fsys, testDir, 7).Inspect(context.Background(), InspectOptions{Records: true})
	require.NoError(t, err)
	var got []Record
	next := uint64(0)
	for i, c := range in.Chunks {
		require.True(t, c.Committed, c.File)
		require.Empty(t, c.Error, c.File)
		require.True(t, c.CRCValid, c.File)
		require.Equal(t, uint64(i), c.Index, "chunk indices are contiguous")
		require.Equal(t, next, c.Header.BaseRecord, "chunk %d continues the record sequence", i)
		require.LessOrEqual(t, c.Header.CommittedLen, uint64(MinChunkCapacity))
		next += uint64(c.RecordCount)
		for _, r := range c.Records {
			got = append(got, r.Record)
		}
	}
	require.Equal(t, len(recs), len(got))
	for i, want := range stamped(recs) {
		require.Equal(t, want, got[i], "record %d", i)
	}
	return len(in.Chunks)
}

func TestReplayRotationBoundaries(t *testing.T) {
	ctx := context.Background()
	for seed := range uint64(6) {
		t.Run(fmt.Sprint("seed", seed), func(t *testing.T) {
			r := rand.New(rand.NewPCG(seed, 77))
			mem := vfs.NewMem()
			l := openT(t, mem, testOpts())
			var recs []Record
			for i := range 400 {
				var rec Record
				switch r.IntN(4) {
				case 0: // two of these fill a 16 KiB chunk to the byte: 64 + 2×8160
					rec = CustomEvent{Header: Header{SegmentID: 1, LogicalOffset: uint64(i)}, Blob: make([]byte, 8114)}
				case 1: // sizes around a chunk's remaining space
					rec = CustomEvent{Header: Header{SegmentID: 2, LogicalOffset: uint64(i)}, Blob: make([]byte, r.IntN(MinChunkCapacity-200))}
				default:
					rec = genRecord(r, uint64(i), 120)
				}
				recs = append(recs, rec)
				require.NoError(t, l.Append(rec))
				if r.IntN(5) == 0 {
					require.NoError(t, l.Commit(ctx))
				}
			}
			require.NoError(t, l.Close())
			l2 := openT(t, mem, testOpts())
			require.NoError(t, l2.Close())
			n := checkStitched(t, mem, recs)
			assert.Greater(t, n, 50)
			l3 := openT(t, mem, testOpts())
			defer l3.Close()
			assert.Equal(t, fold(7, recs).Segments(), l3.Index().Segments())
			assert.Equal(t, n, l3.Replay().ChunksInspected)
		})
	}
}

func TestReplayExactFill(t *testing.T) {
	ctx := context.Background()
	mem := vfs.NewMem()
	l := openT(t, mem, testOpts())
	half := CustomEvent{Header: Header{SegmentID: 1}, Blob: make([]byte, 8114)}
	require.Equal(t, int64(MinChunkCapacity-chunkHeaderLen)/2, frameBytes(t, half))
	require.NoError(t, l.AppendCommit(ctx, half, half))
	assert.Empty(t, l.SealedChunks(), "a full chunk is sealed only when the next record arrives")
	require.NoError(t, l.AppendCommit(ctx, half))
	sealed := l.SealedChunks()
	require.Len(t, sealed, 1)
	assert.Equal(t, uint64(MinChunkCapacity), sealed[0].CommittedLen)
	require.NoError(t, l.Close())
	checkStitched(t, mem, []Record{half, half, half})
}

func TestReplayCrashOnCommitTrimmed(t *testing.T) {
	ctx := context.Background()
	cases := []struct {
		name       string
		freshChunk bool // the interrupted commit is the chunk's first
		powerLoss  bool // recover what survives a power loss, not a process crash
	}{
		{"process crash", false, false},
		{"power loss", false, true},
		{"process crash in a chunk's first commit", true, false},
		{"power loss in a chunk's first commit", true, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			mem := vfs.NewMem()
			inj := vfs.Wrap(mem, nil)
			l := openT(t, inj, testOpts())
			var committed []Record
			if !c.freshChunk {
				committed = []Record{SegmentOpened{Header: Header{SegmentID: 1}}, SealSegment{Header: Header{SegmentID: 1}, DurableBytes: 10}}
				require.NoError(t, l.AppendCommit(ctx, committed...))
			}
			lost := []Record{CompressionStarted{Header: Header{SegmentID: 1}, JobID: 1}, CompressionDone{Header: Header{SegmentID: 1}, CompressedBytes: 5}}
			n := 0
			if c.freshChunk {
				n = 1 // the first header write is the empty header of the new file
			}
			inj.SetInjector(vfs.OnMatch(

				n, func(op vfs.Op) bool {
					return op.Kind == vfs.OpWrite && op.Off == 0 && op.Len == chunkHeaderLen
				}, vfs.FaultEIO, true))
			require.ErrorIs(t, l.AppendCommit(ctx, lost...), ErrFailed)
			require.NoError(t, l.Close())

			var disk vfs.FS = mem
			wantLag := frameBytes(t, lost...)
			if c.powerLoss {
				disk = mem.CrashClone(vfs.CrashOptions{Rand: rand.New(rand.NewPCG(1, 1))}) // synced bytes only
				if c.freshChunk {
					wantLag = 0 // the .mlog.tmp's directory entry was never made durable
				}
			}
			l2 := openT(t, disk, testOpts())
			st := l2.Replay()
			assert.Equal(t, wantLag, st.JournalLagBytes, "journal lag is exactly the trimmed commit")
			assert.Zero(t, st.CorruptionEvents)
			assert.Equal(t, fold(7, committed).Segments(), l2.Index().Segments(), "the interrupted commit is not applied")
			require.NoError(t, l2.Close())

			l3 := openT(t, disk, testOpts())
			assert.Zero(t, l3.Replay().JournalLagBytes, "trimmed bytes are gone for good")
			more := SegmentOpened{Header: Header{SegmentID: 2}}
			require.NoError(t, l3.AppendCommit(ctx, more))
			require.NoError(t, l3.Close())
			l4 := openT(t, disk, testOpts())
			defer l4.Close()
			want := append(append([]Record{}, committed...), more)
			assert.Equal(t, fold(7, want).Segments(), l4.Index().Segments(), "nothing applied twice, nothing resurrected")
			assert.Equal(t, uint64(len(want)), l4.Index().Records)
		})
	}
}

func TestReplayFromSnapshotMarker(t *testing.T) {
	ctx := context.Background()
	mem := vfs.NewMem()
	l := openT(t, mem, testOpts())
	r := rand.New(rand.NewPCG(5, 5))
	recs := commitRandom(t, l, r, nil, 150, 100)
	s1, err := l.Snapshot(ctx)
	require.NoError(t, err)
	recs = commitRandom(t, l, r, recs, 150, 100)
	s2, err := l.Snapshot(ctx)
	require.NoError(t, err)
	recs = commitRandom(t, l, r, recs, 40, 100)
	require.NoError(t, l.Close())
	require.Greater(t, s2.ChunkIndex, s1.ChunkIndex)

	l2 := openT(t, mem, testOpts())
	st := l2.Replay()
	assert.Equal(t, s2.ID, st.SnapshotID)
	assert.Equal(t, s2.ChunkIndex, st.SnapshotChunk)
	assert.Equal(t, s2.ChunkOffset, st.SnapshotOffset)
	assert.Equal(t, uint64(41), st.RecordsApplied, "the marker and the 40 records after the snapshot")
	assert.Equal(t, fold(7, recs).Segments(), l2.Index().Segments())
	assert.Equal(t, uint64(len(recs)+2), l2.Index().Records, "records plus two markers")
	assert.Equal(t, s2.ID, l2.Index().LastSnapshotID)
	require.NoError(t, l2.Close())

	// The newest snapshot damaged: replay falls back to the older one, with
	// nothing lost, and says so.
	flipFileBit(t, mem, filepath.Join(mdirT, snapshotName(s2.ID)), 900)
	l3 := openT(t, mem, testOpts())
	st = l3.Replay()
	assert.Equal(t, s1.ID, st.SnapshotID)
	assert.Equal(t, 1, st.CorruptionEvents)
	assert.False(t, st.NeedsRepair, "an older snapshot and the log cover everything")
	assert.Equal(t, fold(7, recs).Segments(), l3.Index().Segments())
	require.NoError(t, l3.Close())
}

// flipFileBit flips one bit of a file in place.
func flipFileBit(t testing.TB, fsys vfs.FS, path string, bit int64) {
	t.Helper()
	f, err := fsys.OpenReadWrite(path)
	require.NoError(t, err)
	defer f.Close()
	b := make([]byte, 1)
	_, err = f.ReadAt(b, bit/8)
	require.NoError(t, err)
	b[0] ^= 1 << (bit % 8)
	_, err = f.WriteAt(b, bit/8)
	require.NoError(t, err)
	require.NoError(t, f.Sync())
}

// TestReplayDetectsBitFlips flips single bits across the committed region
// of a chunk (every header bit, a sample of the records) and checks that
// replay reports every one and never hands back a shorter log silently.
func TestReplayDetectsBitFlips(t *testing.T) {
	ctx := context.Background()
	base := vfs.NewMem()
	l := openT(t, base, testOpts())
	r := rand.New(rand.NewPCG(8, 8))
	recs := commitRandom(t, l, r, nil, 40, 60)
	require.NoError(t, l.Close())
	path := filepath.Join(mdirT, chunkName(0))
	hdr, _, err := readChunkHeader(base, path)
	require.NoError(t, err)
	size := int64(hdr.CommittedLen)

	bits := []int64{}
	for b := range int64(chunkHeaderLen * 8) {
		// Flags bits 0 (sealed) and 1 (uploaded) are not covered by any
		// checksum: the chunk header has none (docs/formats.md#chunk-header, docs/adr-manifest.md).
		if b == 56*8 || b == 56*8+1 {
			continue
		}
		bits = append(bits, b)
	}
	for range 600 {
		bits = append(bits, chunkHeaderLen*8+r.Int64N((size-chunkHeaderLen)*8))
	}
	for _, bit := range bits {
		mem := base.CrashClone(vfs.CrashOptions{Rand: rand.New(rand.NewPCG(1, 1))})
		flipFileBit(t, mem, path, bit)
		res, err := replay(ctx, mem, mdirT, 7, SystemClock)
		require.NoError(t, err)
		st := res.stats
		require.Greater(t, st.CorruptionEvents, 0, "bit %d (byte %d) went unnoticed", bit, bit/8)
		require.True(t, st.NeedsRepair, "bit %d", bit)
		// What was applied is a verified prefix of the records.
		n := int(st.RecordsApplied)
		require.LessOrEqual(t, n, len(recs))
		require.Equal(t, fold(7, recs[:n]).Segments(), res.index.Segments(), "bit %d", bit)
	}
}

// groundTruth is a fake engine: tier-0 facts plus optional warm and tier-2
// listings.
type groundTruth struct {
	calls int
	facts []SegmentFacts
	warm  []WarmArtifact
	tier2 []Tier2Segment
}

func (g *groundTruth) Segments(context.Context) ([]SegmentFacts, error) {
	g.calls++
	return g.facts, nil
}

type fullGroundTruth struct{ *groundTruth }

func (g fullGroundTruth) WarmArtifacts(context.Context) ([]WarmArtifact, error) { return g.warm, nil }
func (g fullGroundTruth) Tier2Segments(context.Context) ([]Tier2Segment, error) { return g.tier2, nil }

func TestCorruptionCallsGroundTruthAndRepairs(t *testing.T) {
	ctx := context.Background()
	mem := vfs.NewMem()
	l := openT(t, mem, testOpts())
	for id := uint64(1); id <= 3; id++ {
		h := Header{SegmentID: types.SegmentID(id)}
		require.NoError(t, l.AppendCommit(ctx, SegmentOpened{Header: h}, SealSegment{Header: h, DurableBytes: id * 100}))
	}
	require.NoError(t, l.Rotate(ctx))
	h4 := Header{SegmentID: 4}
	require.NoError(t, l.AppendCommit(ctx, SegmentOpened{Header: h4}, UploadDone{Header: Header{SegmentID: 1}, Key: "k1", ETag: "e1"}))
	require.NoError(t, l.Close())
	// Damage the second record frame of chunk 0 (segment 1's seal).
	frame := frameBytes(t, SegmentOpened{})
	flipFileBit(t, mem, filepath.Join(mdirT, chunkName(0)), (chunkHeaderLen+frame+44)*8)

	gt := &groundTruth{facts: []SegmentFacts{
		{SegmentID: 1, Sealed: true, DurableBytes: 100, SegmentCRC64: 11},
		{SegmentID: 2, Sealed: true, DurableBytes: 200},
		{SegmentID: 3, Sealed: true, DurableBytes: 300},
		{SegmentID: 4},
	}}
	opts := testOpts()
	opts.GroundTruth = fullGroundTruth{gt}
	gt.warm = []WarmArtifact{{SegmentID: 2, CompressedBytes: 50}}
	gt.tier2 = []Tier2Segment{{SegmentID: 1, Key: "k1", ETag: "e1"}}
	reg, logs := prometheus.NewRegistry(), &syncBuffer{}
	opts.Registerer, opts.Logger = reg, jsonLogger(logs)
	l2 := openT(t, mem, opts)
	st := l2.Replay()
	assert.Equal(t, 1, st.CorruptionEvents)
	n, ok := metricValue(t, reg, MetricReplayCorruption, 7)
	require.True(t, ok)
	assert.Equal(t, 1.0, n)
	ev := metricEvents(t, logs)[MetricReplayCorruption]
	require.Len(t, ev, 1)
	assert.Equal(t, "error", ev[0]["@level"])
	assert.Equal(t, true, ev[0]["needs_repair"])
	assert.Contains(t, logs.String(), `"@message":"manifest_corruption"`)
	assert.True(t, st.NeedsRepair)
	assert.True(t, st.Repaired)
	assert.Equal(t, 1, gt.calls, "the rebuild hook was called")
	assert.False(t, l2.NeedsRepair())
	s1, ok := l2.Segment(1)
	require.True(t, ok)
	assert.True(t, s1.Sealed, "segment 1's seal, lost with the damaged record, came back from its footer")
	assert.Equal(t, uint64(100), s1.DurableBytes)
	assert.Equal(t, "k1", s1.Tier2.Key)
	s2, _ := l2.Segment(2)
	assert.Equal(t, Tier1Compressed, s2.Tier1.State)
	for id := uint64(1); id <= 4; id++ {
		_, ok := l2.Segment(types.SegmentID(id))
		assert.True(t, ok, "segment %d survives the damage", id)
	}
	require.NoError(t, l2.Close())

	// The repair snapshot lies past the damage: the next boot is clean.
	gt.calls = 0
	l3 := openT(t, mem, opts)
	defer l3.Close()
	assert.Zero(t, l3.Replay().CorruptionEvents)
	assert.False(t, l3.Replay().NeedsRepair)
	assert.Zero(t, gt.calls)
	s1, _ = l3.Segment(1)
	assert.True(t, s1.Sealed)
}

func TestCorruptionWithoutGroundTruthStaysFlagged(t *testing.T) {
	ctx := context.Background()
	mem := vfs.NewMem()
	l := openT(t, mem, testOpts())
	require.NoError(t, l.AppendCommit(ctx, SegmentOpened{Header: Header{SegmentID: 1}}))
	require.NoError(t, l.Rotate(ctx))
	require.NoError(t, l.AppendCommit(ctx, SegmentOpened{Header: Header{SegmentID: 2}}))
	require.NoError(t, l.Close())
	flipFileBit(t, mem, filepath.Join(mdirT, chunkName(0)), (chunkHeaderLen+20)*8)

	l2 := openT(t, mem, testOpts())
	assert.True(t, l2.NeedsRepair())
	_, ok := l2.Segment(2)
	assert.True(t, ok, "chunks after the damaged one are still replayed")
	// The damaged chunk is left as found.
	in, err := NewInspector(mem, testDir, 7).Inspect(ctx, InspectOptions{})
	require.NoError(t, err)
	assert.False(t, in.Chunks[0].CRCValid)
	_, err = l2.Repair(ctx, nil)
	require.ErrorIs(t, err, ErrInvalidConfig)
	_, err = l2.Repair(ctx, &groundTruth{facts: []SegmentFacts{{SegmentID: 1}, {SegmentID: 2}}})
	require.NoError(t, err)
	assert.False(t, l2.NeedsRepair())
	require.NoError(t, l2.Close())
}

func TestReplaySkipsUnknownRecordTypes(t *testing.T) {
	ctx := context.Background()
	mem := vfs.NewMem()
	l := openT(t, mem, testOpts())
	require.NoError(t, l.appendRecords([]Record{
		SegmentOpened{Header: Header{SegmentID: 1}},
		Unknown{Header: Header{SegmentID: 1}, RecordType: 200, Payload: []byte("from the future")},
		SealSegment{Header: Header{SegmentID: 1}, DurableBytes: 3},
	}, true))
	require.NoError(t, l.Commit(ctx))
	require.NoError(t, l.Close())
	l2 := openT(t, mem, testOpts())
	defer l2.Close()
	st := l2.Replay()
	assert.Equal(t, uint64(1), st.UnknownRecords)
	assert.Zero(t, st.CorruptionEvents)
	assert.Equal(t, uint64(3), l2.Index().Records)
	s, _ := l2.Segment(1)
	assert.True(t, s.Sealed, "records after the unknown one apply")
}

func TestReplayReportsMissingChunk(t *testing.T) {
	ctx := context.Background()
	mem := vfs.NewMem()
	l := openT(t, mem, testOpts())
	for id := uint64(1); id <= 3; id++ {
		require.NoError(t, l.AppendCommit(ctx, SegmentOpened{Header: Header{SegmentID: types.SegmentID(id)}}))
		require.NoError(t, l.Rotate(ctx))
	}
	require.NoError(t, l.Close())
	require.NoError(t, mem.Remove(filepath.Join(mdirT, chunkName(1))))
	l2 := openT(t, mem, testOpts())
	defer l2.Close()
	st := l2.Replay()
	require.Equal(t, 1, st.CorruptionEvents)
	assert.Contains(t, st.Corruptions[0].Reason, "chunks 1 to 1 are missing")
	assert.True(t, st.NeedsRepair, "a missing chunk is never a silently shorter log")
	_, ok := l2.Segment(3)
	assert.True(t, ok)
}

func TestReplayReportsMissingSnapshotChunk(t *testing.T) {
	ctx := context.Background()
	mem := vfs.NewMem()
	l := openT(t, mem, testOpts())
	require.NoError(t, l.AppendCommit(ctx, SegmentOpened{Header: Header{SegmentID: 1}}))
	s, err := l.Snapshot(ctx)
	require.NoError(t, err)
	require.Greater(t, s.ChunkOffset, uint64(chunkHeaderLen))
	require.NoError(t, l.AppendCommit(ctx, SegmentOpened{Header: Header{SegmentID: 2}}))
	require.NoError(t, l.Close())
	require.NoError(t, mem.Remove(filepath.Join(mdirT, chunkName(s.ChunkIndex))))
	l2 := openT(t, mem, testOpts())
	defer l2.Close()
	st := l2.Replay()
	require.Equal(t, 1, st.CorruptionEvents, "%+v", st.Corruptions)
	assert.Contains(t, st.Corruptions[0].Reason, "holding the snapshot position, is missing")
	assert.True(t, st.NeedsRepair)
}
