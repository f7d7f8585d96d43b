package azure

import (
	"strings"
	"testing"
)

// FuzzDecodeName: metadata names come back from Azure (case folded as it
// likes): a name decodes only to the key whose encoding it is, and every
// contract key's encoding decodes to it.
func FuzzDecodeName(f *testing.F) {
	for _, s := range []string{"mkind", "Mstream", "mcrc_u64", "m_d_h_u", "m_", "m_x", "crc", "aof2crc64nvme", "MSNAPSHOT_UCHUNK"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, n string) {
		if k, ok := decodeName(n); ok {
			if got := encodeName(k); got != strings.ToLower(n) {
				t.Fatalf("decodeName(%q) = %q, which encodes to %q", n, k, got)
			}
		}
		key := strings.Map(func(r rune) rune {
			if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '.' || r == '_' || r == '-' {
				return r
			}
			return -1
		}, strings.ToLower(n))
		if k, ok := decodeName(encodeName(key)); !ok || k != key {
			t.Fatalf("key %q encodes to %q, which decodes to %q, %v", key, encodeName(key), k, ok)
		}
	})
}
