package azure

import (
	"strings"

	"github.com/aof2/aof2/plugins/internal/cloud"
)

// Azure metadata names must be C# identifiers and are case-insensitive,
// while contract keys are [a-z0-9._-]. A user key k is stored as "m" + k
// with '_' → "_u", '.' → "_d", '-' → "_h"; the CRC entry is crcName, which
// no encoded user key can equal (they all start with "m").
const crcName = "aof2crc64nvme"

func encodeName(k string) string {
	var b strings.Builder
	b.WriteByte('m')
	for i := 0; i < len(k); i++ {
		switch c := k[i]; c {
		case '_':
			b.WriteString("_u")
		case '.':
			b.WriteString("_d")
		case '-':
			b.WriteString("_h")
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

func decodeName(n string) (string, bool) {
	n = strings.ToLower(n)
	if !strings.HasPrefix(n, "m") {
		return "", false
	}
	var b strings.Builder
	for i := 1; i < len(n); i++ {
		c := n[i]
		if c >= 'a' && c <= 'z' || c >= '0' && c <= '9' {
			b.WriteByte(c)
			continue
		}
		if c != '_' {
			// Not a byte encodeName writes ('.' and '-' are escaped):
			// no name of ours, whatever it would decode to.
			return "", false
		}
		if i+1 >= len(n) {
			return "", false
		}
		i++
		switch n[i] {
		case 'u':
			b.WriteByte('_')
		case 'd':
			b.WriteByte('.')
		case 'h':
			b.WriteByte('-')
		default:
			return "", false
		}
	}
	return b.String(), true
}

// toAzure encodes user metadata plus the CRC entry.
func toAzure(md map[string]string, crc uint64) map[string]*string {
	out := make(map[string]*string, len(md)+1)
	for k, v := range md {
		out[encodeName(k)] = &v
	}
	c := cloud.FormatCRC(crc)
	out[crcName] = &c
	return out
}

// fromAzure decodes what toAzure stored; names it did not write are dropped.
func fromAzure(md map[string]*string) (map[string]string, uint64, bool) {
	var out map[string]string
	var crc uint64
	var has bool
	for n, v := range md {
		if v == nil {
			continue
		}
		if strings.EqualFold(n, crcName) {
			crc, has = cloud.ParseCRC(*v)
			continue
		}
		k, ok := decodeName(n)
		if !ok {
			continue
		}
		if out == nil {
			out = map[string]string{}
		}
		out[k] = *v
	}
	return out, crc, has
}
