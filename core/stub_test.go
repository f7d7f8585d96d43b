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
