package core

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/aof2/aof2/core/segment"
	"github.com/aof2/aof2/core/vfs"
)

// The write-path matrix behind the defaults (docs/adr-write-path.md): how
// records reach the file (mmap copy vs staged pwrite) crossed with how the
// file is prepared, measured three ways: bulk append throughput, records
// made durable every 1,000 (W3's shape), and single-appender per-record
// durable latency. BenchmarkPrepare prices each preparation on its own.

var (
	writeModes   = []segment.WriteMode{segment.WriteMmap, segment.WritePwrite}
	preparations = []segment.Preparation{segment.PrepareSmallPages, segment.PrepareLargeFolios, segment.PrepareFallocate}
)

func BenchmarkWritePath(b *testing.B) {
	for _, mode := range writeModes {
		for _, prep := range preparations {
			name := fmt.Sprintf("%s/%s", mode, prep)
			cfg := func(sync SyncPolicy) Config {
				return Config{Sync: sync, MaxUnflushedBytes: -1, WriteMode: mode, Preparation: prep}
			}
			b.Run(name+"/append", func(b *testing.B) {
				settle(b)
				w := benchWorkload{"append", 300_000, 256, 0}
				for range b.N {
					b.StopTimer()
					dir := benchDir(b)
					b.StartTimer()
					if err := aof2Write(dir, cfg(SyncNone), w); err != nil {
						b.Fatal(err)
					}
				}
				reportRate(b, w.records, w.records*w.size)
			})
			b.Run(name+"/flush-every-1000", func(b *testing.B) {
				settle(b)
				w := benchWorkload{"flush", 100_000, 256, 1000}
				for range b.N {
					b.StopTimer()
					dir := benchDir(b)
					b.StartTimer()
					if err := aof2Write(dir, cfg(SyncNone), w); err != nil {
						b.Fatal(err)
					}
				}
				reportRate(b, w.records, w.records*w.size)
			})
			b.Run(name+"/durable-each", func(b *testing.B) {
				settle(b)
				const n = 1500
				for range b.N {
					b.StopTimer()
					st, err := Open(benchDir(b), cfg(SyncAlways))
					if err != nil {
						b.Fatal(err)
					}
					s, err := st.Stream(1)
					if err != nil {
						b.Fatal(err)
					}
					p := benchPayload(256)
					lat := make([]time.Duration, 0, n)
					b.StartTimer()
					for range n {
						t0 := time.Now()
						if _, err := s.AppendDurable(context.Background(), p, AppendOptions{}); err != nil {
							b.Fatal(err)
						}
						lat = append(lat, time.Since(t0))
					}
					b.StopTimer()
					if err := st.Close(); err != nil {
						b.Fatal(err)
					}
					reportLatency(b, lat)
					b.StartTimer()
				}
				reportRate(b, n, n*256)
			})
		}
	}
}

func BenchmarkPrepare(b *testing.B) {
	for _, prep := range preparations {
		b.Run(prep.String(), func(b *testing.B) {
			dir := benchDir(b)
			for i := range b.N {
				p, err := segment.Prepare(vfs.OS, filepath.Join(dir, segment.PrepName(SegmentID(i+1))), segment.DefaultCapacity, prep, segment.WriteMmap)
				if err != nil {
					b.Fatal(err)
				}
				b.StopTimer()
				if err := p.Discard(); err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
			}
			b.ReportMetric(float64(b.Elapsed().Milliseconds())/float64(b.N), "ms/64MiB")
		})
	}
}
