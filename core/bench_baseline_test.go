package core

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/aof2/aof2/core/checksum"
)

// The plain-file baseline the targets are ratios against: length +
// CRC + payload frames through a 1 MiB bufio.Writer, fdatasync as asked.
// It has no segments, no index, no recovery and no readers; it is the
// ceiling of what appending to one file can do on this machine.

// frameSum is a plain baseline's frame checksum: the engine's own
// (CRC-64/NVME folded to 32 bits), or CRC-32C, what an outsider's plain
// log would use (hardware-assisted on amd64 and arm64).
type frameSum func([]byte) uint32

var (
	castagnoli          = crc32.MakeTable(crc32.Castagnoli)
	engineSum  frameSum = func(p []byte) uint32 { return checksum.Fold32(checksum.Sum64(p)) }
	crc32cSum  frameSum = func(p []byte) uint32 { return crc32.Checksum(p, castagnoli) }
)

// plainBaselines names the baselines every workload is run against.
var plainBaselines = []struct {
	name string
	sum  frameSum
}{{"plain", engineSum}, {"plain-crc32c", crc32cSum}}

// plainWrite writes n frames of size bytes to path, syncing every
// syncEvery frames (0: once at the end).
func plainWrite(path string, n, size, syncEvery int, sum frameSum) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	defer f.Close()
	w := bufio.NewWriterSize(f, 1<<20)
	payload := benchPayload(size)
	var hdr [8]byte
	for i := range n {
		binary.LittleEndian.PutUint32(hdr[0:], uint32(len(payload)))
		binary.LittleEndian.PutUint32(hdr[4:], sum(payload))
		if _, err := w.Write(hdr[:]); err != nil {
			return err
		}
		if _, err := w.Write(payload); err != nil {
			return err
		}
		if syncEvery > 0 && (i+1)%syncEvery == 0 {
			if err := w.Flush(); err != nil {
				return err
			}
			if err := unix.Fdatasync(int(f.Fd())); err != nil {
				return err
			}
		}
	}
	if err := w.Flush(); err != nil {
		return err
	}
	if err := unix.Fdatasync(int(f.Fd())); err != nil {
		return err
	}
	return f.Close()
}

// plainScan maps a file written by plainWrite and verifies every frame,
// returning the frame count.
func plainScan(path string, sum frameSum) (int, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return 0, err
	}
	b, err := unix.Mmap(int(f.Fd()), 0, int(st.Size()), unix.PROT_READ, unix.MAP_SHARED)
	if err != nil {
		return 0, err
	}
	defer unix.Munmap(b)
	n := 0
	for off := 0; off+8 <= len(b); n++ {
		l := int(binary.LittleEndian.Uint32(b[off:]))
		p := b[off+8 : off+8+l]
		if sum(p) != binary.LittleEndian.Uint32(b[off+4:]) {
			return n, fmt.Errorf("frame %d: checksum mismatch", n)
		}
		off += 8 + l
	}
	return n, nil
}

// benchPayload is a compressible, log-line-like payload of size bytes.
func benchPayload(size int) []byte {
	line := []byte(`{"ts":"2026-11-29T02:09:36Z","level":"info","msg":"request served","path":"/v1/items","status":200,"dur_us":1234}` + "\n")
	p := make([]byte, size)
	for i := range p {
		p[i] = line[i%len(line)]
	}
	return p
}

// benchDir is where benchmarks write: a real file system (AOF2_BENCH_DIR,
// default a fresh temp dir).
func benchDir(b *testing.B) string {
	if d := os.Getenv("AOF2_BENCH_DIR"); d != "" {
		dir, err := os.MkdirTemp(d, "bench")
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { os.RemoveAll(dir) })
		return dir
	}
	return b.TempDir()
}

// settle flushes every dirty page on the machine before a measurement, so
// one workload's background writeback does not slow the next one down.
func settle(b *testing.B) {
	b.StopTimer()
	unix.Sync()
	b.StartTimer()
}

func reportRate(b *testing.B, records, bytes int) {
	s := b.Elapsed().Seconds()
	b.ReportMetric(float64(records*b.N)/s, "rec/s")
	b.ReportMetric(float64(bytes*b.N)/s/1e6, "MB/s")
	b.ReportMetric(0, "ns/op")
}

func plainPath(b *testing.B) string { return filepath.Join(benchDir(b), "plain.log") }
