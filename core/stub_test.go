package core

import (
	"bytes"
	"testing"

	"github.com/aof2/aof2/core/segment"
	"github.com/aof2/aof2/core/types"
)

func FuzzDecodeStub(f *testing.F) {
	h := segment.Header{StreamID: 1, SegmentID: 2, BaseOffset: 4096, BaseRecord: 10}
	foot := segment.Footer{Flags: segment.FlagSealed, SegmentID: 2, RecordCount: 1, DurableBytes: segment.HeaderSize + 32,
		LastRecordID: types.MakeRecordID(2, segment.HeaderSize)}
	f.Add(encodeStub(h, foot))
	f.Add(make([]byte, stubSize))
	f.Fuzz(func(t *testing.T, b []byte) {
		h, foot, err := decodeStub(b, segment.MinCapacity)
		if err != nil {
			return
		}
		if !bytes.Equal(encodeStub(h, foot), b) {
			t.Fatalf("accepted stub does not re-encode to its bytes")
		}
	})
}

// FuzzDecodeLostStub: what a replica accepts from a tier-2 lost record is
// a stub of the stream with the loss-accepted flag, and nothing else.
func FuzzDecodeLostStub(f *testing.F) {
	h := segment.Header{StreamID: 1, SegmentID: 2, BaseOffset: 4096, BaseRecord: 10}
	foot := segment.Footer{Flags: segment.FlagSealed, SegmentID: 2, DurableBytes: segment.HeaderSize + 32}
	f.Add(EncodeLostStub(h, foot))
	f.Add(encodeStub(h, foot))
	f.Fuzz(func(t *testing.T, b []byte) {
		h, foot, err := DecodeLostStub(b, 1, segment.MinCapacity)
		if err != nil {
			return
		}
		if h.StreamID != 1 || foot.Flags&segment.FlagLossAccepted == 0 || !bytes.Equal(EncodeLostStub(h, foot), b) {
			t.Fatalf("accepted a lost stub that is not one: %+v %+v", h, foot)
		}
	})
}
