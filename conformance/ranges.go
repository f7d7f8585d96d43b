package conformance

import (
	"bytes"

	"github.com/aof2/aof2/pluginapi"
)

func rangeBehaviours() []behaviour {
	return []behaviour{
		{"Ranges", testRanges},
		{"RangeOutOfBounds", testRangeOutOfBounds},
	}
}

func testRanges(t T, s *suite) {
	if !s.caps().RangeGet {
		t.Skipf("range_get not advertised (Unimplemented checked by UnadvertisedFeatures)")
	}
	ctx, cancel := s.ctx(t)
	defer cancel()
	c := uint64(s.tgt.ChunkSize)
	n := 2*c + 333
	data := pattern(21, int(n))
	key := s.key("ranges/object")
	s.put(t, ctx, s.b(), key, data)
	cases := []struct {
		name        string
		off, length uint64
		wantLen     uint64
	}{
		{"first-byte", 0, 1, 1},
		{"last-byte", n - 1, 1, 1},
		{"last-byte-to-end", n - 1, 0, 1},
		{"middle", c - 7, 1000, 1000},
		{"across-chunks", c / 2, c + 5, c + 5},
		{"to-end", 100, 0, n - 100},
		{"whole", 0, n, n},
		{"clipped-past-end", n - 10, 100, 10},
	}
	for _, tc := range cases {
		rng, got, err := s.get(ctx, s.b(), pluginapi.GetRequest{Key: key, Offset: tc.off, Length: tc.length})
		if !check(t, RuleRange, err == nil, "%s (offset %d length %d): got %v, want %d bytes", tc.name, tc.off, tc.length, err, tc.wantLen) {
			continue
		}
		want := data[tc.off : tc.off+tc.wantLen]
		check(t, RuleRange, rng.Offset == tc.off && rng.Length == tc.wantLen, "%s: got header offset %d length %d, want %d %d", tc.name, rng.Offset, rng.Length, tc.off, tc.wantLen)
		check(t, RuleRange, bytes.Equal(got, want), "%s: got %d bytes differing from the stored range (first difference at %d), want the %d bytes of the range", tc.name, len(got), firstDiff(got, want), len(want))
		check(t, RuleRange, rng.Info.Size == n, "%s: got a header describing a %d-byte object, want the whole object's size %d", tc.name, rng.Info.Size, n)
	}
}

func testRangeOutOfBounds(t T, s *suite) {
	if !s.caps().RangeGet {
		t.Skipf("range_get not advertised (Unimplemented checked by UnadvertisedFeatures)")
	}
	ctx, cancel := s.ctx(t)
	defer cancel()
	key := s.key("ranges/small")
	data := []byte("0123456789")
	s.put(t, ctx, s.b(), key, data)
	for _, off := range []uint64{10, 11, 1 << 40} {
		_, _, err := s.get(ctx, s.b(), pluginapi.GetRequest{Key: key, Offset: off, Length: 1})
		wantErr(t, RuleRange, err, pluginapi.ErrOutOfRange, "Get at offset %d of a 10-byte object", off)
	}
	empty := s.key("ranges/empty")
	s.put(t, ctx, s.b(), empty, nil)
	rng, got, err := s.get(ctx, s.b(), pluginapi.GetRequest{Key: empty})
	noErr(t, RuleRange, err, "Get of an empty object")
	check(t, RuleRange, len(got) == 0 && rng.Length == 0, "empty object: got %d bytes (header length %d), want 0", len(got), rng.Length)
	_, _, err = s.get(ctx, s.b(), pluginapi.GetRequest{Key: empty, Offset: 1})
	wantErr(t, RuleRange, err, pluginapi.ErrOutOfRange, "Get at offset 1 of an empty object")
}
