package pluginapi

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

// MaxKeyLength is the longest object key, in bytes.
const MaxKeyLength = 1024

// ValidateKey checks an object key against the contract: UTF-8, relative,
// '/'-separated, no empty, "." or ".." segments, no NUL or other control
// characters, no backslash, at most MaxKeyLength bytes. Host and plugin
// both call it; a failure matches ErrInvalidKey.
//
// Backslashes and control characters are refused because a key must name
// the same object on every backend: Windows paths, terminals and some
// object-store consoles treat them specially.
func ValidateKey(key string) error {
	if reason := keyProblem(key); reason != "" {
		return &Error{Code: CodeInvalidKey, Key: key, Message: reason}
	}
	return nil
}

func keyProblem(key string) string {
	switch {
	case key == "":
		return "empty key"
	case len(key) > MaxKeyLength:
		return fmt.Sprintf("key is %d bytes, longer than %d", len(key), MaxKeyLength)
	case !utf8.ValidString(key):
		return "key is not valid UTF-8"
	case key[0] == '/':
		return "key must be relative (leading '/')"
	}
	for _, r := range key {
		if r < 0x20 || r == 0x7f {
			return fmt.Sprintf("key contains control character %U", r)
		}
		if r == '\\' {
			return "key contains a backslash"
		}
	}
	for seg := range strings.SplitSeq(key, "/") {
		switch seg {
		case "":
			return "key has an empty segment"
		case ".", "..":
			return fmt.Sprintf("key has a %q segment", seg)
		}
	}
	return ""
}

// ValidatePrefix checks a List prefix: empty, or a key prefix that would not
// by itself make every key under it invalid (a trailing '/' is allowed).
func ValidatePrefix(prefix string) error {
	if prefix == "" {
		return nil
	}
	probe := prefix
	if strings.HasSuffix(probe, "/") {
		probe += "x"
	} else if last := probe[strings.LastIndexByte(probe, '/')+1:]; last == "." || last == ".." {
		probe += "x" // a partial last segment: ".hidden" and "..x" are valid
	}
	if reason := keyProblem(probe); reason != "" {
		return &Error{Code: CodeInvalidKey, Key: prefix, Message: "prefix: " + reason}
	}
	return nil
}
