package checksum

import (
	"bytes"
	"errors"
	"fmt"
	"hash/crc64"
	"io"
	"strconv"
	"testing"

	"github.com/minio/crc64nvme"
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

// TestUpdateMatchesLibrary: the split into head, aligned runs and tail gives
// the library's result for every length and alignment around the split
// points.
func TestUpdateMatchesLibrary(t *testing.T) {
	buf := make([]byte, 1200)
	for i := range buf {
		buf[i] = byte(i*131 + 7)
	}
	for off := range 16 {
		for n := 0; n+off <= len(buf) && n <= 700; n++ {
			p := buf[off : off+n]
			require.Equal(t, crc64nvme.Update(0x1234, p), Update(0x1234, p), "offset %d length %d", off, n)
		}
	}
}

func FuzzUpdate(f *testing.F) {
	f.Add(uint64(0), []byte("123456789"), uint8(3))
	f.Fuzz(func(t *testing.T, crc uint64, b []byte, off uint8) {
		o := int(off) % 16
		buf := make([]byte, o+len(b))
		copy(buf[o:], b)
		p := buf[o:]
		if got, want := Update(crc, p), crc64nvme.Update(crc, p); got != want {
			t.Fatalf("Update(%#x, %d bytes at +%d) = %#x, library %#x", crc, len(p), o, got, want)
		}
	})
}

func BenchmarkRecordChecksum(b *testing.B) {
	buf := make([]byte, 4096)
	for _, n := range []int{24, 280, 4000} {
		p := buf[8 : 8+n]
		b.Run(strconv.Itoa(n), func(b *testing.B) {
			b.SetBytes(int64(n))
			for range b.N {
				sinkCRC = Update(0, p)
			}
		})
	}
}

var sinkCRC uint64

func TestSumReaderAt(t *testing.T) {
	data := make([]byte, 3*chunk+123)
	for i := range data {
		data[i] = byte(i * 7)
	}
	for _, tc := range []struct {
		name string
		n    int64
		err  error
	}{
		{"empty", 0, nil},
		{"less than a chunk", 1000, nil},
		{"several chunks", int64(len(data)), nil},
		{"a prefix across chunks", 2*chunk + 5, nil},
		{"past the end", int64(len(data)) + 1, io.ErrUnexpectedEOF},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var asked int64
			got, err := SumReaderAt(bytes.NewReader(data), tc.n, func(n int64) error { asked += n; return nil })
			if tc.err != nil {
				require.ErrorIs(t, err, tc.err)
				require.Contains(t, err.Error(), fmt.Sprintf("end at %d of %d", len(data), tc.n))
				return
			}
			require.NoError(t, err)
			require.Equal(t, Sum64(data[:tc.n]), got)
			require.Equal(t, tc.n, asked, "every byte read is announced first")
		})
	}
	stop := errors.New("stop")
	_, err := SumReaderAt(bytes.NewReader(data), int64(len(data)), func(int64) error { return stop })
	require.ErrorIs(t, err, stop)
}
