package manifest

import (
	"context"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/aof2/aof2/core/checksum"
	"github.com/aof2/aof2/core/vfs"
)

// randomIndex folds n random records.
func randomIndex(seed uint64, n int) *Index {
	r := rand.New(rand.NewPCG(seed, 1))
	var recs []Record
	for i := range n {
		recs = append(recs, genRecord(r, uint64(i), 40))
	}
	return fold(9, recs)
}

// reseal recomputes the trailing CRC of a snapshot after a test edit, so
// that the structural checks behind it are reached.
func reseal(b []byte) []byte {
	end := len(b) - snapTrailerLen
	le.PutUint64(b[end:], checksum.Sum64(b[:end]))
	return b
}

func TestSnapshotRoundTrip(t *testing.T) {
	for _, n := range []int{0, 1, 50, 2000} {
		x := randomIndex(uint64(n), n)
		x.LastSnapshotID = 4
		s := Snapshot{ID: 5, ChunkIndex: 12, ChunkOffset: 4096, Index: x}
		b := encodeSnapshot(s)
		assert.Equal(t, "AOF2SNAP", string(b[:8]))
		got, err := decodeSnapshot(b, 9)
		require.NoError(t, err, "n=%d", n)
		assert.Equal(t, s.ID, got.ID)
		assert.Equal(t, s.ChunkIndex, got.ChunkIndex)
		assert.Equal(t, s.ChunkOffset, got.ChunkOffset)
		assert.Equal(t, x.Segments(), got.Index.Segments())
		assert.Equal(t, x.Records, got.Index.Records)
		assert.Equal(t, x.UnknownRecords, got.Index.UnknownRecords)
		assert.Equal(t, x.LastSnapshotID, got.Index.LastSnapshotID)
		assert.Equal(t, b, encodeSnapshot(got), "canonical: re-encoding gives the same bytes")
		m, err := peekSnapshot(b, 9)
		require.NoError(t, err)
		assert.Equal(t, snapMeta{ID: 5, ChunkIndex: 12, ChunkOffset: 4096}, m)
	}
}

func TestSnapshotDetectsEveryBitFlip(t *testing.T) {
	x := randomIndex(7, 30)
	b := encodeSnapshot(Snapshot{ID: 1, ChunkIndex: 0, ChunkOffset: 64, Index: x})
	for bit := range len(b) * 8 {
		c := append([]byte(nil), b...)
		c[bit/8] ^= 1 << (bit % 8)
		_, err := decodeSnapshot(c, 9)
		require.ErrorIs(t, err, ErrCorrupt, "bit %d", bit)
	}
	for n := range len(b) {
		_, err := decodeSnapshot(b[:n], 9)
		require.ErrorIs(t, err, ErrCorrupt, "truncated to %d", n)
	}
	_, err := decodeSnapshot(b, 10)
	require.ErrorIs(t, err, ErrCorrupt, "another stream's snapshot")
}

func TestSnapshotStructuralChecks(t *testing.T) {
	x := NewIndex(9)
	x.Apply(SegmentOpened{Header: Header{SegmentID: 1}})
	x.Apply(SegmentOpened{Header: Header{SegmentID: 2}})
	good := encodeSnapshot(Snapshot{ID: 1, ChunkIndex: 0, ChunkOffset: 64, Index: x})
	entry := snapHeaderLen // first entry
	cases := []struct {
		name string
		mut  func(b []byte)
	}{
		{"residency inconsistent", func(b []byte) { b[entry+12] = uint8(UploadedToTier2) }},
		{"unknown segment flag", func(b []byte) { b[entry+13] |= 0x80 }},
		{"tier1 state out of range", func(b []byte) { b[entry+14] = 9 }},
		{"reserved byte", func(b []byte) { b[entry+15] = 1 }},
		{"segments out of order", func(b []byte) { le.PutUint64(b[entry+4:], 5) }},
		{"segment count too large", func(b []byte) { le.PutUint32(b[72:], 1<<30) }},
		{"segment count too small", func(b []byte) { le.PutUint32(b[72:], 1) }},
		{"body_len", func(b []byte) { le.PutUint32(b[76:], 3) }},
		{"entry_len huge", func(b []byte) { le.PutUint32(b[entry:], 1<<31) }},
		{"position unaligned", func(b []byte) { le.PutUint64(b[40:], 65) }},
		{"position before header", func(b []byte) { le.PutUint64(b[40:], 8) }},
		{"unknown above records", func(b []byte) { le.PutUint64(b[56:], 99) }},
		{"version", func(b []byte) { le.PutUint32(b[8:], 2) }},
		{"header_len", func(b []byte) { le.PutUint32(b[12:], 64) }},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			b := append([]byte(nil), good...)
			c.mut(b)
			_, err := decodeSnapshot(reseal(b), 9)
			require.ErrorIs(t, err, ErrCorrupt)
		})
	}
}

func TestSnapshotNames(t *testing.T) {
	id, ok := parseSnapshotName(snapshotName(42))
	assert.True(t, ok)
	assert.Equal(t, uint64(42), id)
	for _, bad := range []string{"snapshot_42.bin", "snapshot_00000000000000000042.bin.tmp", "x.bin", "snapshot_0000000000000000004x.bin"} {
		_, ok := parseSnapshotName(bad)
		assert.False(t, ok, bad)
	}
	idx, tmp, ok := parseChunkName(chunkTmpName(3))
	assert.True(t, ok && tmp)
	assert.Equal(t, uint64(3), idx)
	_, _, ok = parseChunkName("3.mlog")
	assert.False(t, ok)
}

// Close while a snapshot is between its file and its marker: the snapshot
// finishes first, so the directory never holds a file without its marker
// (which verify reports as the trace of a crash).
func TestCloseWaitsForSnapshot(t *testing.T) {
	ctx := context.Background()
	renaming, resume := make(chan struct{}), make(chan struct{})
	var once sync.Once
	mem := vfs.NewMem()
	fsys := vfs.Wrap(mem, vfs.InjectorFunc(func(op vfs.Op) vfs.Fault {
		if op.Kind == vfs.OpRename && strings.Contains(op.Path, "snapshot_") {
			once.Do(func() {
				close(renaming)
				<-resume
			})
		}
		return vfs.NoFault
	}))
	l := openT(t, fsys, testOpts())
	require.NoError(t, l.AppendCommit(ctx, SegmentOpened{Header: Header{SegmentID: 1}}))
	snapped := make(chan error, 1)
	go func() { _, err := l.Snapshot(ctx); snapped <- err }()
	<-renaming
	closed := make(chan error, 1)
	go func() { closed <- l.Close() }()
	// Give Close the chance to cut in; with the fix it waits for the
	// snapshot and this wait runs out.
	closing := func() bool { l.mu.Lock(); defer l.mu.Unlock(); return l.mu.closing }
	assert.Never(t, closing, 200*time.Millisecond, time.Millisecond, "Close ran ahead of the snapshot")
	close(resume)
	require.NoError(t, <-snapped, "the snapshot in progress completes")
	require.NoError(t, <-closed)
	f, err := NewInspector(mem, testDir, 7).Verify(ctx, VerifyOptions{LogOnly: true})
	require.NoError(t, err)
	assert.Empty(t, f)
}
