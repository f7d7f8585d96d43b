package gcs

import "testing"

// FuzzParseETag: an if_match etag names a generation only in the form
// formatETag writes it, so two etag strings never match one generation.
func FuzzParseETag(f *testing.F) {
	for _, s := range []string{"1", "1700000000000000", "0", "-1", "+5", "05", " 5", "9223372036854775808"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		g, ok := parseETag(s)
		if !ok {
			return
		}
		if g <= 0 || formatETag(g) != s {
			t.Fatalf("parseETag(%q) = %d, which is written %q", s, g, formatETag(g))
		}
	})
}
