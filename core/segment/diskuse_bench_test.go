package segment

import (
	"bytes"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/aof2/aof2/core/types"
	"github.com/aof2/aof2/core/vfs"
)

// BenchmarkSealedDiskUse seals 1 MiB segments holding one 1,000-byte
// record each (a stream sealed by age, not by size) and reports the disk
// the sealed files take per byte of record.
func BenchmarkSealedDiskUse(b *testing.B) {
	dir := b.TempDir()
	payload := bytes.Repeat([]byte{'r'}, 1000)
	var disk int64
	for i := range b.N {
		id := types.SegmentID(i + 1)
		p, err := Prepare(vfs.OS, filepath.Join(dir, PrepName(id)), 1<<20, PrepareFallocate, WritePwrite)
		if err != nil {
			b.Fatal(err)
		}
		w, err := p.Activate(Header{StreamID: 1, SegmentID: id})
		if err != nil {
			b.Fatal(err)
		}
		if _, err := w.Append(payload, 1, 0); err != nil {
			b.Fatal(err)
		}
		if _, err := w.Seal(SealParams{SealedAt: 1}); err != nil {
			b.Fatal(err)
		}
		var st unix.Stat_t
		if err := unix.Stat(w.Path(), &st); err != nil {
			b.Fatal(err)
		}
		disk += st.Blocks * 512
		_ = w.Close()
	}
	b.ReportMetric(float64(disk)/float64(b.N*len(payload)), "disk-B/record-B")
}
