package pluginapi

import (
	"fmt"
	"unicode/utf8"
)

// DefaultMaxMetadataBytes is the metadata budget a backend advertises when
// it has no tighter limit: S3's 2 KiB of user metadata.
const DefaultMaxMetadataBytes = 2048

// MaxMetadataKeyLength bounds one metadata key.
const MaxMetadataKeyLength = 128

// MetadataSize is the metadata's size as the contract counts it: the sum of
// every key's and value's length in bytes.
func MetadataSize(md map[string]string) int {
	n := 0
	for k, v := range md {
		n += len(k) + len(v)
	}
	return n
}

// ValidateMetadata checks object metadata: keys are 1..128 bytes of
// [a-z0-9._-] starting with a letter or digit (every object store can carry
// them unchanged, S3 lower-cases keys), values are UTF-8 without control
// characters, and MetadataSize(md) <= limit (limit <= 0 means
// DefaultMaxMetadataBytes). A failure matches ErrInvalidArgument.
func ValidateMetadata(md map[string]string, limit int) error {
	if limit <= 0 {
		limit = DefaultMaxMetadataBytes
	}
	if n := MetadataSize(md); n > limit {
		return &Error{Code: CodeInvalidArgument, Message: fmt.Sprintf("metadata is %d bytes, over the limit of %d", n, limit)}
	}
	for k, v := range md {
		if err := metadataKeyProblem(k); err != "" {
			return &Error{Code: CodeInvalidArgument, Message: fmt.Sprintf("metadata key %q: %s", k, err)}
		}
		if !utf8.ValidString(v) {
			return &Error{Code: CodeInvalidArgument, Message: fmt.Sprintf("metadata %q: value is not valid UTF-8", k)}
		}
		for _, r := range v {
			if r < 0x20 || r == 0x7f {
				return &Error{Code: CodeInvalidArgument, Message: fmt.Sprintf("metadata %q: value contains control character %U", k, r)}
			}
		}
	}
	return nil
}

func metadataKeyProblem(k string) string {
	if k == "" || len(k) > MaxMetadataKeyLength {
		return fmt.Sprintf("length must be 1..%d bytes", MaxMetadataKeyLength)
	}
	for i := 0; i < len(k); i++ {
		c := k[i]
		alnum := c >= 'a' && c <= 'z' || c >= '0' && c <= '9'
		if alnum || i > 0 && (c == '.' || c == '_' || c == '-') {
			continue
		}
		return "only [a-z0-9._-] allowed, starting with a letter or digit"
	}
	return ""
}

func cloneMetadata(md map[string]string) map[string]string {
	if len(md) == 0 {
		return nil
	}
	out := make(map[string]string, len(md))
	for k, v := range md {
		out[k] = v
	}
	return out
}
