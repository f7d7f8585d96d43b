package bytesize

import (
	"math"
	"strconv"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestParse(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want int64
	}{
		{"0", 0},
		{"4096", 4096},
		{"4096B", 4096},
		{"512KiB", 512 << 10},
		{"64MiB", 64 << 20},
		{"64mib", 64 << 20},
		{"64 MiB", 64 << 20},
		{" 1GiB ", 1 << 30},
		{"1.5GiB", 3 << 29},
		{"2TiB", 2 << 40},
		{"10KB", 10_000},
		{"10MB", 10_000_000},
		{"1.5GB", 1_500_000_000},
		{"1TB", 1_000_000_000_000},
		{"0.5KiB", 512},
		{"007", 7},
		{strconv.FormatInt(math.MaxInt64, 10), math.MaxInt64},
		{"8388607TiB", 8388607 << 40},
	} {
		t.Run(tc.in, func(t *testing.T) {
			got, err := Parse(tc.in)
			require.NoError(t, err)
			require.Equal(t, tc.want, got)
		})
	}
}

func TestParseRefuses(t *testing.T) {
	for _, tc := range []struct{ in, reason string }{
		{"", "want bytes"},
		{"MiB", "want bytes"},
		{"-1", "want bytes"},
		{"-1MiB", "want bytes"},
		{"64XB", "want bytes"},
		{"64 M", "want bytes"},
		{"1.5", "whole number"},
		{"1.5B", "whole number"},
		{"0.1KiB", "whole number"},
		{"1.", "want bytes"},
		{".5GiB", "want bytes"},
		{"1..5GiB", "want bytes"},
		{"1e3", "want bytes"},
		{"0x10", "want bytes"},
		{"8388608TiB", "too large"},
		{"9223372036854775808", "too large"},
		{"99999999999999999999999999999999999999999999GiB", "too large"},
	} {
		t.Run(tc.in, func(t *testing.T) {
			_, err := Parse(tc.in)
			require.ErrorContains(t, err, tc.reason)
		})
	}
}

func TestFormat(t *testing.T) {
	for _, tc := range []struct {
		in   int64
		want string
	}{
		{0, "0"}, {1, "1"}, {1000, "1000"}, {1024, "1KiB"}, {3 << 29, "1536MiB"},
		{64 << 20, "64MiB"}, {1 << 30, "1GiB"}, {5 << 40, "5TiB"}, {-1, "-1"},
	} {
		require.Equal(t, tc.want, Format(tc.in))
	}
}

// FuzzParse: Parse never panics, and what it accepts Format
// writes back to the same number.
func FuzzParse(f *testing.F) {
	for _, s := range []string{"0", "4096", "64MiB", "1.5GiB", "10GB", "0.5KiB", "1e3", "-1", "9223372036854775807", " 2 tib "} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, err := Parse(s)
		if err != nil {
			return
		}
		require.GreaterOrEqual(t, n, int64(0))
		back, err := Parse(Format(n))
		require.NoError(t, err)
		require.Equal(t, n, back)
	})
}
