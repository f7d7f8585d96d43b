package pluginapi

import (
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/stretchr/testify/require"
)

func TestValidateKey(t *testing.T) {
	good := []string{"a", "a/b", "streams/1/segments/00000000000000000001.seg.zst", ".hidden", "a/...", "a b", "żółw", "%2e%2e", strings.Repeat("k", MaxKeyLength)}
	for _, k := range good {
		require.NoError(t, ValidateKey(k), "%q", k)
	}
	bad := []string{"", "/a", "a/", "a//b", ".", "..", "a/./b", "a/../b", "../a", "a/..", "a\x00b", "a\nb", "a\x7fb", "a\\b", "\xff", strings.Repeat("k", MaxKeyLength+1)}
	for _, k := range bad {
		err := ValidateKey(k)
		require.ErrorIs(t, err, ErrInvalidKey, "%q", k)
	}
}

func TestValidatePrefix(t *testing.T) {
	for _, p := range []string{"", "a", "a/", "a/b", "a/b-"} {
		require.NoError(t, ValidatePrefix(p), "%q", p)
	}
	for _, p := range []string{"/", "/a", "a//", "../", "a/../", "a\x00"} {
		require.ErrorIs(t, ValidatePrefix(p), ErrInvalidKey, "%q", p)
	}
}

// FuzzValidateKey checks the key rules against an independent statement
// of them: whatever is accepted can never escape a directory or collide
// with a path trick, and whatever breaks a rule is refused.
func FuzzValidateKey(f *testing.F) {
	for _, s := range []string{"a/b", "../x", "a//b", "/abs", "a\x00", "ok.txt", "..", "a/.", strings.Repeat("x", 1025)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, key string) {
		err := ValidateKey(key)
		ok := key != "" && len(key) <= MaxKeyLength && utf8.ValidString(key) && !strings.HasPrefix(key, "/") &&
			!strings.ContainsAny(key, "\\\x7f")
		for _, r := range key {
			ok = ok && r >= 0x20
		}
		for _, seg := range strings.Split(key, "/") {
			ok = ok && seg != "" && seg != "." && seg != ".."
		}
		if ok {
			require.NoError(t, err)
		} else {
			require.ErrorIs(t, err, ErrInvalidKey)
		}
	})
}

func TestValidateMetadata(t *testing.T) {
	require.NoError(t, ValidateMetadata(nil, 0))
	require.NoError(t, ValidateMetadata(map[string]string{"stream": "1", "record-count": "5", "base_record.id": "ż"}, 0))
	full := map[string]string{"k": strings.Repeat("v", DefaultMaxMetadataBytes-1)}
	require.NoError(t, ValidateMetadata(full, 0))
	full["k"] += "v"
	require.ErrorIs(t, ValidateMetadata(full, 0), ErrInvalidArgument)
	for _, md := range []map[string]string{{"": "x"}, {"Upper": "x"}, {"-lead": "x"}, {"a/b": "x"}, {"k": "a\tb"}, {"k": "\xff"}, {strings.Repeat("k", 129): ""}} {
		require.ErrorIs(t, ValidateMetadata(md, 0), ErrInvalidArgument, "%q", md)
	}
}

func FuzzValidateMetadata(f *testing.F) {
	f.Add("stream", "1")
	f.Add("", "")
	f.Add("K", "\n")
	f.Fuzz(func(t *testing.T, k, v string) {
		err := ValidateMetadata(map[string]string{k: v}, 0)
		if err != nil {
			require.ErrorIs(t, err, ErrInvalidArgument)
			return
		}
		// Accepted metadata is printable, bounded and lower-case ASCII keyed.
		require.LessOrEqual(t, len(k)+len(v), DefaultMaxMetadataBytes)
		require.Equal(t, strings.ToLower(k), k)
		require.True(t, utf8.ValidString(v))
		require.NotContains(t, k, "/")
	})
}
