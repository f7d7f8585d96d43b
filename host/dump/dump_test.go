package dump

import (
	"bytes"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestBytes(t *testing.T) {
	for _, c := range []struct {
		n    int64
		want string
	}{{0, "0 B"}, {1023, "1023 B"}, {1024, "1.0 KiB"}, {1536, "1.5 KiB"}, {64 << 20, "64.0 MiB"}, {3 << 30, "3.0 GiB"}, {5 << 40, "5.0 TiB"}} {
		require.Equal(t, c.want, Bytes(c.n), "%d", c.n)
	}
}

func sample() *Dump {
	d := &Dump{Schema: Schema, Source: Offline, DataDir: "/d", Streams: []Stream{
		{ID: 1, Segments: []Segment{
			{Stream: 1, ID: 1, Sealed: true, Bytes: 100, Compressed: 40, Tier1: true, Tier2: true, Residency: "uploaded_to_tier2"},
			{Stream: 1, ID: 2, Sealed: true, Bytes: 100, Compressed: 40, Tier0: true, Tier1: true, Residency: "resident_in_tier0"},
			{Stream: 1, ID: 3, Bytes: 7, Tier0: true, Residency: "resident_in_tier0"},
		}},
		{ID: 2, Segments: []Segment{{Stream: 2, ID: 1, Sealed: true, Residency: "needs_recovery"}}},
	}}
	d.fillTiers()
	d.flagRecovery()
	return d
}

func TestTiersAndFilters(t *testing.T) {
	d := sample()
	require.Equal(t, []Tier{{Name: "tier0", Segments: 2, Bytes: 107}, {Name: "tier1", Segments: 2, Bytes: 80}, {Name: "tier2", Segments: 1, Bytes: 40}}, d.Tiers)
	one := uint64(1)
	for _, c := range []struct {
		stream *uint64
		tier   string
		want   int
	}{{nil, "", 4}, {&one, "", 3}, {nil, "0", 2}, {nil, "tier1", 2}, {&one, "2", 1}, {nil, "bogus", 0}} {
		require.Len(t, d.Segments(c.stream, c.tier), c.want, "%v %q", c.stream, c.tier)
	}
	require.True(t, ValidTier("tier2"))
	require.False(t, ValidTier("3"))
	require.Len(t, d.Problems, 1)
	require.Contains(t, d.Problems[0], "stream 2 segment 1 needs recovery")
}

func TestWriteTable(t *testing.T) {
	var b bytes.Buffer
	require.NoError(t, sample().WriteTable(&b))
	out := b.String()
	for _, want := range []string{"AOF2 dump (offline) of /d", "TIER", "tier0", "stream 1: 3 segments", "uploaded_to_tier2", "PROBLEMS", "needs recovery"} {
		require.Contains(t, out, want)
	}
}
