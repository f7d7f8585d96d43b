package manifest

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// le is the byte order of every manifest format.
var le = binary.LittleEndian

// decoder reads little-endian fields from a byte slice. The first failure
// sticks: later reads return zero values, and err reports the failure. Every
// length read from the input is checked against the bytes remaining before
// anything is allocated, so a hostile length cannot make a decoder allocate
// more than the input size.
type decoder struct {
	b   []byte
	off int
	err error
	// what names the structure being decoded, for error messages.
	what string
}

func (d *decoder) remaining() int { return len(d.b) - d.off }

// need reports whether n more bytes are available, recording a failure if not.
func (d *decoder) need(n int) bool {
	if d.err != nil {
		return false
	}
	if n < 0 || d.remaining() < n {
		d.err = corruptf("%s: truncated: need %d bytes at offset %d, have %d", d.what, n, d.off, d.remaining())
		return false
	}
	return true
}

func (d *decoder) u8() uint8 {
	if !d.need(1) {
		return 0
	}
	v := d.b[d.off]
	d.off++
	return v
}

func (d *decoder) u16() uint16 {
	if !d.need(2) {
		return 0
	}
	v := le.Uint16(d.b[d.off:])
	d.off += 2
	return v
}

func (d *decoder) u32() uint32 {
	if !d.need(4) {
		return 0
	}
	v := le.Uint32(d.b[d.off:])
	d.off += 4
	return v
}

func (d *decoder) u64() uint64 {
	if !d.need(8) {
		return 0
	}
	v := le.Uint64(d.b[d.off:])
	d.off += 8
	return v
}

// str reads n bytes as a string (a copy).
func (d *decoder) str(n int) string {
	if !d.need(n) {
		return ""
	}
	s := string(d.b[d.off : d.off+n])
	d.off += n
	return s
}

// str16 reads a u16 length followed by that many bytes.
func (d *decoder) str16() string { return d.str(int(d.u16())) }

// fail records a structural failure (if none is recorded yet).
func (d *decoder) fail(format string, args ...any) {
	if d.err == nil {
		d.err = corruptf("%s: %s", d.what, fmt.Sprintf(format, args...))
	}
}

// finish returns the first failure, or one for trailing bytes.
func (d *decoder) finish() error {
	if d.err == nil && d.off != len(d.b) {
		d.err = corruptf("%s: %d trailing bytes at offset %d", d.what, len(d.b)-d.off, d.off)
	}
	return d.err
}

// checkPreamble checks the common start of a file format: magic (8 ASCII
// bytes), version u32, header_len u32, and that b holds at least min bytes.
func checkPreamble(b []byte, what, magic string, version, headerLen uint32, min int) error {
	switch {
	case len(b) < min:
		return corruptf("%s: %d bytes, need at least %d", what, len(b), min)
	case string(b[:8]) != magic:
		return corruptf("%s: bad magic %q", what, b[:8])
	case le.Uint32(b[8:]) != version:
		return corruptf("%s: version %d, want %d", what, le.Uint32(b[8:]), version)
	case le.Uint32(b[12:]) != headerLen:
		return corruptf("%s: header_len %d, want %d", what, le.Uint32(b[12:]), headerLen)
	}
	return nil
}

// appendStr16 appends a u16 length and s. Callers check len(s) <= MaxKeyLen.
func appendStr16(b []byte, s string) []byte {
	b = le.AppendUint16(b, uint16(len(s)))
	return append(b, s...)
}

// align8 rounds n up to a multiple of 8.
func align8(n int64) int64 { return (n + 7) &^ 7 }

// Hex64 is a 64-bit value (a CRC) that marshals to JSON as a hex string, so
// that tools which parse JSON numbers as doubles do not lose bits.
type Hex64 uint64

// MarshalText implements encoding.TextMarshaler.
func (h Hex64) MarshalText() ([]byte, error) {
	return fmt.Appendf(nil, "0x%016x", uint64(h)), nil
}

// UnmarshalText implements encoding.TextUnmarshaler. It takes only what
// MarshalText writes, "0x" and 16 lower-case hex digits: a checksum read
// back from a file is compared bit for bit, and no other text (decimal,
// octal, underscores, a shortened or upper-case form) may stand for it.
func (h *Hex64) UnmarshalText(b []byte) error {
	digits, ok := bytes.CutPrefix(b, []byte("0x"))
	if !ok || len(digits) != 16 || bytes.ContainsFunc(digits, func(r rune) bool { return (r < '0' || r > '9') && (r < 'a' || r > 'f') }) {
		return fmt.Errorf("manifest: bad hex64 %q: want 0x and 16 lower-case hex digits", b)
	}
	v, err := strconv.ParseUint(string(digits), 16, 64)
	if err != nil {
		return fmt.Errorf("manifest: bad hex64 %q: %w", b, err)
	}
	*h = Hex64(v)
	return nil
}

func (h Hex64) String() string { return fmt.Sprintf("0x%016x", uint64(h)) }

// enumInt is the underlying type of the format's enums.
type enumInt interface{ ~uint8 | ~uint16 | ~uint32 }

// enumString names v, or writes an unknown value as prefix(v).
func enumString[T enumInt](names []string, v T, prefix string) string {
	if uint64(v) < uint64(len(names)) {
		return names[v]
	}
	return prefix + "(" + strconv.FormatUint(uint64(v), 10) + ")"
}

// parseEnum parses what enumString wrote, and nothing else: a named value
// only by its name, an unnamed one only as prefix(v) with v in canonical
// decimal, so that every value has one text.
func parseEnum[T enumInt](names []string, b []byte, prefix string) (T, error) {
	s := string(b)
	if i := slices.Index(names, s); i >= 0 {
		return T(i), nil
	}
	if inner, ok := strings.CutPrefix(s, prefix+"("); ok {
		if inner, ok = strings.CutSuffix(inner, ")"); ok {
			v, err := strconv.ParseUint(inner, 10, 32)
			if err == nil && uint64(T(v)) == v && v >= uint64(len(names)) && strconv.FormatUint(v, 10) == inner {
				return T(v), nil
			}
		}
	}
	return 0, fmt.Errorf("manifest: unknown %s %q", prefix, s)
}
