// Package bytesize is the one size grammar of AOF2: the host's
// configuration (segment.size = "64MiB", AOF2_TIER0_MAX_BYTES=10GB) and
// every plugin's size settings (part_size = "8MB") parse sizes with Parse,
// so that an operator writes a size the same way everywhere.
package bytesize

import (
	"errors"
	"math"
	"math/big"
	"strconv"
	"strings"
)

var sizeUnits = map[string]int64{
	"":    1,
	"b":   1,
	"kb":  1e3,
	"mb":  1e6,
	"gb":  1e9,
	"tb":  1e12,
	"kib": 1 << 10,
	"mib": 1 << 20,
	"gib": 1 << 30,
	"tib": 1 << 40,
}

// binaryUnits are the units Format writes, largest first.
var binaryUnits = []struct {
	name string
	n    int64
}{{"TiB", 1 << 40}, {"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}}

// ErrSyntax describes the accepted syntax; Parse returns it for text that
// is not a size.
var ErrSyntax = errors.New("want bytes as an integer, or a number and a unit (B, KB, MB, GB, TB, KiB, MiB, GiB, TiB), e.g. 4096, 512KiB, 1.5GiB")

// Parse parses a byte count: a plain integer is bytes; a number
// followed by a unit is scaled by it. KiB, MiB, GiB and TiB are powers of
// 1024, KB, MB, GB and TB powers of 1000; units are case-insensitive and
// may be separated from the number by spaces. A fraction is allowed when
// the result is a whole number of bytes ("1.5GiB", not "1.5B"). Negative
// sizes are refused. The error does not repeat s.
func Parse(s string) (int64, error) {
	s = strings.TrimSpace(s)
	end := 0
	for end < len(s) && (s[end] >= '0' && s[end] <= '9' || s[end] == '.') {
		end++
	}
	num, unit := s[:end], strings.ToLower(strings.TrimSpace(s[end:]))
	mult, ok := sizeUnits[unit]
	if !ok {
		return 0, ErrSyntax
	}
	whole, frac, hasDot := strings.Cut(num, ".")
	if whole == "" || strings.Contains(frac, ".") || (hasDot && frac == "") {
		return 0, ErrSyntax
	}
	if len(whole)+len(frac) > 40 {
		return 0, errors.New("too large")
	}
	mant, _ := new(big.Int).SetString(whole+frac, 10)
	scale := new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(len(frac))), nil)
	n, rem := new(big.Int).QuoRem(mant.Mul(mant, big.NewInt(mult)), scale, new(big.Int))
	if rem.Sign() != 0 {
		return 0, errors.New("not a whole number of bytes")
	}
	if !n.IsInt64() {
		return 0, errors.New("too large")
	}
	return n.Int64(), nil
}

// Format writes n with the largest binary unit that divides it
// exactly ("64MiB"), or as plain bytes. Parse reads it back.
func Format(n int64) string {
	if n != 0 && n != math.MinInt64 {
		for _, u := range binaryUnits {
			if n%u.n == 0 {
				return strconv.FormatInt(n/u.n, 10) + u.name
			}
		}
	}
	return strconv.FormatInt(n, 10)
}
