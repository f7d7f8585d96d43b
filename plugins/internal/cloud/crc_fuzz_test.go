package cloud

import (
	"strings"
	"testing"
)

// FuzzUserMetadata: metadata read back from a provider. The CRC entry
// parses only from 16 hex digits (the value FormatCRC writes, in either
// case), whatever the case of its name, and never reaches the user
// metadata; FormatCRC's output parses back to its value.
func FuzzUserMetadata(f *testing.F) {
	f.Add("aof2-crc64nvme", "00000000deadbeef", "kind", "segment", uint64(7))
	f.Add("AOF2-CRC64NVME", "+0000000deadbeef", "Kind", "x", uint64(1<<63))
	f.Add("aof2-crc64nvme", "0x000000deadbeef", "a", "", uint64(0))
	f.Fuzz(func(t *testing.T, crcName, crcValue, k, v string, crc uint64) {
		if got, ok := ParseCRC(FormatCRC(crc)); !ok || got != crc {
			t.Fatalf("FormatCRC(%d) parses to %d, %v", crc, got, ok)
		}
		if strings.EqualFold(k, CRCMetadataKey) || k == crcName {
			k = "user"
		}
		md := map[string]string{crcName: crcValue, k: v}
		out, got, has := UserMetadata(md)
		if has {
			if len(crcValue) != 16 || strings.Trim(strings.ToLower(crcValue), "0123456789abcdef") != "" {
				t.Fatalf("CRC entry %q taken as %016x", crcValue, got)
			}
			if FormatCRC(got) != strings.ToLower(crcValue) {
				t.Fatalf("CRC entry %q parses to %016x", crcValue, got)
			}
		}
		for mk := range out {
			if strings.EqualFold(mk, CRCMetadataKey) {
				t.Fatalf("the CRC entry %q reached the user metadata", mk)
			}
		}
	})
}
