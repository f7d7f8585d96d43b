package tier1

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/aof2/aof2/core/vfs"
)

// benchSeg is one 64 MiB segment full of JSON log lines on the real file
// system, shared by the benchmarks of a run.
var benchSeg struct {
	once sync.Once
	dir  string
	seg  testSegment
}

func benchSegment(b *testing.B) testSegment {
	benchSeg.once.Do(func() {
		dir, err := os.MkdirTemp("", "tier1-bench-")
		if err != nil {
			b.Fatal(err)
		}
		benchSeg.dir = dir
		benchSeg.seg = writeSegment(b, vfs.OS, dir, 1, 1, 64<<20, -1, 42)
	})
	return benchSeg.seg
}

func TestMain(m *testing.M) {
	code := m.Run()
	if benchSeg.dir != "" {
		_ = os.RemoveAll(benchSeg.dir)
	}
	os.Exit(code)
}

// BenchmarkCompress measures single-core compression throughput (MB/s of
// segment bytes) and the ratio of a full 64 MiB segment of log lines.
func BenchmarkCompress(b *testing.B) {
	s := benchSegment(b)
	type cfg struct {
		level Level
		frame int
	}
	var cfgs []cfg
	for _, l := range []Level{LevelFastest, LevelDefault, LevelBetter} {
		for _, f := range []int{256 << 10, 1 << 20, 4 << 20} {
			cfgs = append(cfgs, cfg{l, f})
		}
	}
	cfgs = append(cfgs, cfg{LevelBest, 1 << 20})
	for _, c := range cfgs {
		b.Run(fmt.Sprintf("level=%s/frame=%dK", c.level, c.frame>>10), func(b *testing.B) {
			dst := filepath.Join(b.TempDir(), "a.seg.zst")
			b.SetBytes(64 << 20)
			var res CompressResult
			for b.Loop() {
				var err error
				if res, err = CompressSegment(context.Background(), vfs.OS, s.source(), dst, Options{FrameSize: c.frame, Level: c.level}); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(res.Ratio(), "ratio")
			b.ReportMetric(float64(s.foot.DurableBytes)/float64(res.CompressedBytes), "data-ratio")
		})
	}
}

func benchArtifact(b *testing.B, frame int) (testSegment, string) {
	s := benchSegment(b)
	dst := filepath.Join(b.TempDir(), "a.seg.zst")
	if _, err := CompressSegment(context.Background(), vfs.OS, s.source(), dst, Options{FrameSize: frame}); err != nil {
		b.Fatal(err)
	}
	return s, dst
}

// BenchmarkHydrate rebuilds the 64 MiB segment file from its artifact
// (decompress, verify segment_crc64, write, fsync, rename).
func BenchmarkHydrate(b *testing.B) {
	for _, frame := range []int{256 << 10, 1 << 20} {
		b.Run(fmt.Sprintf("frame=%dK", frame>>10), func(b *testing.B) {
			s, art := benchArtifact(b, frame)
			dest := filepath.Join(b.TempDir(), "h.seg")
			b.SetBytes(64 << 20)
			for b.Loop() {
				a := openFile(b, vfs.OS, art)
				if _, err := Hydrate(context.Background(), vfs.OS, a, s.expected(), dest); err != nil {
					b.Fatal(err)
				}
				_ = a.Close()
			}
		})
	}
}

// BenchmarkPointRead reads one random record of a cold 64 MiB segment: a
// fresh Artifact each time (seek table + the frames the record spans).
func BenchmarkPointRead(b *testing.B) {
	for _, frame := range []int{256 << 10, 1 << 20, 4 << 20} {
		b.Run(fmt.Sprintf("frame=%dK", frame>>10), func(b *testing.B) {
			s, art := benchArtifact(b, frame)
			r := rand.New(rand.NewPCG(1, 2))
			var frames, fetched, maxFrames, maxFetched int64
			for b.Loop() {
				w := s.records[r.IntN(len(s.records))]
				a := openFile(b, vfs.OS, art)
				if _, err := a.ReadRecord(w.off, int64(s.foot.DurableBytes)); err != nil {
					b.Fatal(err)
				}
				st := a.Stats()
				frames += st.FramesFetched
				fetched += st.Fetched()
				maxFrames, maxFetched = max(maxFrames, st.FramesFetched), max(maxFetched, st.Fetched())
				_ = a.Close()
			}
			b.ReportMetric(float64(frames)/float64(b.N), "frames/op")
			b.ReportMetric(float64(fetched)/float64(b.N)/1024, "KiB-fetched/op")
			b.ReportMetric(float64(maxFrames), "max-frames")
			b.ReportMetric(float64(maxFetched)/1024, "max-KiB-fetched")
		})
	}
}

// BenchmarkScan reads the whole segment sequentially in 1 MiB reads, through
// the artifact (decompressing every frame) and from the plain file.
func BenchmarkScan(b *testing.B) {
	s := benchSegment(b)
	buf := make([]byte, 1<<20)
	for _, frame := range []int{256 << 10, 1 << 20} {
		b.Run(fmt.Sprintf("artifact/frame=%dK", frame>>10), func(b *testing.B) {
			_, art := benchArtifact(b, frame)
			b.SetBytes(64 << 20)
			for b.Loop() {
				a := openFile(b, vfs.OS, art)
				for off := int64(0); off < a.Size(); off += int64(len(buf)) {
					if _, err := a.ReadAt(buf, off); err != nil {
						b.Fatal(err)
					}
				}
				_ = a.Close()
			}
		})
	}
	b.Run("plain-file", func(b *testing.B) {
		b.SetBytes(64 << 20)
		for b.Loop() {
			f, err := os.Open(s.path)
			if err != nil {
				b.Fatal(err)
			}
			for off := int64(0); off < 64<<20; off += int64(len(buf)) {
				if _, err := f.ReadAt(buf, off); err != nil {
					b.Fatal(err)
				}
			}
			_ = f.Close()
		}
	})
}
