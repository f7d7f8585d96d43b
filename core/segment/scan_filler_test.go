package segment

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// TestZeroLengthFillerScanAgreesWithReaders: a filler frame with payload
// length 0 (payload_len == FillerBit) and a valid checksum ends the tail
// scan, as Hop/BuildIndex/Locate/ReadRecord/frameAt treat it as no frame
// (the FuzzRecords contract: they "must agree on every record the scan
// accepts"); before, the scan stepped over it and recovery accepted a
// segment whose index could not be built.
func TestZeroLengthFillerScanAgreesWithReaders(t *testing.T) {
	b := buildSegment(t, 4096, "a", "bb")
	off := int64(HeaderSize) + RecordSpan(1) + RecordSpan(2)
	// A zero-length filler: just a header.
	le.PutUint32(b[off:], FillerBit)
	le.PutUint64(b[off+8:], ^uint64(0))
	le.PutUint32(b[off+4:], FrameChecksum(b[off:off+RecordHeaderSize]))
	// An intact record after it.
	next := off + RecordSpan(0)
	EncodeRecordHeader(b[next:], []byte("ccc"), 3, 103)
	copy(b[next+RecordHeaderSize:], "ccc")

	ts := ScanTail(b)
	t.Logf("scan: end %d, count %d, stop %q", ts.End, ts.Count, ts.Stop)
	_, err := BuildIndex(b, "review", ts.End)
	require.NoError(t, err, "BuildIndex over the records the scan accepted")
}

// FuzzRecords seed reproducing the same input through the existing target.
func FuzzRecordsZeroFiller(f *testing.F) {
	b := buildSegment(f, 4096, "a", "bb")
	off := int64(HeaderSize) + RecordSpan(1) + RecordSpan(2)
	le.PutUint32(b[off:], FillerBit)
	le.PutUint32(b[off+4:], FrameChecksum(b[off:off+RecordHeaderSize]))
	next := off + RecordSpan(0)
	EncodeRecordHeader(b[next:], []byte("ccc"), 3, 103)
	copy(b[next+RecordHeaderSize:], "ccc")
	f.Add(b, int64(HeaderSize))
	f.Fuzz(func(t *testing.T, b []byte, probe int64) {
		ts := ScanTail(b)
		if ts.Count == 0 {
			return
		}
		if _, err := BuildIndex(b, "fuzz", ts.End); err != nil {
			t.Fatalf("BuildIndex over scanned records: %v", err)
		}
	})
}
