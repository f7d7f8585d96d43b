package manifest

import (
	"context"
	"math"
	"math/rand/v2"
	"path/filepath"
	"testing"

	"github.com/aof2/aof2/core/vfs"
)

// TestChunkHeaderTailOffsetOverflow: a chunk header whose tail_offset is
// near 2^64 is refused (TailOffset+recordHeaderLen+8 wrapped around and
// passed the check).
func TestChunkHeaderTailOffsetOverflow(t *testing.T) {
	h := ChunkHeader{Index: 3, BaseRecord: 0, TailOffset: math.MaxUint64 - 7, CommittedLen: 112, CRC64: 1, Flags: FlagSealed}
	got, err := decodeChunkHeader(h.marshal())
	if err == nil {
		t.Fatalf("accepted header with tail_offset %d > committed_len %d: %+v", got.TailOffset, got.CommittedLen, got)
	}
}

// TestMisnamedOlderSnapshotKeepsNewest: an older snapshot file whose CRC
// verifies but whose snapshot_id does not match its name is rejected
// alone; the newer, valid snapshot already chosen stays chosen.
func TestMisnamedOlderSnapshotKeepsNewest(t *testing.T) {
	ctx := context.Background()
	mem := vfs.NewMem()
	l := openT(t, mem, testOpts())
	r := rand.New(rand.NewPCG(1, 2))
	var recs []Record
	var ids []uint64
	for range 3 {
		recs = commitRandom(t, l, r, recs, 20, 8)
		if err := l.Rotate(ctx); err != nil {
			t.Fatal(err)
		}
		for _, c := range l.SealedChunks() {
			if !c.Uploaded {
				if err := l.MarkUploaded(ctx, c.Index); err != nil {
					t.Fatal(err)
				}
			}
		}
		info, err := l.Snapshot(ctx)
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, info.ID)
	}
	want := l.Index()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	mdir := filepath.Join(testDir, manifestDirName)
	names, _ := mem.List(mdir)
	t.Logf("files: %v", names)
	// Replace the second-newest snapshot by a CRC-valid one naming another id.
	older := filepath.Join(mdir, snapshotName(ids[1]))
	b, err := vfs.ReadFile(mem, older)
	if err != nil {
		t.Fatal(err)
	}
	s, err := decodeSnapshot(b, 7)
	if err != nil {
		t.Fatal(err)
	}
	s.ID = 99
	if err := vfs.WriteFileAtomic(mem, older, encodeSnapshot(s)); err != nil {
		t.Fatal(err)
	}
	l2 := openT(t, mem, testOpts())
	defer l2.Close()
	st := l2.Replay()
	t.Logf("replay: snapshot %d, corruptions %+v, needs repair %v", st.SnapshotID, st.Corruptions, st.NeedsRepair)
	if st.SnapshotID != ids[2] {
		t.Errorf("replay started from snapshot %d, not from the newest valid snapshot %d", st.SnapshotID, ids[2])
	}
	if st.NeedsRepair {
		t.Errorf("a damaged older snapshot made the stream NeedsRepair although the newest snapshot is intact")
	}
	if got := l2.Index(); !equalSegments(got.Segments(), want.Segments()) || got.Records != want.Records {
		t.Errorf("recovered %d records, want %d", got.Records, want.Records)
	}
}

// TestDamagedChunkRememberedAfterRestart: a damaged chunk not yet
// uploaded stays known as damaged after a restart, though a repair
// snapshot lies past it (older chunks are read header-only, except those
// still to be uploaded): it is not listed for upload, MarkUploaded
// refuses it, and local retention keeps it.
func TestDamagedChunkRememberedAfterRestart(t *testing.T) {
	ctx := context.Background()
	mem := vfs.NewMem()
	l := openT(t, mem, testOpts())
	r := rand.New(rand.NewPCG(3, 4))
	var recs []Record
	for range 2 {
		recs = commitRandom(t, l, r, recs, 10, 8)
		if err := l.Rotate(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	// Bit rot inside the first record of sealed chunk 0 (never uploaded).
	flipFileBit(t, mem, filepath.Join(mdirT, chunkName(0)), (chunkHeaderLen+44)*8)

	opts := testOpts()
	opts.GroundTruth = &groundTruth{}
	l2 := openT(t, mem, opts)
	if !l2.Replay().NeedsRepair || !l2.Replay().Repaired {
		t.Fatalf("setup: expected a repaired corruption, got %+v", l2.Replay())
	}
	for _, c := range l2.SealedChunks() {
		if c.Index == 0 {
			t.Fatalf("setup: damaged chunk 0 listed right after the repair")
		}
	}
	if err := l2.Close(); err != nil {
		t.Fatal(err)
	}

	l3 := openT(t, mem, opts)
	defer l3.Close()
	for _, c := range l3.SealedChunks() {
		if c.Index == 0 {
			t.Errorf("after a restart the damaged chunk 0 is listed as a sealed, intact chunk to upload: %+v", c)
		}
	}
	if err := l3.MarkUploaded(ctx, 0); err == nil {
		t.Errorf("MarkUploaded accepted the damaged chunk 0")
	}
	// Drive retention: more sealed, uploaded chunks and two snapshots.
	for range 4 {
		recs = commitRandom(t, l3, r, recs, 5, 8)
		if err := l3.Rotate(ctx); err != nil {
			t.Fatal(err)
		}
		for _, c := range l3.SealedChunks() {
			if !c.Uploaded {
				_ = l3.MarkUploaded(ctx, c.Index)
			}
		}
		if _, err := l3.Snapshot(ctx); err != nil {
			t.Fatal(err)
		}
	}
	names, _ := mem.List(mdirT)
	t.Logf("files: %v", names)
	if _, err := mem.Stat(filepath.Join(mdirT, chunkName(0))); err != nil {
		t.Errorf("the damaged chunk 0 was removed by retention: %v", err)
	}
}
