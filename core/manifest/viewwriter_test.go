package manifest

import (
	"encoding/json"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/aof2/aof2/core/types"
)

// TestViewEncodingMatchesMarshalIndent: the view assembled from entries
// encoded one by one is byte for byte what encoding the whole view gives,
// through random additions, changes and removals of segments.
func TestViewEncodingMatchesMarshalIndent(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	x := &Index{StreamID: 42, segments: map[types.SegmentID]*SegmentState{}}
	v := &viewWriter{stream: x.StreamID, entries: map[types.SegmentID]*viewEntry{}}
	keys := []string{"", "streams/42/segments/1.seg.zst", `odd "key" <&> é`}
	want := func() []byte {
		b, err := json.MarshalIndent(ViewOf(x), "", "  ")
		require.NoError(t, err)
		return append(b, '\n')
	}
	require.False(t, v.refresh(x))
	require.Equal(t, string(want()), string(v.assemble(nil, x.Records)))
	next := types.SegmentID(1)
	for step := range 400 {
		x.Records += rng.Uint64N(3)
		switch op := rng.IntN(10); {
		case op < 4 || len(x.segments) == 0: // a new segment, now and then below the newest
			id := next
			if rng.IntN(5) == 0 && next > 3 {
				id = types.SegmentID(rng.Uint64N(uint64(next)))
			}
			if _, ok := x.segments[id]; !ok {
				x.segments[id] = &SegmentState{SegmentID: id, BaseOffset: uint64(id) << 20}
			}
			next++
		case op < 8: // a change to one segment
			for _, s := range x.segments {
				s.Residency = Residency(rng.IntN(4))
				s.Sealed = rng.IntN(2) == 0
				s.DurableBytes = rng.Uint64()
				s.SegmentCRC64 = Hex64(rng.Uint64())
				s.Tier1.State = Tier1State(rng.IntN(3))
				s.Tier1.CompressedBytes = rng.Uint64N(1 << 30)
				s.Tier2.Key = keys[rng.IntN(len(keys))]
				s.Tier2.ETag = keys[rng.IntN(len(keys))]
				break
			}
		case op < 9: // a change that leaves the view as it was
			for _, s := range x.segments {
				s.CoordinatorWatermark++
				before := v.assemble(nil, x.Records)
				require.False(t, v.refresh(x), "step %d", step)
				require.Equal(t, before, v.assemble(nil, x.Records))
				break
			}
			continue
		default: // a removal
			for id := range x.segments {
				delete(x.segments, id)
				break
			}
		}
		v.refresh(x)
		got := v.assemble(nil, x.Records)
		require.Equal(t, string(want()), string(got), "step %d", step)
		at, ok := viewRecords(got)
		require.True(t, ok, "step %d", step)
		require.Equal(t, x.Records, at, "step %d", step)
	}
}

// FuzzViewEntryEncoding: the hand-written entry encoder writes exactly
// what json.MarshalIndent writes, whatever the fields hold.
func FuzzViewEntryEncoding(f *testing.F) {
	f.Add(uint64(1), uint8(0), true, uint64(0), uint64(4096), uint64(0xdeadbeef), uint64(7), uint8(1), uint64(10), uint32(3), "k", "")
	f.Add(uint64(1<<32-1), uint8(3), false, uint64(1<<63), uint64(0), uint64(0), uint64(1<<64-1), uint8(2), uint64(0), uint32(0), `odd "key" <&> é`+"\u2028\x01\xff", "etag\t")
	f.Fuzz(func(t *testing.T, id uint64, res uint8, sealed bool, base, durable, crc, ext uint64, t1 uint8, comp uint64, dict uint32, key, etag string) {
		s := ViewSegment{SegmentID: types.SegmentID(id), Residency: Residency(res % 4), Sealed: sealed, BaseOffset: base, DurableBytes: durable,
			SegmentCRC64: Hex64(crc), ExtID: ext, Tier1: Tier1State(t1 % 3), CompressedBytes: comp, DictionaryID: dict, Tier2Key: key, Tier2ETag: etag}
		want, err := json.MarshalIndent(s, "    ", "  ")
		require.NoError(t, err)
		require.Equal(t, "    "+string(want), string(encodeViewEntry(s)))
	})
}
