package tier1

import (
	"bytes"
	"encoding/binary"
	"errors"
	"testing"

	seekable "github.com/SaveTheRbtz/zstd-seekable-format-go/pkg"

	"github.com/aof2/aof2/core/segment"
	"github.com/aof2/aof2/core/types"
)

// artifactOf compresses b verbatim into a seekable-zstd artifact of
// frames of frameSize bytes, as CompressSegment lays them out, without
// CompressSegment's checks of the source (the fuzzer feeds any bytes).
func artifactOf(tb testing.TB, b []byte, frameSize int) []byte {
	tb.Helper()
	enc, err := encoderFor(LevelFastest)
	if err != nil {
		tb.Fatal(err)
	}
	senc, err := seekable.NewEncoder(enc)
	if err != nil {
		tb.Fatal(err)
	}
	var out []byte
	for off := 0; off < len(b); off += frameSize {
		frame, err := senc.Encode(b[off:min(off+frameSize, len(b))])
		if err != nil {
			tb.Fatal(err)
		}
		out = append(out, frame...)
	}
	table, err := senc.EndStream()
	if err != nil {
		tb.Fatal(err)
	}
	return append(out, table...)
}

// FuzzArtifactRecord: a point read of a cold segment (Artifact.ReadRecord,
// which fetches only the frames a record spans) decodes exactly what a
// read of the same segment bytes in tier 0 (segment.ReadRecord) does: the
// record it returns is the one tier 0 returns at that offset, and a
// record tier 0 accepts at an offset tier 1 accepts too. Its allocation
// is bounded by the segment, whatever payload_len says.
func FuzzArtifactRecord(f *testing.F) {
	seg := make([]byte, segment.MinFileCapacity)
	h := segment.Header{StreamID: 1, SegmentID: 2}
	h.Encode(seg)
	off := int64(segment.HeaderSize)
	for _, p := range []string{"a", "a payload that spans more", string(bytes.Repeat([]byte("x"), 300))} {
		segment.EncodeRecordHeader(seg[off:], []byte(p), 7, 9)
		copy(seg[off+segment.RecordHeaderSize:], p)
		off += segment.RecordSpan(len(p))
	}
	region := append([]byte(nil), seg[segment.HeaderSize:off]...)
	f.Add(region, int64(segment.HeaderSize), off, uint8(0))
	f.Add(region, int64(segment.HeaderSize)+segment.RecordSpan(1), off, uint8(1))
	f.Add(region, int64(segment.HeaderSize), off-8, uint8(2))
	f.Add([]byte{0xff, 0xff, 0xff, 0x7f}, int64(segment.HeaderSize), int64(segment.DataEnd(segment.MinFileCapacity)), uint8(0))
	f.Add([]byte{100, 0, 0, 0}, int64(segment.HeaderSize), int64(segment.HeaderSize)+200, uint8(0x83))
	f.Add([]byte{100, 0, 0, 0x80}, int64(segment.HeaderSize), int64(segment.HeaderSize)+200, uint8(0x83))
	f.Fuzz(func(t *testing.T, region []byte, off, limit int64, frameShift uint8) {
		b := make([]byte, segment.MinFileCapacity)
		h.Encode(b)
		copy(b[segment.HeaderSize:segment.DataEnd(int64(len(b)))], region)
		if frameShift&0x80 != 0 && off >= segment.HeaderSize && off%8 == 0 && off+segment.RecordHeaderSize <= int64(len(b)) {
			// The fuzzer rarely guesses a checksum: make the frame at off
			// verify, whatever its length says, when it fits.
			n := int64(binary.LittleEndian.Uint32(b[off:]) &^ segment.FillerBit)
			if end := off + segment.RecordHeaderSize + n; end <= int64(len(b)) {
				binary.LittleEndian.PutUint32(b[off+4:], segment.FrameChecksum(b[off:end]))
			}
		}
		frameSize := 1 << (9 + frameShift%8) // 512 B to 64 KiB: records spanning frames
		art := artifactOf(t, b, frameSize)
		a, err := OpenReaderAt(bytes.NewReader(art), int64(len(art)), "fuzz")
		if err != nil {
			t.Fatalf("open: %v", err)
		}
		defer a.Close()
		limit = min(max(limit, 0), segment.DataEnd(int64(len(b))))
		r1, err1 := a.ReadRecord(off, limit)
		r0, err0 := segment.ReadRecord(b, "fuzz", off, limit)
		if err1 == nil {
			if err0 != nil || r0.Offset != off || r0.Timestamp != r1.Timestamp || r0.ExtID != r1.ExtID || !bytes.Equal(r0.Payload, r1.Payload) {
				t.Fatalf("tier 1 read %+v at %d, tier 0 %+v, %v", r1, off, r0, err0)
			}
			return
		}
		var ce *types.CorruptError
		if !errors.As(err1, &ce) && !errors.Is(err1, types.ErrNotFound) && !errors.Is(err1, types.ErrInvalidRecordID) && !errors.Is(err1, ErrCorruptArtifact) {
			t.Fatalf("untyped error %v", err1)
		}
		if err0 == nil && r0.Offset == off {
			t.Fatalf("tier 0 reads %+v at %d, tier 1 refuses it: %v", r0, off, err1)
		}
	})
}

// FuzzParseArtifactName: a file in the warm directory is taken for a
// segment's artifact only by the name ArtifactName gives it.
func FuzzParseArtifactName(f *testing.F) {
	f.Add(ArtifactName(1))
	f.Add(ArtifactName(types.MaxSegmentID))
	f.Add("0000000000000000000+" + ArtifactSuffix)
	f.Add("00000000000000000000" + ArtifactSuffix)
	f.Fuzz(func(t *testing.T, s string) {
		id, ok := ParseArtifactName(s)
		if !ok {
			return
		}
		if id == 0 || id > types.MaxSegmentID || ArtifactName(id) != s {
			t.Fatalf("ParseArtifactName(%q) = %d, named %q", s, id, ArtifactName(id))
		}
	})
}
