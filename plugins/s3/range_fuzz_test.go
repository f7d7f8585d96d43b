package s3

import (
	"fmt"
	"math"
	"testing"
)

// FuzzRangeHeader: the Range a Get sends names exactly the bytes the
// request asked for (to the end when its length reaches past it), never a
// range that wraps (which a server ignores, sending the whole object).
func FuzzRangeHeader(f *testing.F) {
	f.Add(uint64(0), uint64(0))
	f.Add(uint64(10), uint64(5))
	f.Add(uint64(10), uint64(math.MaxUint64-5))
	f.Add(uint64(math.MaxUint64), uint64(1))
	f.Fuzz(func(t *testing.T, off, length uint64) {
		r := rangeHeader(off, length)
		if off == 0 && length == 0 {
			if r != "" {
				t.Fatalf("whole object asked, range %q", r)
			}
			return
		}
		var start, end uint64
		if n, _ := fmt.Sscanf(r, "bytes=%d-%d", &start, &end); n == 2 {
			if start != off || end < start || end-start+1 != length {
				t.Fatalf("rangeHeader(%d, %d) = %q", off, length, r)
			}
			return
		}
		if r != fmt.Sprintf("bytes=%d-", off) || length != 0 && length <= math.MaxUint64-off {
			t.Fatalf("rangeHeader(%d, %d) = %q", off, length, r)
		}
	})
}
