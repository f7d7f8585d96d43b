package fs_test

import (
	"math/rand/v2"
	"sort"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/aof2/aof2/pluginapi"
)

// TestListRandomKeysAndPages: random keys (long segments, characters
// around '/'), random prefixes, start_after values and page sizes 1-5:
// every page walk returns exactly the matching keys, once, in order.
func TestListRandomKeysAndPages(t *testing.T) {
	b, _, _ := newFS(t)
	ctx := t.Context()
	rng := rand.New(rand.NewPCG(7, 9))
	alphabet := []string{"a", ".", " ", "0", "/", "~"}
	seen := map[string]bool{}
	var keys []string
	for len(keys) < 250 {
		var sb strings.Builder
		for range 1 + rng.IntN(4) {
			if rng.IntN(3) == 0 {
				sb.WriteString(strings.Repeat("L", 195+rng.IntN(12)))
			}
			sb.WriteString(alphabet[rng.IntN(len(alphabet))])
		}
		k := sb.String()
		if pluginapi.ValidateKey(k) != nil || seen[k] {
			continue
		}
		seen[k] = true
		keys = append(keys, k)
		_, err := put(ctx, b, k, []byte(k))
		require.NoError(t, err, k)
	}
	sort.Strings(keys)
	for it := 0; it < 400; it++ {
		k := keys[rng.IntN(len(keys))]
		p := k[:rng.IntN(len(k)+1)]
		if pluginapi.ValidatePrefix(p) != nil {
			continue
		}
		sa := ""
		if rng.IntN(2) == 0 {
			k2 := keys[rng.IntN(len(keys))]
			sa = k2[:rng.IntN(len(k2)+1)]
		}
		var want []string
		for _, k := range keys {
			if strings.HasPrefix(k, p) && k > sa {
				want = append(want, k)
			}
		}
		got := listKeys(t, b, pluginapi.ListRequest{Prefix: p, StartAfter: sa, PageSize: uint32(1 + rng.IntN(5))})
		require.Equal(t, want, got, "prefix %q start_after %q", p, sa)
	}
}

// TestListPrefixEndingInDotSegment: "a/." and "a/.." are prefixes of
// valid keys ("a/.hidden", "a/..x"); List must return those keys, not
// refuse the prefix as an invalid key.
func TestListPrefixEndingInDotSegment(t *testing.T) {
	b, _, _ := newFS(t)
	ctx := t.Context()
	for _, k := range []string{"a/.hidden", "a/..x", ".top"} {
		_, err := put(ctx, b, k, []byte(k))
		require.NoError(t, err, k)
	}
	for p, want := range map[string][]string{
		"a/.":  {"a/..x", "a/.hidden"},
		"a/..": {"a/..x"},
		".":    {".top"},
	} {
		var got []string
		err := b.List(ctx, pluginapi.ListRequest{Prefix: p}, func(page []pluginapi.ObjectInfo) error {
			for _, o := range page {
				got = append(got, o.Key)
			}
			return nil
		})
		require.NoError(t, err, "prefix %q", p)
		require.Equal(t, want, got, "prefix %q", p)
	}
}
