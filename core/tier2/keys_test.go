package tier2

import (
	"errors"
	"math"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/aof2/aof2/core/types"
	"github.com/aof2/aof2/pluginapi"
)

func TestLayoutKeys(t *testing.T) {
	cases := []struct {
		name, prefix string
		ref          Ref
		key          string
	}{
		{"segment", "", Ref{KindSegment, 42, 7}, "streams/42/segments/00000000000000000007.seg.zst"},
		{"segment max u32", "", Ref{KindSegment, 0, math.MaxUint32}, "streams/0/segments/00000000004294967295.seg.zst"},
		{"chunk", "", Ref{KindManifestChunk, 1, 3}, "streams/1/manifest/00000000000000000003.mlog"},
		{"snapshot", "", Ref{KindSnapshot, 1, 9}, "streams/1/manifest/00000000000000000009.snap"},
		{"reservation", "", Ref{KindReservation, 1, 64}, "streams/1/reservations/00000000000000000064.rsv"},
		{"prefix", "prod/aof2", Ref{KindSegment, 5, 1}, "prod/aof2/streams/5/segments/00000000000000000001.seg.zst"},
		{"prefix trailing slash", "prod/", Ref{KindManifestChunk, math.MaxUint64, math.MaxUint64},
			"prod/streams/18446744073709551615/manifest/18446744073709551615.mlog"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			l, err := NewLayout(tc.prefix)
			require.NoError(t, err)
			key := l.Key(tc.ref)
			assert.Equal(t, tc.key, key)
			require.NoError(t, pluginapi.ValidateKey(key))
			got, err := l.Parse(key)
			require.NoError(t, err)
			assert.Equal(t, tc.ref, got)
			assert.True(t, strings.HasPrefix(key, l.StreamPrefix(tc.ref.Stream)))
		})
	}
}

func TestLayoutHelpersMatchKey(t *testing.T) {
	l, err := NewLayout("p")
	require.NoError(t, err)
	assert.Equal(t, l.Key(Ref{KindSegment, 1, 2}), l.SegmentObjectKey(sk(1, 2)))
	assert.Equal(t, l.Key(Ref{KindManifestChunk, 1, 2}), l.ManifestChunkKey(1, 2))
	assert.Equal(t, l.Key(Ref{KindSnapshot, 1, 2}), l.SnapshotKey(1, 2))
	assert.Equal(t, l.Key(Ref{KindReservation, 1, 2}), l.ReservationKey(1, 2))
	assert.Equal(t, "", l.Key(Ref{Kind: 0, Stream: 1}))
	assert.Equal(t, "p/", l.Prefix())
}

func TestParseUnknownKeys(t *testing.T) {
	l, err := NewLayout("pre")
	require.NoError(t, err)
	for _, key := range []string{
		"streams/1/segments/00000000000000000001.seg.zst", // no prefix
		"other/streams/1/segments/00000000000000000001.seg.zst",
		"pre/stream/1/segments/00000000000000000001.seg.zst",
		"pre/streams/01/segments/00000000000000000001.seg.zst",                // leading zero stream
		"pre/streams/+1/segments/00000000000000000001.seg.zst",                // sign
		"pre/streams/x/segments/00000000000000000001.seg.zst",                 // not a number
		"pre/streams/18446744073709551616/manifest/00000000000000000001.mlog", // stream overflows
		"pre/streams/1/segments/1.seg.zst",                                    // not padded
		"pre/streams/1/segments/000000000000000000001.seg.zst",                // 21 digits
		"pre/streams/1/segments/00000000000000000001.seg",                     // suffix
		"pre/streams/1/segments/00000000004294967296.seg.zst",                 // over u32
		"pre/streams/1/segments/99999999999999999999.seg.zst",                 // over u64
		"pre/streams/1/manifest/00000000000000000001.bin",
		"pre/streams/1/manifest/snapshot_00000000000000000001.snap",
		"pre/streams/1/warm/00000000000000000001.seg.zst",
		"pre/streams/1/reservations/00000000004294967296.rsv", // over u32
		"pre/streams/1/reservations/00000000000000000001.seg.zst",
		"pre/streams/1",
		"pre/streams/1/segments/00000000000000000001.seg.zst.tmp",
		"pre/streams/1/segments/sub/00000000000000000001.seg.zst",
	} {
		t.Run(key, func(t *testing.T) {
			_, err := l.Parse(key)
			require.Error(t, err)
			assert.True(t, errors.Is(err, ErrUnknownKey))
			var uk *UnknownKeyError
			require.ErrorAs(t, err, &uk)
			assert.NotEmpty(t, uk.Reason)
		})
	}
}

func TestNewLayoutRejectsBadPrefixes(t *testing.T) {
	for _, p := range []string{"/abs", "a//b", "../up", "a/./b", "/", "a\\b", "nul\x00", strings.Repeat("x", 1000)} {
		_, err := NewLayout(p)
		assert.ErrorIs(t, err, ErrInvalidKey, "prefix %q", p)
	}
}

// FuzzParseKey: Parse never panics, and whatever it accepts is the
// canonical key of what it returns (so no two keys map to one object).
func FuzzParseKey(f *testing.F) {
	l, _ := NewLayout("")
	f.Add("", uint64(1), uint64(2), uint8(1))
	f.Add("pre", uint64(0), uint64(math.MaxUint32), uint8(2))
	f.Add("a/b", uint64(math.MaxUint64), uint64(0), uint8(3))
	f.Add("streams/1/segments/00000000000000000001.seg.zst", uint64(0), uint64(0), uint8(9))
	f.Add("streams/01/manifest/0000000000000000000x.mlog", uint64(0), uint64(0), uint8(9))
	f.Fuzz(func(t *testing.T, s string, stream, id uint64, kind uint8) {
		// Arbitrary strings as keys, with and without a prefix.
		for _, layout := range []Layout{l, {prefix: "pre/"}} {
			ref, err := layout.Parse(s)
			if err == nil {
				if got := layout.Key(ref); got != s {
					t.Fatalf("Parse(%q) = %+v, whose key is %q", s, ref, got)
				}
				if ref.Kind == KindSegment && ref.ID > math.MaxUint32 {
					t.Fatalf("Parse(%q) accepted a segment id over 32 bits", s)
				}
			} else if !errors.Is(err, ErrUnknownKey) {
				t.Fatalf("Parse(%q): %v does not match ErrUnknownKey", s, err)
			}
		}
		// Built keys round-trip.
		if pl, err := NewLayout(s); err == nil {
			ref := Ref{Kind: Kind(kind%3 + 1), Stream: types.StreamID(stream), ID: id}
			if ref.Kind == KindSegment {
				ref.ID &= math.MaxUint32
			}
			key := pl.Key(ref)
			if err := pluginapi.ValidateKey(key); err != nil {
				t.Fatalf("built an invalid key %q: %v", key, err)
			}
			got, err := pl.Parse(key)
			if err != nil || got != ref {
				t.Fatalf("round trip of %+v under %q: %+v, %v", ref, s, got, err)
			}
		}
	})
}
