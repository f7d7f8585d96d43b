package checksum

import (
	"hash/crc64"
	"strconv"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestCheckValue(t *testing.T) {
	require.Equal(t, uint64(0xae8b14860a799888), Sum64([]byte("123456789")))
}

func TestUpdateIsIncremental(t *testing.T) {
	data := make([]byte, 4099)
	for i := range data {
		data[i] = byte(i * 7)
	}
	whole := Sum64(data)
	for _, cut := range []int{0, 1, 4, 127, 128, 1000, 4098, 4099} {
		require.Equal(t, whole, Update(Update(0, data[:cut]), data[cut:]), "cut at %d", cut)
	}
}

// TestMatchesStdlibTable cross-checks the accelerated implementation against
// the standard library's table-driven CRC-64 with the NVME polynomial.
func TestMatchesStdlibTable(t *testing.T) {
	tab := crc64.MakeTable(0x9a6c9329ac4bc9b5) // reflected form of 0xad93d23594c93659
	for _, n := range []int{0, 1, 20, 63, 64, 255, 256, 1024, 65537} {
		data := make([]byte, n)
		for i := range data {
			data[i] = byte(i*31 + n)
		}
		require.Equal(t, crc64.Checksum(data, tab), Sum64(data), "len %d", n)
	}
}

func TestFold32(t *testing.T) {
	require.Equal(t, uint32(0x12345678^0x9abcdef0), Fold32(0x123456789abcdef0))
}

func BenchmarkSum64(b *testing.B) {
	for _, n := range []int{20, 256, 4096, 1 << 20} {
		data := make([]byte, n)
		b.Run(byteSize(n), func(b *testing.B) {
			b.SetBytes(int64(n))
			for b.Loop() {
				Sum64(data)
			}
		})
	}
}

func byteSize(n int) string {
	switch {
	case n >= 1<<20:
		return strconv.Itoa(n>>20) + "MiB"
	case n >= 1<<10:
		return strconv.Itoa(n>>10) + "KiB"
	}
	return strconv.Itoa(n) + "B"
}
