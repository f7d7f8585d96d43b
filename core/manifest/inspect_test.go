package manifest

import (
	"context"
	"encoding/json"
	"path/filepath"
	"slices"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/aof2/aof2/core/checksum"
	"github.com/aof2/aof2/core/vfs"
)

// inspectFixture builds a stream with two sealed chunks, a snapshot, an
// active chunk and a crashed commit left in it.
func inspectFixture(t *testing.T) (*vfs.MemFS, []Record) {
	ctx := context.Background()
	mem := vfs.NewMem()
	inj := vfs.Wrap(mem, nil)
	l := openT(t, inj, testOpts())
	h := Header{SegmentID: 1, LogicalOffset: 10, TimestampMS: 1000}
	recs := []Record{
		SegmentOpened{Header: h, BaseOffset: 10},
		SealSegment{Header: h, DurableBytes: 100, SegmentCRC64: 0xabc},
	}
	require.NoError(t, l.AppendCommit(ctx, recs...))
	require.NoError(t, l.Rotate(ctx))
	more := UploadDone{Header: h, Key: "streams/7/segments/1", ETag: "e"}
	require.NoError(t, l.AppendCommit(ctx, more))
	_, err := l.Snapshot(ctx)
	require.NoError(t, err)
	require.NoError(t, l.Rotate(ctx))
	last := CompressionDone{Header: h, CompressedBytes: 9}
	require.NoError(t, l.AppendCommit(ctx, last))
	inj.SetInjector(vfs.OnMatch(0, func(op vfs.Op) bool { return op.Kind == vfs.OpWrite && op.Off == 0 }, vfs.FaultEIO, true))
	require.Error(t, l.AppendCommit(ctx, LocalEvicted{Header: h, ReclaimedBytes: 1}))
	require.NoError(t, l.Close())
	return mem, append(append(recs, more), last)
}

func TestInspectorReport(t *testing.T) {
	ctx := context.Background()
	mem, recs := inspectFixture(t)
	in, err := NewInspector(mem, testDir, 7).Inspect(ctx, InspectOptions{Records: true})
	require.NoError(t, err)
	require.Len(t, in.Chunks, 3)
	c0, c1, c2 := in.Chunks[0], in.Chunks[1], in.Chunks[2]
	assert.Equal(t, chunkName(0), c0.File)
	assert.True(t, c0.Header.Flags.Sealed())
	assert.Equal(t, uint64(0), c0.Header.BaseRecord)
	assert.Equal(t, 2, c0.RecordCount)
	assert.Equal(t, c0.Records[1].Offset, int64(c0.Header.TailOffset), "tail_offset is the last record's offset")
	assert.Equal(t, uint64(c0.FileSize), c0.Header.CommittedLen, "sealed chunks are truncated")
	body, err := vfs.ReadFile(mem, filepath.Join(mdirT, c0.File))
	require.NoError(t, err)
	assert.Equal(t, Hex64(checksum.Sum64(body[chunkHeaderLen:])), c0.Header.CRC64)
	assert.Equal(t, uint64(2), c1.Header.BaseRecord)
	assert.Equal(t, []RecordType{TypeUploadDone, TypeSnapshotMarker}, []RecordType{c1.Records[0].Type, c1.Records[1].Type})
	assert.Equal(t, uint64(2), c1.Records[0].Ordinal)
	assert.False(t, c2.Header.Flags.Sealed(), "the active chunk of the crashed process")
	assert.Equal(t, frameBytes(t, LocalEvicted{}), c2.UncommittedBytes)
	assert.True(t, c0.CRCValid && c1.CRCValid && c2.CRCValid)
	require.Len(t, in.Snapshots, 1)
	assert.Equal(t, uint64(1), in.Snapshots[0].ChunkIndex)
	assert.Equal(t, fold(7, recs).Segments(), in.Segments)
	assert.Equal(t, frameBytes(t, LocalEvicted{}), in.Replay.JournalLagBytes)

	// Inspect changes nothing on disk (Open would trim and seal).
	again, err := NewInspector(mem, testDir, 7).Inspect(ctx, InspectOptions{})
	require.NoError(t, err)
	assert.Equal(t, c2.UncommittedBytes, again.Chunks[2].UncommittedBytes)
	assert.Nil(t, again.Chunks[0].Records)

	// JSON-friendly: the report marshals with readable enums and hex CRCs.
	b, err := json.Marshal(in)
	require.NoError(t, err)
	var m map[string]any
	require.NoError(t, json.Unmarshal(b, &m))
	chunk := m["chunks"].([]any)[0].(map[string]any)
	hdr := chunk["header"].(map[string]any)
	for _, k := range []string{"index", "base_record", "tail_offset", "committed_len", "crc", "flags"} {
		assert.Contains(t, hdr, k)
	}
	assert.Equal(t, "sealed", hdr["flags"])
	assert.Regexp(t, `^0x[0-9a-f]{16}$`, hdr["crc"])
	rec := chunk["records"].([]any)[1].(map[string]any)
	assert.Equal(t, "SealSegment", rec["type"])
	assert.Equal(t, "0x0000000000000abc", rec["record"].(map[string]any)["segment_crc64"])
	seg := m["segments"].([]any)[0].(map[string]any)
	assert.Equal(t, "resident_in_tier0", seg["residency"])
}

// codes lists the codes of the findings of severity sev.
func codes(fs []Finding, sev Severity) []string {
	var out []string
	for _, f := range fs {
		if f.Severity == sev {
			out = append(out, f.Code)
		}
	}
	return out
}

func TestVerify(t *testing.T) {
	ctx := context.Background()
	t.Run("clean", func(t *testing.T) {
		mem, _ := inspectFixture(t)
		l := openT(t, mem, testOpts()) // trims the crashed commit
		require.NoError(t, l.Close())
		f, err := NewInspector(mem, testDir, 7).Verify(ctx, VerifyOptions{LogOnly: true})
		require.NoError(t, err)
		assert.Empty(t, codes(f, SeverityError), "%+v", f)
		assert.Empty(t, codes(f, SeverityWarning), "%+v", f)
	})
	t.Run("uncommitted tail", func(t *testing.T) {
		mem, _ := inspectFixture(t)
		f, err := NewInspector(mem, testDir, 7).Verify(ctx, VerifyOptions{LogOnly: true})
		require.NoError(t, err)
		assert.Empty(t, codes(f, SeverityError))
		assert.Contains(t, codes(f, SeverityInfo), "chunk_tail")
	})
	cases := []struct {
		name string
		harm func(t *testing.T, mem *vfs.MemFS)
		want string
	}{
		{"record bit flip", func(t *testing.T, mem *vfs.MemFS) {
			flipFileBit(t, mem, filepath.Join(mdirT, chunkName(0)), (chunkHeaderLen+50)*8)
		}, "chunk_crc"},
		{"header bit flip", func(t *testing.T, mem *vfs.MemFS) {
			flipFileBit(t, mem, filepath.Join(mdirT, chunkName(0)), 2*8)
		}, "chunk_header"},
		{"tail_offset flip", func(t *testing.T, mem *vfs.MemFS) {
			flipFileBit(t, mem, filepath.Join(mdirT, chunkName(0)), 32*8+3)
		}, "chunk_invalid"},
		{"missing middle chunk", func(t *testing.T, mem *vfs.MemFS) {
			require.NoError(t, mem.Remove(filepath.Join(mdirT, chunkName(1))))
		}, "chunk_gap"},
		{"damaged snapshot", func(t *testing.T, mem *vfs.MemFS) {
			flipFileBit(t, mem, filepath.Join(mdirT, snapshotName(1)), 100)
		}, "snapshot_invalid"},
		{"chunks removed without snapshot", func(t *testing.T, mem *vfs.MemFS) {
			require.NoError(t, mem.Remove(filepath.Join(mdirT, snapshotName(1))))
			require.NoError(t, mem.Remove(filepath.Join(mdirT, chunkName(0))))
		}, "retention_gap"},
		{"replay cannot apply", func(t *testing.T, mem *vfs.MemFS) {
			flipFileBit(t, mem, filepath.Join(mdirT, chunkName(2)), (chunkHeaderLen+50)*8)
		}, "needs_repair"},
		{"JSON view diverges", func(t *testing.T, mem *vfs.MemFS) {
			require.NoError(t, vfs.MkdirAllSync(mem, filepath.Join(testDir, warmDirName)))
			require.NoError(t, vfs.WriteFileAtomic(mem, ViewPath(testDir), []byte(`{"version":1,"stream_id":7,"segments":[]}`)))
		}, "json_parity"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			mem, _ := inspectFixture(t)
			c.harm(t, mem)
			f, err := NewInspector(mem, testDir, 7).Verify(ctx, VerifyOptions{LogOnly: c.want != "json_parity"})
			require.NoError(t, err)
			assert.True(t, slices.Contains(codes(f, SeverityError), c.want), "want %s in %+v", c.want, f)
		})
	}
}
