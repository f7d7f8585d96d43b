package manifest

import (
	"encoding/hex"
	"encoding/json"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/aof2/aof2/core/checksum"
)

func TestChunkHeaderLayout(t *testing.T) {
	h := ChunkHeader{Index: 0x0102030405060708, BaseRecord: 9, TailOffset: 64, CommittedLen: 112, CRC64: 0xaabbccddeeff0011, Flags: FlagSealed | FlagUploaded}
	b := h.marshal()
	require.Len(t, b, chunkHeaderLen)
	assert.Equal(t, "AOF2MLOG", string(b[:8]), "the magic reads as ASCII in a hexdump")
	assert.Equal(t, "01000000"+"40000000", hex.EncodeToString(b[8:16]), "version 1, header_len 64")
	assert.Equal(t, "0807060504030201", hex.EncodeToString(b[16:24]), "chunk_index little-endian")
	assert.Equal(t, uint64(9), le.Uint64(b[24:]))
	assert.Equal(t, uint64(64), le.Uint64(b[32:]))
	assert.Equal(t, uint64(112), le.Uint64(b[40:]))
	assert.Equal(t, uint64(0xaabbccddeeff0011), le.Uint64(b[48:]))
	assert.Equal(t, uint64(3), le.Uint64(b[56:]))
	got, err := decodeChunkHeader(b)
	require.NoError(t, err)
	assert.Equal(t, h, got)
}

func TestChunkHeaderRejects(t *testing.T) {
	good := ChunkHeader{Index: 3, BaseRecord: 10, TailOffset: 64, CommittedLen: 112, CRC64: 5}
	cases := []struct {
		name string
		mut  func(b []byte)
	}{
		{"magic", func(b []byte) { b[0] = 'X' }},
		{"version", func(b []byte) { le.PutUint32(b[8:], 2) }},
		{"header_len", func(b []byte) { le.PutUint32(b[12:], 72) }},
		{"unknown flag", func(b []byte) { le.PutUint64(b[56:], 4) }},
		{"uploaded but not sealed", func(b []byte) { le.PutUint64(b[56:], uint64(FlagUploaded)) }},
		{"committed below header", func(b []byte) { le.PutUint64(b[40:], 8) }},
		{"committed unaligned", func(b []byte) { le.PutUint64(b[40:], 113) }},
		{"committed beyond max", func(b []byte) { le.PutUint64(b[40:], MaxChunkCapacity+8) }},
		{"tail past committed", func(b []byte) { le.PutUint64(b[32:], 112) }},
		{"tail unaligned", func(b []byte) { le.PutUint64(b[32:], 68) }},
		{"empty chunk with tail", func(b []byte) { le.PutUint64(b[40:], 64); le.PutUint64(b[32:], 72) }},
		{"empty chunk with crc", func(b []byte) { le.PutUint64(b[40:], 64); le.PutUint64(b[32:], 64) }},
		{"base_record overflow", func(b []byte) { le.PutUint64(b[24:], ^uint64(0)) }},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			b := good.marshal()
			c.mut(b)
			_, err := decodeChunkHeader(b)
			require.ErrorIs(t, err, ErrCorrupt)
		})
	}
	_, err := decodeChunkHeader(good.marshal()[:63])
	require.ErrorIs(t, err, ErrCorrupt)
}

// allRecords has one record of every type, with non-trivial fields.
func allRecords() []Record {
	h := Header{SegmentID: 42, LogicalOffset: 1 << 40, TimestampMS: 1_700_000_000_123}
	return []Record{
		SegmentOpened{Header: h, BaseOffset: 77, Epoch: 3},
		SealSegment{Header: h, DurableBytes: 4096, SegmentCRC64: 0xdeadbeefcafef00d, ExtID: 11, CoordinatorWatermark: 12, FlushFailure: true},
		CompressionStarted{Header: h, JobID: 5},
		CompressionDone{Header: h, CompressedBytes: 1234, DictionaryID: 6},
		CompressionFailed{Header: h, Reason: ReasonPermanent},
		UploadStarted{Header: h, Key: "streams/42/segments/1.seg.zst"},
		UploadDone{Header: h, Key: "streams/42/segments/1.seg.zst", ETag: `"abc"`},
		UploadDone{Header: h, Key: "k", ETag: ""},
		UploadFailed{Header: h, Key: "k2", Reason: ReasonAuth},
		Tier2DeleteQueued{Header: h, Key: "old"},
		Tier2Deleted{Header: h, Key: "old"},
		HydrationStarted{Header: h, SourceTier: 2},
		HydrationDone{Header: h, ResidentBytes: 99},
		HydrationFailed{Header: h, Reason: ReasonObjectMissing},
		LocalEvicted{Header: h, ReclaimedBytes: 1 << 26},
		SnapshotMarker{Header: h, ChunkIndex: 8, ChunkOffset: 4096, SnapshotID: 3},
		CustomEvent{Header: h, SchemaID: 7, Blob: []byte("hello")},
		CustomEvent{Header: h, SchemaID: 8},
		Unknown{Header: h, RecordType: 77, Payload: []byte{1, 2, 3}},
	}
}

func TestRecordRoundTrip(t *testing.T) {
	for _, rec := range allRecords() {
		t.Run(rec.Type().String(), func(t *testing.T) {
			b, err := appendRecord(nil, rec)
			require.NoError(t, err)
			assert.Zero(t, len(b)%8, "frames are 8-aligned")
			assert.Equal(t, frameSize(rec.payloadLen()), int64(len(b)))
			assert.Equal(t, uint16(rec.Type()), le.Uint16(b[0:]))
			assert.Zero(t, le.Uint16(b[2:]), "flags")
			assert.Equal(t, uint32(rec.payloadLen()), le.Uint32(b[4:]))
			assert.Equal(t, uint64(42), le.Uint64(b[8:]))
			got, size, err := decodeRecord(b)
			require.NoError(t, err)
			assert.Equal(t, int64(len(b)), size)
			assert.Equal(t, rec, got)
			// The JSON form names the type and keeps the fields.
			j, err := json.Marshal(RecordInfo{Type: rec.Type(), Record: rec})
			require.NoError(t, err)
			assert.Contains(t, string(j), `"type":"`+rec.Type().String()+`"`)
			var back RecordType
			require.NoError(t, back.UnmarshalText([]byte(rec.Type().String())))
			assert.Equal(t, rec.Type(), back)
		})
	}
}

func TestPayloadLayouts(t *testing.T) {
	h := Header{SegmentID: 1}
	cases := []struct {
		rec  Record
		want string // hex of the payload
	}{
		{SegmentOpened{Header: h, BaseOffset: 0x10, Epoch: 2}, "1000000000000000" + "02000000"},
		{SealSegment{Header: h, DurableBytes: 1, SegmentCRC64: 2, ExtID: 3, CoordinatorWatermark: 4, FlushFailure: true},
			"0100000000000000" + "0200000000000000" + "0300000000000000" + "0400000000000000" + "01"},
		{CompressionStarted{Header: h, JobID: 9}, "09000000"},
		{CompressionDone{Header: h, CompressedBytes: 5, DictionaryID: 6}, "0500000000000000" + "06000000"},
		{CompressionFailed{Header: h, Reason: 3}, "03000000"},
		{UploadStarted{Header: h, Key: "ab"}, "0200" + "6162"},
		{UploadDone{Header: h, Key: "ab", ETag: "xyz"}, "0200" + "0300" + "6162" + "78797a"},
		{UploadFailed{Header: h, Key: "ab", Reason: 4}, "0200" + "04000000" + "6162"},
		{Tier2DeleteQueued{Header: h, Key: "q"}, "0100" + "71"},
		{Tier2Deleted{Header: h, Key: "q"}, "0100" + "71"},
		{HydrationStarted{Header: h, SourceTier: 2}, "0200000000000000"},
		{HydrationDone{Header: h, ResidentBytes: 7}, "0700000000000000"},
		{HydrationFailed{Header: h, Reason: 1}, "01000000"},
		{LocalEvicted{Header: h, ReclaimedBytes: 8}, "0800000000000000"},
		{SnapshotMarker{Header: h, ChunkIndex: 1, ChunkOffset: 64, SnapshotID: 2}, "0100000000000000" + "4000000000000000" + "0200000000000000"},
		{CustomEvent{Header: h, SchemaID: 5, Blob: []byte{0xff}}, "05000000" + "0100" + "ff"},
	}
	seen := map[RecordType]bool{}
	for _, c := range cases {
		assert.Equal(t, c.want, hex.EncodeToString(c.rec.appendPayload(nil)), "%s", c.rec.Type())
		b, err := appendRecord(nil, c.rec)
		require.NoError(t, err)
		n := len(c.want) / 2
		want := checksum.Update(checksum.Sum64(b[:32]), b[recordHeaderLen:recordHeaderLen+n])
		assert.Equal(t, want, le.Uint64(b[32:]), "payload_crc64 covers header bytes [0,32) and the payload")
		seen[c.rec.Type()] = true
	}
	assert.Len(t, seen, numRecordTypes, "every record type has a layout case")
}

func TestPayloadRejects(t *testing.T) {
	cases := []struct {
		t RecordType
		p string
	}{
		{TypeSegmentOpened, "10000000000000000200"},                           // short
		{TypeSegmentOpened, "100000000000000002000000ff"},                     // trailing byte
		{TypeSealSegment, strings.Repeat("00", 32) + "02"},                    // flush_failure 2
		{TypeSealSegment, strings.Repeat("00", 33) + strings.Repeat("00", 7)}, // frame padding is not payload
		{TypeCompressionStarted, "00"},                                        // short
		{TypeCompressionDone, strings.Repeat("00", 13)},                       // long
		{TypeCompressionFailed, ""},                                           // empty
		{TypeUploadStarted, "0500" + "6162"},                                  // key_len past the end
		{TypeUploadStarted, "0000"},                                           // empty key
		{TypeUploadDone, "0100" + "0100" + "61"},                              // etag missing
		{TypeUploadDone, "ffff" + "ffff"},                                     // huge lengths, nothing behind
		{TypeUploadDone, "0100" + "0000" + "6162"},                            // trailing
		{TypeUploadFailed, "0100" + "0400"},                                   // reason truncated
		{TypeUploadFailed, "0000" + "00000000"},                               // empty key
		{TypeTier2DeleteQueued, "0300" + "616263" + "00"},                     // trailing
		{TypeTier2Deleted, "ffff"},                                            // 65535-byte key in 2 bytes
		{TypeHydrationStarted, strings.Repeat("00", 9)},                       // long
		{TypeHydrationDone, "00"},                                             // short
		{TypeHydrationFailed, "010000"},                                       // short
		{TypeLocalEvicted, ""},                                                // empty
		{TypeSnapshotMarker, strings.Repeat("00", 23)},                        // short
		{TypeCustomEvent, "05000000" + "0200" + "ff"},                         // blob short
		{TypeCustomEvent, "05000000" + "ffff"},                                // huge blob, nothing behind
		{TypeCustomEvent, "05000000" + "0000" + "00"},                         // trailing
	}
	for _, c := range cases {
		p, err := hex.DecodeString(c.p)
		require.NoError(t, err)
		_, err = decodePayload(c.t, Header{}, p)
		assert.ErrorIs(t, err, ErrCorrupt, "%s %s", c.t, c.p)
	}
}

func TestDecodeFrameRejects(t *testing.T) {
	good, err := appendRecord(nil, UploadStarted{Header: Header{SegmentID: 1}, Key: "abc"})
	require.NoError(t, err)
	cases := []struct {
		name string
		mut  func(b []byte) []byte
	}{
		{"short header", func(b []byte) []byte { return b[:39] }},
		{"flags", func(b []byte) []byte { b[2] = 1; return b }},
		{"empty payload", func(b []byte) []byte { le.PutUint32(b[4:], 0); return b }},
		{"payload overruns", func(b []byte) []byte { le.PutUint32(b[4:], 1000); return b }},
		{"payload_len max", func(b []byte) []byte { le.PutUint32(b[4:], ^uint32(0)); return b }},
		{"crc", func(b []byte) []byte { b[33] ^= 1; return b }},
		{"header bit under crc", func(b []byte) []byte { b[9] ^= 4; return b }},
		{"payload bit", func(b []byte) []byte { b[41] ^= 0x80; return b }},
		{"padding", func(b []byte) []byte { b[len(b)-1] = 1; return b }},
		{"truncated frame", func(b []byte) []byte { return b[:len(b)-8] }},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			b := c.mut(append([]byte(nil), good...))
			_, _, err := decodeRecord(b)
			require.ErrorIs(t, err, ErrCorrupt)
		})
	}
}

func TestTailExtent(t *testing.T) {
	rec := func(n int) []byte {
		b, err := appendRecord(nil, CustomEvent{Blob: make([]byte, n)})
		require.NoError(t, err)
		return b
	}
	pad := func(b []byte, n int) []byte { return append(b, make([]byte, n)...) }
	zeroEnd := SealSegment{} // its payload ends in a zero byte (flush_failure 0)
	zb, err := appendRecord(nil, zeroEnd)
	require.NoError(t, err)
	cases := []struct {
		name string
		b    []byte
		want int64
	}{
		{"nothing", make([]byte, 256), 0},
		{"empty", nil, 0},
		{"one frame", pad(rec(10), 100), 56},
		{"two frames", pad(append(rec(10), rec(20)...), 100), 56 + 72},
		{"frame ending in zeros", pad(zb, 64), int64(len(zb))},
		{"torn header", pad([]byte{1, 0, 0, 0, 0, 0, 0, 0, 0, 9}, 64), 16},
		{"frame then garbage", pad(append(rec(1), 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 7), 100), 48 + 16},
		{"cut frame", rec(200)[:100], 48}, // non-zero bytes up to blob_len at 44, rounded up
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			assert.Equal(t, c.want, tailExtent(c.b))
		})
	}
}

func TestStringers(t *testing.T) {
	assert.Equal(t, "Unknown(99)", RecordType(99).String())
	var rt RecordType
	require.NoError(t, rt.UnmarshalText([]byte("Unknown(99)")))
	assert.Equal(t, RecordType(99), rt)
	require.Error(t, rt.UnmarshalText([]byte("Bogus")))
	for r := ReasonCode(0); r < 7; r++ {
		var back ReasonCode
		require.NoError(t, back.UnmarshalText([]byte(r.String())))
		assert.Equal(t, r, back)
	}
	assert.Equal(t, "sealed|uploaded", (FlagSealed | FlagUploaded).String())
	assert.Equal(t, "active", ChunkFlags(0).String())
	assert.Equal(t, "0x4", ChunkFlags(4).String())
	var h Hex64
	require.NoError(t, h.UnmarshalText([]byte("0x00000000000000ff")))
	assert.Equal(t, Hex64(255), h)
	for res := Residency(0); res < 4; res++ {
		var back Residency
		require.NoError(t, back.UnmarshalText([]byte(res.String())))
		assert.Equal(t, res, back)
	}
	for s := Tier1State(0); s < 4; s++ {
		var back Tier1State
		require.NoError(t, back.UnmarshalText([]byte(s.String())))
		assert.Equal(t, s, back)
	}
}

func TestRandomRecordsRoundTrip(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	var stream []byte
	var recs []Record
	for i := range 2000 {
		rec := genRecord(r, uint64(i), 300)
		recs = append(recs, rec)
		var err error
		stream, err = appendRecord(stream, rec)
		require.NoError(t, err)
	}
	var off int64
	for i := range recs {
		got, n, err := decodeRecord(stream[off:])
		require.NoError(t, err)
		require.Equal(t, recs[i], got)
		off += n
	}
	assert.Equal(t, int64(len(stream)), off)
}
