package segment

import (
	"bytes"
	"errors"
	"testing"

	"github.com/aof2/aof2/core/types"
)

// The decoders below parse bytes read back from disk after arbitrary
// crashes and corruption: they must never panic, never allocate from a
// length field, and accept exactly what the encoders produce.

func FuzzDecodeHeader(f *testing.F) {
	h := Header{StreamID: 7, SegmentID: 3, BaseOffset: 4096, BaseRecord: 12, CreatedAt: 1e18, ExtID: 9}
	b := make([]byte, HeaderSize)
	h.Encode(b)
	f.Add(b)
	f.Add(make([]byte, HeaderSize))
	f.Add([]byte("AOF2SEGM"))
	f.Fuzz(func(t *testing.T, b []byte) {
		h, err := DecodeHeader(b)
		if err != nil {
			return
		}
		out := make([]byte, HeaderSize)
		h.Encode(out)
		if !bytes.Equal(out, b[:HeaderSize]) {
			t.Fatalf("accepted header does not re-encode to its bytes:\n got %x\nwant %x", out, b[:HeaderSize])
		}
	})
}

func FuzzDecodeFooter(f *testing.F) {
	foot := Footer{Flags: FlagSealed, SegmentID: 2, BaseRecord: 5, RecordCount: 1, DurableBytes: HeaderSize + 32,
		LastRecordID: types.MakeRecordID(2, HeaderSize), LastTimestamp: 1, SealedAt: 2, SegmentCRC: 3, ExtID: 4, CoordinatorWatermark: 5}
	b := make([]byte, FooterSize)
	foot.Encode(b)
	f.Add(b, int64(MinCapacity))
	f.Add(make([]byte, FooterSize), int64(MinCapacity))
	f.Fuzz(func(t *testing.T, b []byte, capacity int64) {
		foot, err := DecodeFooter(b, capacity)
		if err != nil {
			return
		}
		if foot.DurableBytes > uint64(DataEnd(capacity)) || foot.Flags&FlagSealed == 0 {
			t.Fatalf("accepted an impossible footer %+v for capacity %d", foot, capacity)
		}
		out := make([]byte, FooterSize)
		foot.Encode(out)
		if !bytes.Equal(out, b[:FooterSize]) {
			t.Fatalf("accepted footer does not re-encode to its bytes")
		}
	})
}

func FuzzDecodePointer(f *testing.F) {
	p := Pointer{SegmentID: 4, DurableBytes: 1 << 20, CoordinatorWatermark: 6}
	f.Add(p.Encode())
	f.Add(make([]byte, PointerSize))
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := DecodePointer(b)
		if err != nil {
			return
		}
		if !bytes.Equal(p.Encode(), b) {
			t.Fatalf("accepted pointer does not re-encode to its bytes")
		}
	})
}

func FuzzParseFileName(f *testing.F) {
	f.Add(FileName(1, 0, 0))
	f.Add(FileName(types.MaxSegmentID, 1<<63, 1<<62))
	f.Add("00000000000000000001_x_00000000000000000000.seg")
	f.Fuzz(func(t *testing.T, s string) {
		n, ok := ParseFileName(s)
		if !ok {
			return
		}
		if got := FileName(n.SegmentID, n.BaseOffset, n.CreatedAt); got != s {
			t.Fatalf("ParseFileName(%q) = %+v, which names %q", s, n, got)
		}
	})
}

// FuzzRecords feeds arbitrary segment bytes to the record decoders: the
// tail scan, the index builder, Locate and ReadRecord must agree on every
// record the scan accepts, and report anything else as a typed error.
func FuzzRecords(f *testing.F) {
	f.Add(buildSegment(f, 4096, "a", "bb", "a longer payload"), int64(HeaderSize))
	f.Add(make([]byte, 1024), int64(0))
	f.Fuzz(func(t *testing.T, b []byte, probe int64) {
		ts := ScanTail(b)
		if len(b) >= HeaderSize+FooterSize && ts.End < HeaderSize {
			t.Fatalf("scan end %d before the header", ts.End)
		}
		if ts.Count == 0 {
			_, _ = ReadRecord(b, "fuzz", probe, min(int64(len(b)), max(probe, 0)))
			return
		}
		ix, err := BuildIndex(b, "fuzz", ts.End)
		if err != nil {
			t.Fatalf("BuildIndex over scanned records: %v", err)
		}
		off, n := int64(HeaderSize), uint64(0)
		for off < ts.End {
			r, err := ReadRecord(b, "fuzz", off, ts.End)
			if err != nil {
				t.Fatalf("record %d at %d accepted by the scan but not by ReadRecord: %v", n, off, err)
			}
			ord, err := Locate(b, ix, "fuzz", off, ts.End)
			if err != nil || ord != n {
				t.Fatalf("Locate(%d) = %d, %v; want %d", off, ord, err, n)
			}
			if got, err := LocateOrdinal(b, ix, "fuzz", n, ts.End); err != nil || got != off {
				t.Fatalf("LocateOrdinal(%d) = %d, %v; want %d", n, got, err, off)
			}
			off, n = r.Next(), n+1
		}
		if n != ts.Count || off != ts.End {
			t.Fatalf("walked %d records to %d; scan says %d to %d", n, off, ts.Count, ts.End)
		}
		if _, err := ReadRecord(b, "fuzz", probe, ts.End); err != nil {
			var ce *types.CorruptError
			if !errors.As(err, &ce) && !errors.Is(err, types.ErrNotFound) {
				t.Fatalf("ReadRecord(%d): untyped error %v", probe, err)
			}
		}
	})
}

func FuzzDecodeMark(f *testing.F) {
	m := Mark{Seq: 9, Flags: MarkClean, SegmentID: 4, DurableBytes: HeaderSize + 64, Records: 2, Reserved: 5}
	f.Add(m.Encode())
	f.Add(make([]byte, MarkSlotSize))
	f.Add([]byte("AOF2MARK"))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := DecodeMark(b)
		if err != nil {
			return
		}
		if out := m.Encode(); !bytes.Equal(out[:markLen], b[:markLen]) {
			t.Fatalf("accepted mark does not re-encode to its bytes:\n got %x\nwant %x", out[:markLen], b[:markLen])
		}
	})
}
