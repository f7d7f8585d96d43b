package segment

import (
	"bytes"
	"errors"
	"testing"

	"github.com/aof2/aof2/core/types"
	"github.com/aof2/aof2/core/vfs"
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
	f.Add(b, int64(MinFileCapacity))
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

// FuzzInspect feeds Inspect segment files of every capacity a stream
// writes (64 KiB to 2 MiB here) and of sizes that are no capacity: the
// capacity is not stored in the file, recovery takes it from the size.
// head is written at offset 0, tail at the end (where the footer goes).
func FuzzInspect(f *testing.F) {
	h := Header{StreamID: 7, SegmentID: 3, BaseOffset: 4096, BaseRecord: 12, CreatedAt: 99}
	head := make([]byte, HeaderSize+RecordHeaderSize+8)
	h.Encode(head)
	EncodeRecordHeader(head[HeaderSize:], []byte("payload!"), 1, 2)
	copy(head[HeaderSize+RecordHeaderSize:], "payload!")
	foot := Footer{Flags: FlagSealed, SegmentID: 3, BaseRecord: 12, RecordCount: 1, DurableBytes: uint64(len(head)),
		LastRecordID: types.MakeRecordID(3, HeaderSize), LastTimestamp: 1, SegmentCRC: 5}
	tail := make([]byte, FooterSize)
	foot.Encode(tail)
	for shift := range uint8(6) {
		f.Add(head, tail, shift, false)
	}
	f.Add(head, []byte{}, uint8(0), false)
	f.Add(head, tail, uint8(1), true)
	f.Add([]byte{}, []byte{}, uint8(0), true)
	name := Name{SegmentID: h.SegmentID, BaseOffset: h.BaseOffset, CreatedAt: h.CreatedAt}
	path := "/s/" + FileName(name.SegmentID, name.BaseOffset, name.CreatedAt)
	f.Fuzz(func(t *testing.T, head, tail []byte, shift uint8, odd bool) {
		size := int64(MinFileCapacity) << (shift % 6)
		if odd {
			size += 8 // not a capacity
		}
		b := make([]byte, size)
		copy(b, head)
		if len(tail) <= len(b) {
			copy(b[len(b)-len(tail):], tail)
		}
		mem := vfs.NewMem()
		if err := vfs.MkdirAllSync(mem, "/s"); err != nil {
			t.Fatal(err)
		}
		if err := vfs.WriteFileAtomic(mem, path, b); err != nil {
			t.Fatal(err)
		}
		info, err := Inspect(mem, path, name, h.StreamID)
		if err != nil {
			var ce *types.CorruptError
			if !errors.As(err, &ce) {
				t.Fatalf("untyped error %v", err)
			}
			return
		}
		if info.Unwritten {
			if !IsZero(b[:min(len(b), HeaderSize)]) && ValidCapacity(size) {
				t.Fatalf("a written header reported as unwritten")
			}
			return
		}
		if info.Truncated {
			if info.Capacity != size || ValidCapacity(size) {
				t.Fatalf("truncated with capacity %d for a file of %d bytes", info.Capacity, size)
			}
			return
		}
		if info.Capacity != size || !ValidCapacity(size) {
			t.Fatalf("capacity %d for a file of %d bytes", info.Capacity, size)
		}
		if info.Footer != nil && info.Footer.DurableBytes > uint64(DataEnd(size)) {
			t.Fatalf("footer %+v past the data area of capacity %d", info.Footer, size)
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
