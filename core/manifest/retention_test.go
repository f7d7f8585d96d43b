package manifest

import (
	"context"
	"maps"
	"slices"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/aof2/aof2/core/checksum"
	"github.com/aof2/aof2/core/types"
	"github.com/aof2/aof2/core/vfs"
)

// fakeUploader copies sealed chunks to an in-memory "tier 2", verifying
// each copy against the chunk's CRC, and marks them uploaded. While down,
// it accepts nothing.
type fakeUploader struct {
	mu      sync.Mutex
	fs      vfs.FS
	objects map[string][]byte
	queue   []SealedChunk
	down    bool
}

func (u *fakeUploader) enqueue(c SealedChunk) {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.queue = append(u.queue, c)
}

// drain uploads what is queued (synchronously, for determinism).
func (u *fakeUploader) drain(t *testing.T, l *Log) {
	t.Helper()
	u.mu.Lock()
	q := u.queue
	if u.down {
		q = nil
	} else {
		u.queue = nil
	}
	u.mu.Unlock()
	for _, c := range q {
		b, err := vfs.ReadFile(u.fs, c.Path)
		require.NoError(t, err)
		require.Equal(t, c.CommittedLen, uint64(len(b)), "a sealed chunk is truncated to its committed length")
		require.Equal(t, c.CRC64, Hex64(checksum.Sum64(b[chunkHeaderLen:])), "the copy verifies")
		u.mu.Lock()
		u.objects[c.Tier2Key()] = b
		u.mu.Unlock()
		require.NoError(t, l.MarkUploaded(context.Background(), c.Index))
	}
}

func (u *fakeUploader) ChunkObjects(context.Context) ([]uint64, error) {
	u.mu.Lock()
	defer u.mu.Unlock()
	var out []uint64
	for k := range u.objects {
		idx, _, ok := parseChunkName(k[len("streams/7/manifest/"):])
		if ok {
			out = append(out, idx)
		}
	}
	return out, nil
}

func localChunks(t *testing.T, fsys vfs.FS) []uint64 {
	t.Helper()
	l, err := listManifest(fsys, mdirT)
	require.NoError(t, err)
	return l.chunks
}

func TestRetentionWithFakeUploader(t *testing.T) {
	ctx := context.Background()
	mem := vfs.NewMem()
	up := &fakeUploader{fs: mem, objects: map[string][]byte{}}
	opts := testOpts()
	opts.OnChunkSealed = up.enqueue
	l := openT(t, mem, opts)
	var recs []Record
	blob := make([]byte, 3000)
	for round := range 12 {
		for range 12 { // ~36 KiB: two or three 16 KiB chunks per round
			rec := CustomEvent{Header: Header{SegmentID: types.SegmentID(round%3 + 1), LogicalOffset: uint64(len(recs))}, Blob: blob}
			recs = append(recs, rec)
			require.NoError(t, l.AppendCommit(ctx, rec))
		}
		up.drain(t, l)
		_, err := l.Snapshot(ctx)
		require.NoError(t, err)

		local := localChunks(t, mem)
		l.mu.Lock()
		snaps := slices.Clone(l.mu.snapshots)
		active := l.mu.pending[0].index
		l.mu.Unlock()
		require.LessOrEqual(t, len(snaps), 2, "two snapshots are kept")
		keepFrom := snaps[0].ChunkIndex
		sealed := l.SealedChunks()
		for i := keepFrom; i < active; i++ {
			require.Contains(t, local, i, "round %d: chunk %d is newer than the fallback snapshot", round, i)
		}
		if n := len(sealed); n >= 2 {
			require.Contains(t, local, sealed[n-1].Index)
			require.Contains(t, local, sealed[n-2].Index)
		}
		for i := uint64(0); i < local[0]; i++ {
			require.Contains(t, up.objects, SealedChunk{StreamID: 7, Index: i}.Tier2Key(), "chunk %d was removed locally before it was uploaded", i)
		}
	}
	local := localChunks(t, mem)
	assert.Greater(t, local[0], uint64(10), "old chunks were removed")
	assert.Less(t, len(local), 10, "local chunks stay bounded")

	// Flags and retention survive a restart; replay starts at the snapshot.
	require.NoError(t, l.Close())
	l = openT(t, mem, opts)
	defer l.Close()
	uploaded := 0
	for _, c := range l.SealedChunks() {
		if c.Uploaded {
			uploaded++
			assert.Contains(t, up.objects, c.Tier2Key())
		}
	}
	assert.Greater(t, uploaded, 0, "uploaded flags persist")
	assert.NotZero(t, l.Replay().SnapshotID)
	assert.Zero(t, l.Replay().CorruptionEvents)
	up.enqueue(l.SealedChunks()[len(l.SealedChunks())-1]) // sealed by this Open

	// The uploader goes down: nothing more is removed, however many
	// snapshots follow.
	up.mu.Lock()
	up.down = true
	up.mu.Unlock()
	for range 4 {
		for range 12 {
			require.NoError(t, l.AppendCommit(ctx, CustomEvent{Header: Header{SegmentID: 1}, Blob: blob}))
		}
		up.drain(t, l)
		_, err := l.Snapshot(ctx)
		require.NoError(t, err)
	}
	for _, c := range l.SealedChunks() {
		require.Contains(t, localChunks(t, mem), c.Index)
	}
	for i := uint64(0); i < localChunks(t, mem)[0]; i++ {
		require.Contains(t, up.objects, SealedChunk{StreamID: 7, Index: i}.Tier2Key(), "chunk %d was removed locally before it was uploaded", i)
	}
	notUploaded := 0
	for _, c := range l.SealedChunks() {
		if !c.Uploaded {
			notUploaded++
		}
	}
	assert.Greater(t, notUploaded, 5, "chunks not in tier 2 pile up locally rather than being removed")

	findings, err := NewInspector(mem, testDir, 7).Verify(ctx, VerifyOptions{LogOnly: true, Tier2: up})
	require.NoError(t, err)
	for _, f := range findings {
		assert.NotEqual(t, SeverityError, f.Severity, "%+v", f)
	}
	// A tier 2 that lost an object is reported.
	up.mu.Lock()
	for k := range up.objects {
		delete(up.objects, k)
		break
	}
	up.mu.Unlock()
	findings, err = NewInspector(mem, testDir, 7).Verify(ctx, VerifyOptions{LogOnly: true, Tier2: up})
	require.NoError(t, err)
	require.True(t, slices.ContainsFunc(findings, func(f Finding) bool { return f.Code == "tier2_missing" }), "%+v", findings)
}

func TestRetentionPlan(t *testing.T) {
	chunk := func(sealed, uploaded, corrupt bool) *chunkMeta {
		var f ChunkFlags
		if sealed {
			f |= FlagSealed
		}
		if uploaded {
			f |= FlagUploaded
		}
		return &chunkMeta{hdr: ChunkHeader{Flags: f}, corrupt: corrupt}
	}
	all := func(n uint64) map[uint64]*chunkMeta {
		m := map[uint64]*chunkMeta{}
		for i := range n {
			m[i] = chunk(true, true, false)
		}
		return m
	}
	two := []snapMeta{{ID: 3, ChunkIndex: 6}, {ID: 4, ChunkIndex: 8}}
	cases := []struct {
		name      string
		chunks    map[uint64]*chunkMeta
		snaps     []snapMeta
		active    uint64
		wantChunk []uint64
	}{
		{"no snapshot", all(10), nil, 10, nil},
		{"one snapshot", all(10), two[1:], 10, nil},
		{"two snapshots", all(10), two, 10, []uint64{0, 1, 2, 3, 4, 5}},
		{"last two sealed kept", all(7), []snapMeta{{ID: 3, ChunkIndex: 7}, {ID: 4, ChunkIndex: 7}}, 7, []uint64{0, 1, 2, 3, 4}},
		{"not uploaded kept", func() map[uint64]*chunkMeta { m := all(10); m[2] = chunk(true, false, false); return m }(), two, 10, []uint64{0, 1, 3, 4, 5}},
		{"corrupt kept", func() map[uint64]*chunkMeta { m := all(10); m[1] = chunk(true, true, true); return m }(), two, 10, []uint64{0, 2, 3, 4, 5}},
		{"unsealed kept", func() map[uint64]*chunkMeta { m := all(10); m[0] = chunk(false, false, false); return m }(), two, 10, []uint64{1, 2, 3, 4, 5}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			del, _ := retentionPlan(c.chunks, c.snaps, []uint64{1, 2, 3, 4}, c.active)
			assert.Equal(t, c.wantChunk, del)
		})
	}
	_, delSnaps := retentionPlan(all(10), two, []uint64{1, 2, 3, 4}, 10)
	assert.Equal(t, []uint64{1, 2}, delSnaps, "snapshots older than the two newest valid ones go")
	assert.Equal(t, []uint64{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}, slices.Sorted(maps.Keys(all(10))))
}

func TestMarkUploadedErrors(t *testing.T) {
	ctx := context.Background()
	mem := vfs.NewMem()
	l := openT(t, mem, testOpts())
	defer l.Close()
	require.ErrorIs(t, l.MarkUploaded(ctx, 5), ErrNotFound)
	require.NoError(t, l.AppendCommit(ctx, SegmentOpened{Header: Header{SegmentID: 1}}))
	require.ErrorIs(t, l.MarkUploaded(ctx, 0), ErrInvalidRecord, "the active chunk is not sealed")
	require.NoError(t, l.Rotate(ctx))
	require.NoError(t, l.MarkUploaded(ctx, 0))
	require.NoError(t, l.MarkUploaded(ctx, 0), "idempotent")
	h, _, err := readChunkHeader(mem, l.SealedChunks()[0].Path)
	require.NoError(t, err)
	assert.True(t, h.Flags.Uploaded())
}
