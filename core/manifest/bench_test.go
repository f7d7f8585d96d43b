package manifest

import (
	"context"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"testing"

	"github.com/aof2/aof2/core/types"
	"github.com/aof2/aof2/core/vfs"
)

// rec64 is a record with a 64-byte payload (CustomEvent: 6 bytes of schema
// and length, 58 of blob); its frame is 104 bytes.
func rec64(i uint64) Record {
	return CustomEvent{Header: Header{SegmentID: types.SegmentID(i % 8), LogicalOffset: i, TimestampMS: 1}, SchemaID: 1, Blob: make([]byte, 58)}
}

func benchFS(b *testing.B, kind string) (vfs.FS, string) {
	if kind == "os" {
		return vfs.OS, filepath.Join(b.TempDir(), "streams", "7")
	}
	return vfs.NewMem(), testDir
}

// BenchmarkAppendCommit appends records with 64-byte payloads and commits
// every 100 records (two fdatasyncs per commit, on "os" real ones).
func BenchmarkAppendCommit(b *testing.B) {
	for _, kind := range []string{"os", "mem"} {
		for _, logOnly := range []bool{true, false} {
			name := kind + "/log-only"
			if !logOnly {
				name = kind + "/json+log"
			}
			b.Run(name, func(b *testing.B) {
				ctx := context.Background()
				fsys, dir := benchFS(b, kind)
				l, err := Open(ctx, fsys, dir, 7, Options{RotationPeriod: -1, LogOnly: logOnly})
				if err != nil {
					b.Fatal(err)
				}
				defer l.Close()
				b.SetBytes(64)
				b.ReportAllocs()
				b.ResetTimer()
				for i := range b.N {
					if err := l.Append(rec64(uint64(i))); err != nil {
						b.Fatal(err)
					}
					if i%100 == 99 {
						if err := l.Commit(ctx); err != nil {
							b.Fatal(err)
						}
					}
				}
				if err := l.Commit(ctx); err != nil {
					b.Fatal(err)
				}
				b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "records/s")
			})
		}
	}
}

// fullChunk writes one full 256 KiB chunk of 64-byte-payload records and
// returns its committed length.
func fullChunk(b *testing.B, fsys vfs.FS, dir string) int64 {
	ctx := context.Background()
	l, err := Open(ctx, fsys, dir, 7, Options{RotationPeriod: -1, SnapshotEveryBytes: -1, LogOnly: true})
	if err != nil {
		b.Fatal(err)
	}
	per := (DefaultChunkCapacity - chunkHeaderLen) / 104
	for i := range per {
		if err := l.Append(rec64(uint64(i))); err != nil {
			b.Fatal(err)
		}
	}
	if err := l.Commit(ctx); err != nil {
		b.Fatal(err)
	}
	if err := l.Close(); err != nil {
		b.Fatal(err)
	}
	h, _, err := readChunkHeader(fsys, filepath.Join(dir, manifestDirName, chunkName(0)))
	if err != nil {
		b.Fatal(err)
	}
	return int64(h.CommittedLen)
}

// BenchmarkReplayFullChunk replays one full 256 KiB chunk (about 2,500
// records): read, verify the chunk CRC and every record CRC, decode, fold.
// It reports the replay throughput and the chunk lag replay measured.
func BenchmarkReplayFullChunk(b *testing.B) {
	for _, kind := range []string{"os", "mem"} {
		b.Run(kind, func(b *testing.B) {
			ctx := context.Background()
			fsys, dir := benchFS(b, kind)
			n := fullChunk(b, fsys, dir)
			mdir := filepath.Join(dir, manifestDirName)
			b.SetBytes(n)
			b.ReportAllocs()
			var lag float64
			b.ResetTimer()
			for range b.N {
				res, err := replay(ctx, fsys, mdir, 7, SystemClock)
				if err != nil {
					b.Fatal(err)
				}
				if res.stats.RecordsApplied == 0 || res.stats.CorruptionEvents != 0 {
					b.Fatalf("bad replay: %+v", res.stats)
				}
				lag = max(lag, res.stats.LastChunkLag.Seconds())
			}
			b.ReportMetric(lag, "max-chunk-lag-s")
		})
	}
}

// BenchmarkOpenAfterCrash measures Open on a full chunk left unsealed by a
// crash, with an interrupted commit past committed_len: replay plus trim
// (truncate, seal, fsync) of the most recent chunk, which is what
// aof_manifest_replay_chunk_lag_seconds reports.
func BenchmarkOpenAfterCrash(b *testing.B) {
	ctx := context.Background()
	base := vfs.NewMem()
	l, err := Open(ctx, base, testDir, 7, Options{RotationPeriod: -1, SnapshotEveryBytes: -1, LogOnly: true})
	if err != nil {
		b.Fatal(err)
	}
	per := (DefaultChunkCapacity-chunkHeaderLen)/104 - 2
	for i := range per {
		_ = l.Append(rec64(uint64(i)))
	}
	if err := l.Commit(ctx); err != nil {
		b.Fatal(err)
	}
	// The interrupted commit: frames written past committed_len.
	frames, _ := appendRecord(nil, rec64(1))
	if _, err := l.w.f.WriteAt(append(frames, frames...), int64(l.w.hdr.CommittedLen)); err != nil {
		b.Fatal(err)
	}
	keepAll := vfs.CrashOptions{KeepProb: 1, Rand: rand.New(rand.NewPCG(1, 1))}
	crashed := base.CrashClone(keepAll)
	_ = l.Close()
	var lag float64
	b.ResetTimer()
	for range b.N {
		b.StopTimer()
		disk := crashed.CrashClone(keepAll)
		b.StartTimer()
		l, err := Open(ctx, disk, testDir, 7, Options{RotationPeriod: -1, SnapshotEveryBytes: -1, LogOnly: true})
		if err != nil {
			b.Fatal(err)
		}
		st := l.Replay()
		if st.JournalLagBytes != 208 {
			b.Fatalf("journal lag %d, want 208", st.JournalLagBytes)
		}
		lag = max(lag, st.LastChunkLag.Seconds())
		b.StopTimer()
		_ = l.Close()
		b.StartTimer()
	}
	b.ReportMetric(lag, "max-chunk-lag-s")
}

// BenchmarkSealAmong seals one segment (a SealSegment and the next
// SegmentOpened, committed together as a rollover does) in a stream that
// already holds n sealed segments: the per-seal cost should not grow with n.
func BenchmarkSealAmong(b *testing.B) {
	for _, n := range []int{100, 1000, 5000} {
		for _, logOnly := range []bool{true, false} {
			name := fmt.Sprintf("segments=%d/log-only", n)
			if !logOnly {
				name = fmt.Sprintf("segments=%d/json+log", n)
			}
			b.Run(name, func(b *testing.B) {
				ctx := context.Background()
				fsys, dir := benchFS(b, "os")
				l, err := Open(ctx, fsys, dir, 7, Options{RotationPeriod: -1, LogOnly: logOnly})
				if err != nil {
					b.Fatal(err)
				}
				defer l.Close()
				id := types.SegmentID(0)
				seal := func() []Record {
					id++
					h := Header{SegmentID: id, LogicalOffset: uint64(id) << 20, TimestampMS: 1}
					next := Header{SegmentID: id + 1, LogicalOffset: uint64(id+1) << 20, TimestampMS: 1}
					return []Record{SealSegment{Header: h, DurableBytes: 1 << 20, SegmentCRC64: Hex64(id)}, SegmentOpened{Header: next, BaseOffset: uint64(id+1) << 20}}
				}
				if err := l.AppendCommit(ctx, SegmentOpened{Header: Header{SegmentID: 1, TimestampMS: 1}}); err != nil {
					b.Fatal(err)
				}
				for i := 0; i < n; i += 500 {
					var recs []Record
					for range min(500, n-i) {
						recs = append(recs, seal()...)
					}
					if err := l.AppendCommit(ctx, recs...); err != nil {
						b.Fatal(err)
					}
				}
				b.ResetTimer()
				for range b.N {
					if err := l.AppendCommit(ctx, seal()...); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}
