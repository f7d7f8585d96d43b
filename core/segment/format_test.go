package segment

import (
	"errors"
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/aof2/aof2/core/checksum"
	"github.com/aof2/aof2/core/types"
	"github.com/aof2/aof2/core/vfs"
)

// buildSegment lays out a segment of the given capacity holding payloads,
// the way the writer does, without a footer.
func buildSegment(tb testing.TB, capacity int, payloads ...string) []byte {
	tb.Helper()
	b := make([]byte, capacity)
	h := Header{StreamID: 1, SegmentID: 1}
	h.Encode(b)
	off := int64(HeaderSize)
	for i, p := range payloads {
		require.LessOrEqual(tb, off+RecordSpan(len(p)), DataEnd(int64(capacity)), "payload %d does not fit", i)
		EncodeRecordHeader(b[off:], []byte(p), int64(i), uint64(100+i))
		copy(b[off+RecordHeaderSize:], p)
		off += RecordSpan(len(p))
	}
	return b
}

func TestScanTailStopsAtTheFirstDamagedRecord(t *testing.T) {
	payloads := []string{"alpha", "b", "a payload of some length", "last"}
	clean := buildSegment(t, 4096, payloads...)
	var ends []int64
	off := int64(HeaderSize)
	for _, p := range payloads {
		off += RecordSpan(len(p))
		ends = append(ends, off)
	}
	tests := []struct {
		name      string
		damage    func(b []byte)
		wantCount uint64
		wantDirty bool
	}{
		{"intact", func([]byte) {}, 4, false},
		{"flipped payload bit in record 3", func(b []byte) { b[ends[1]+RecordHeaderSize] ^= 1 }, 2, true},
		{"zeroed length of record 2", func(b []byte) { copy(b[ends[0]:ends[0]+4], []byte{0, 0, 0, 0}) }, 1, true},
		{"overrunning length in record 1", func(b []byte) { le.PutUint32(b[HeaderSize:], 1<<30) }, 0, true},
		{"garbage past the last record", func(b []byte) { b[ends[3]+100] = 7 }, 4, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := append([]byte(nil), clean...)
			tc.damage(b)
			ts := ScanTail(b)
			require.Equal(t, tc.wantCount, ts.Count, ts.Stop)
			wantEnd := int64(HeaderSize)
			if tc.wantCount > 0 {
				wantEnd = ends[tc.wantCount-1]
			}
			require.Equal(t, wantEnd, ts.End)
			require.Equal(t, checksum.Sum64(b[:wantEnd]), ts.CRC)
			require.Equal(t, tc.wantDirty, ts.Dropped() > 0)
		})
	}
}

func TestReadLocateAndIndex(t *testing.T) {
	var payloads []string
	for i := range 3000 {
		payloads = append(payloads, string(make([]byte, 1+i%97)))
	}
	b := buildSegment(t, 1<<20, payloads...)
	ts := ScanTail(b)
	require.Equal(t, uint64(len(payloads)), ts.Count)
	ix, err := BuildIndex(b, "s", ts.End)
	require.NoError(t, err)
	require.Greater(t, ix.Len(), 1, "a sparse index with several entries")

	off := int64(HeaderSize)
	for i, p := range payloads {
		r, err := ReadRecord(b, "s", off, ts.End)
		require.NoError(t, err)
		require.Len(t, r.Payload, len(p))
		require.Equal(t, int64(i), r.Timestamp)
		ord, err := Locate(b, ix, "s", off, ts.End)
		require.NoError(t, err)
		require.Equal(t, uint64(i), ord)
		got, err := LocateOrdinal(b, ix, "s", uint64(i), ts.End)
		require.NoError(t, err)
		require.Equal(t, off, got)
		off = r.Next()
	}
	_, err = ReadRecord(b, "s", ts.End, ts.End)
	require.ErrorIs(t, err, types.ErrNotFound)
	_, err = Locate(b, ix, "s", HeaderSize+8, ts.End)
	require.ErrorIs(t, err, types.ErrInvalidRecordID, "an offset inside a record")
	_, err = Locate(b, ix, "s", HeaderSize+3, ts.End)
	require.ErrorIs(t, err, types.ErrInvalidRecordID, "an unaligned offset")

	b[HeaderSize+RecordHeaderSize] ^= 0x80
	_, err = ReadRecord(b, "s", HeaderSize, ts.End)
	var ce *types.CorruptError
	require.True(t, errors.As(err, &ce), "got %v", err)
	require.ErrorIs(t, err, types.ErrCorrupt)
}

func TestFooterValidation(t *testing.T) {
	good := Footer{Flags: FlagSealed, SegmentID: 2, RecordCount: 1, DurableBytes: HeaderSize + 32,
		LastRecordID: types.MakeRecordID(2, HeaderSize)}
	tests := []struct {
		name   string
		mutate func(f *Footer)
		ok     bool
	}{
		{"valid", func(*Footer) {}, true},
		{"flush failure flag", func(f *Footer) { f.Flags |= FlagFlushFailure }, true},
		{"empty segment", func(f *Footer) { f.RecordCount, f.DurableBytes, f.LastRecordID = 0, HeaderSize, 0 }, true},
		{"not sealed", func(f *Footer) { f.Flags = 0 }, false},
		{"unknown flag", func(f *Footer) { f.Flags |= 1 << 7 }, false},
		{"durable bytes unaligned", func(f *Footer) { f.DurableBytes++ }, false},
		{"durable bytes past the data area", func(f *Footer) { f.DurableBytes = MinCapacity }, false},
		{"too many records", func(f *Footer) { f.RecordCount = 3 }, false},
		{"last record in another segment", func(f *Footer) { f.LastRecordID = types.MakeRecordID(3, HeaderSize) }, false},
		{"no records but bytes", func(f *Footer) { f.RecordCount, f.LastRecordID = 0, 0 }, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := good
			tc.mutate(&f)
			b := make([]byte, FooterSize)
			f.Encode(b)
			got, err := DecodeFooter(b, MinCapacity)
			if !tc.ok {
				require.Error(t, err)
				return
			}
			require.NoError(t, err)
			require.Equal(t, f, got)
		})
	}
}

func TestHeaderPointerAndNameRoundTrip(t *testing.T) {
	h := Header{StreamID: 9, SegmentID: types.MaxSegmentID, BaseOffset: 1 << 40, BaseRecord: 77, CreatedAt: -1, ExtID: 5}
	b := make([]byte, HeaderSize)
	h.Encode(b)
	got, err := DecodeHeader(b)
	require.NoError(t, err)
	require.Equal(t, h, got)
	b[9] = 2
	_, err = DecodeHeader(b)
	require.Error(t, err, "unknown version")

	p := Pointer{SegmentID: 3, DurableBytes: 4096, CoordinatorWatermark: 8}
	enc := p.Encode()
	gp, err := DecodePointer(enc)
	require.NoError(t, err)
	require.Equal(t, p, gp)
	enc[17] ^= 1
	_, err = DecodePointer(enc)
	require.Error(t, err, "checksum catches a flipped bit")

	name := FileName(12, 4096, 1700000000000000000)
	require.Equal(t, "00000000000000000012_00000000000000004096_01700000000000000000.seg", name)
	n, ok := ParseFileName(name)
	require.True(t, ok)
	require.Equal(t, Name{SegmentID: 12, BaseOffset: 4096, CreatedAt: 1700000000000000000}, n)
	for _, bad := range []string{"12_4096_1.seg", FileName(0, 0, 0), name + ".prep", "x" + name[1:]} {
		_, ok := ParseFileName(bad)
		require.False(t, ok, bad)
	}
}

func TestFrameChecksumEqualsRecordChecksum(t *testing.T) {
	for _, n := range []int{1, 7, 8, 20, 127, 128, 129, 256, 1000, 4096} {
		b := make([]byte, RecordHeaderSize+n)
		p := benchLikePayload(n)
		copy(b[RecordHeaderSize:], p)
		EncodeRecordHeader(b, p, 12345, 678)
		require.Equal(t, RecordChecksum(b, p), FrameChecksum(b), "payload %d", n)
		require.Equal(t, DecodeRecordHeader(b).Checksum, FrameChecksum(b))
	}
}

func benchLikePayload(n int) []byte {
	p := make([]byte, n)
	for i := range p {
		p[i] = byte(i*7 + 3)
	}
	return p
}

func TestCapacities(t *testing.T) {
	for _, c := range []int64{MinFileCapacity, 128 << 10, MinCapacity, DefaultCapacity, MaxCapacity} {
		require.True(t, ValidCapacity(c), "%d is a file capacity", c)
	}
	for _, c := range []int64{0, 4096, MinFileCapacity - 1, MinFileCapacity + 8, 3 << 20, MaxCapacity << 1} {
		require.False(t, ValidCapacity(c), "%d is no file capacity", c)
	}
	// The configured segment size stays in [1 MiB, 1 GiB]: it bounds the
	// largest record; smaller files only start a stream.
	require.False(t, ValidSegmentSize(MinFileCapacity))
	require.False(t, ValidSegmentSize(MinCapacity>>1))
	require.True(t, ValidSegmentSize(MinCapacity))
	require.True(t, ValidSegmentSize(MaxCapacity))

	largest := MaxRecordSize(MinFileCapacity)
	require.Equal(t, int64(MinFileCapacity), CapacityFor(1))
	require.Equal(t, int64(MinFileCapacity), CapacityFor(int(largest)))
	require.Equal(t, int64(2*MinFileCapacity), CapacityFor(int(largest)+1))
	for _, n := range []int{1, 100, 70_000, 1 << 20, int(MaxRecordSize(DefaultCapacity))} {
		c := CapacityFor(n)
		require.True(t, ValidCapacity(c))
		require.GreaterOrEqual(t, MaxRecordSize(c), int64(n), "a %d-byte record fits a %d-byte segment", n, c)
		if c > MinFileCapacity {
			require.Less(t, MaxRecordSize(c/2), int64(n), "%d is the smallest capacity for %d bytes", c, n)
		}
	}
}

// A file shorter than a header and a footer (a crash can leave one at
// any size) scans as holding nothing; it never panics.
func TestScanTailVerifiedTooSmall(t *testing.T) {
	mem := vfs.NewMem()
	for _, n := range []int{0, 1, HeaderSize, HeaderSize + FooterSize - 1} {
		path := fmt.Sprintf("/small-%d", n)
		f, err := mem.Create(path)
		require.NoError(t, err)
		b := make([]byte, n)
		ts, err := ScanTailVerified(f, b, path)
		require.NoError(t, err, "size %d", n)
		require.Zero(t, ts.Count, "size %d", n)
		require.NoError(t, f.Close())
	}
}
