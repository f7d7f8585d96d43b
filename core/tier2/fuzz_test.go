package tier2

import (
	"encoding/json"
	"strconv"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/aof2/aof2/core/types"
	"github.com/aof2/aof2/pluginapi"
)

// FuzzParseMetadata: object metadata comes from the backend (a listing or
// a Head). ParseMetadata never panics; what it accepts are the numbers the
// fields hold (nothing else is read into them), and what objectMetadata
// writes parses back to what was written.
func FuzzParseMetadata(f *testing.F) {
	f.Add(uint8(KindSegment), uint64(3), uint64(4), uint64(5), uint64(6), uint64(0xfeed), uint64(100), "", "", "")
	f.Add(uint8(KindSnapshot), uint64(1), uint64(2), uint64(0), uint64(0), uint64(0), uint64(1), "7", "64", "00000000000000ZZ")
	f.Add(uint8(0), uint64(0), uint64(0), uint64(0), uint64(0), uint64(0), uint64(0), "-1", "+5", "0123456789ABCDEF")
	f.Fuzz(func(t *testing.T, kind uint8, stream, id, count, base, crc, size uint64, chunk, offset, rawCRC string) {
		ref := Ref{Kind: Kind(kind % 7), Stream: types.StreamID(stream), ID: id}
		md := objectMetadata(ref, SegmentInfo{RecordCount: count, BaseRecord: base}, crc, size)
		m, err := ParseMetadata(md)
		if ref.Kind.String() != "" && idMetaKey(ref.Kind) != "" {
			require.NoError(t, err)
			require.Equal(t, ref, m.Ref)
			require.Equal(t, crc, m.CRC64)
			require.True(t, m.HasCRC64)
			require.Equal(t, size, m.Size)
			if ref.Kind == KindSegment {
				require.Equal(t, count, m.RecordCount)
				require.Equal(t, base, m.BaseRecord)
			}
			require.False(t, m.HasPosition)
		}
		// Hostile values: a field either parses to the number it holds or
		// the metadata is refused.
		md[MetaSnapshotChunk], md[MetaSnapshotOffset], md[MetaCRC64] = chunk, offset, rawCRC
		m, err = ParseMetadata(md)
		if err != nil {
			return
		}
		require.True(t, m.HasPosition)
		for _, c := range []struct {
			s   string
			got uint64
		}{{chunk, m.SnapshotChunk}, {offset, m.SnapshotOffset}} {
			v, perr := strconv.ParseUint(c.s, 10, 64)
			require.NoError(t, perr)
			require.Equal(t, v, c.got)
		}
		require.True(t, m.HasCRC64)
		require.Len(t, rawCRC, 16)
		v, perr := strconv.ParseUint(rawCRC, 16, 64)
		require.NoError(t, perr)
		require.Equal(t, v, m.CRC64)
		// The stored checksum of an object is its metadata's, or refused.
		got, ok, problem := storedCRC(pluginapi.ObjectInfo{Metadata: md})
		require.True(t, ok, problem)
		require.Equal(t, v, got)
	})
}

// FuzzDecodeDescriptor: the store descriptor is a JSON document read
// from tier 2. Decoding never panics, and what decodes re-encodes (as
// CreateDescriptor writes it) to a document that decodes the same.
func FuzzDecodeDescriptor(f *testing.F) {
	good, _ := json.MarshalIndent(Descriptor{Format: DescriptorFormat, Version: DescriptorVersion, StoreID: "ab", Layout: LayoutVersion,
		SegmentFormat: 1, ManifestFormat: 1, CreatedAt: "2026-01-01T00:00:00Z", CreatedBy: "h"}, "", "  ")
	f.Add(good)
	f.Add([]byte(`{"format":"aof2-store","version":1e400}`))
	f.Add([]byte(`{"FORMAT":"aof2-store","store_id":"a","store_id":"b"}`))
	f.Add([]byte(`null`))
	f.Fuzz(func(t *testing.T, b []byte) {
		d, err := decodeDescriptor(b)
		if err != nil {
			return
		}
		out, err := json.MarshalIndent(d, "", "  ")
		require.NoError(t, err)
		again, err := decodeDescriptor(out)
		require.NoError(t, err)
		require.Equal(t, d, again)
		if d.Check() == nil {
			require.Equal(t, DescriptorFormat, d.Format)
			require.NotEmpty(t, d.StoreID)
		}
	})
}

// FuzzDecodeWriterRecord: the writer record (the prefix's claim) is a
// JSON document read from tier 2: a decoded claim always names an epoch
// and a node, and re-encodes (as ClaimWriter writes it) to the same claim.
func FuzzDecodeWriterRecord(f *testing.F) {
	good, _ := json.MarshalIndent(WriterRecord{StoreID: "s", Epoch: 3, NodeID: "n", Host: "h", ClaimedAt: "t"}, "", "  ")
	f.Add(good)
	f.Add([]byte(`{"epoch":0,"node_id":"n"}`))
	f.Add([]byte(`{"epoch":-1,"node_id":"n"}`))
	f.Add([]byte(`{"epoch":18446744073709551616,"node_id":"n"}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		w, err := decodeWriterRecord(b)
		if err != nil {
			return
		}
		require.NotZero(t, w.Epoch)
		require.NotEmpty(t, w.NodeID)
		out, err := json.MarshalIndent(w, "", "  ")
		require.NoError(t, err)
		again, err := decodeWriterRecord(out)
		require.NoError(t, err, string(out))
		require.Equal(t, w, again)
	})
}
