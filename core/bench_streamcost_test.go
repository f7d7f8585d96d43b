package core

import (
	"bufio"
	"context"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aof2/aof2/core/vfs"
)

// BenchmarkStreamCost prices a stream: it creates AOF2_STREAM_COST_N
// streams (default 1,000; the figure is 10,000) in one store on
// the default configuration, appends one durable 100-byte record to each
// and reports, per stream, what they added: allocated disk blocks
// (du), apparent file bytes, resident memory (anonymous and file-backed),
// Go heap and stacks, open file descriptors, goroutines, memory mappings,
// and the time of Store.Stream (creation) and of the first AppendDurable.
// The "ops" sub-benchmark counts the file-system operations one creation
// and one first append perform (fsyncs, directory syncs, creates, …).
// It also reports the CPU the idle streams use (idle-cpu-%). Numbers and
// what they led to: docs/adr-tier0.md ("Per-stream cost").
func BenchmarkStreamCost(b *testing.B) {
	n := 1000
	if v := os.Getenv("AOF2_STREAM_COST_N"); v != "" {
		var err error
		if n, err = strconv.Atoi(v); err != nil || n <= 0 {
			b.Fatalf("AOF2_STREAM_COST_N=%q: want a positive count", v)
		}
	}
	b.Run("streams", func(b *testing.B) {
		for range b.N {
			streamCost(b, n)
		}
	})
	b.Run("ops", func(b *testing.B) {
		for range b.N {
			streamOps(b)
		}
	})
}

func streamCost(b *testing.B, n int) {
	b.StopTimer()
	dir := benchDir(b)
	ctx := context.Background()
	st, err := Open(dir, Config{})
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	p := benchPayload(100)
	before := sampleProcess(b)
	create := make([]time.Duration, 0, n)
	first := make([]time.Duration, 0, n)
	for i := range n {
		t0 := time.Now()
		s, err := st.Stream(StreamID(i + 1))
		if err != nil {
			b.Fatalf("stream %d: %v", i+1, err)
		}
		t1 := time.Now()
		if _, err := s.AppendDurable(ctx, p, AppendOptions{}); err != nil {
			b.Fatalf("stream %d: %v", i+1, err)
		}
		create = append(create, t1.Sub(t0))
		first = append(first, time.Since(t1))
	}
	// Let background work (preparation, syncers lingering, manifest
	// rotation) settle before looking: what an idle stream keeps is what
	// is being priced.
	time.Sleep(time.Second)
	after := sampleProcess(b)
	idleCPU := cpuTime(b)
	time.Sleep(2 * time.Second)
	idleCPU = cpuTime(b) - idleCPU
	blocks, apparent := diskUsage(b, dir)
	per := func(v int64) float64 { return float64(v) / float64(n) }
	b.ReportMetric(per(blocks)/1024, "disk-KiB/stream")
	b.ReportMetric(per(apparent)/1024, "apparent-KiB/stream")
	b.ReportMetric(per(after.rssAnon-before.rssAnon)/1024, "rss-anon-KiB/stream")
	b.ReportMetric(per(after.rssFile-before.rssFile)/1024, "rss-file-KiB/stream")
	b.ReportMetric(per(after.heap-before.heap)/1024, "heap-KiB/stream")
	b.ReportMetric(per(after.stack-before.stack)/1024, "stack-KiB/stream")
	b.ReportMetric(per(int64(after.fds-before.fds)), "fds/stream")
	b.ReportMetric(per(int64(after.goroutines-before.goroutines)), "goroutines/stream")
	b.ReportMetric(per(int64(after.maps-before.maps)), "mappings/stream")
	b.ReportMetric(float64(mean(create).Microseconds()), "create-mean-µs")
	b.ReportMetric(float64(quantile(create, 0.5).Microseconds()), "create-p50-µs")
	b.ReportMetric(float64(quantile(create, 0.99).Microseconds()), "create-p99-µs")
	b.ReportMetric(float64(quantile(first, 0.5).Microseconds()), "first-append-p50-µs")
	b.ReportMetric(100*idleCPU.Seconds()/2, "idle-cpu-%")
	b.ReportMetric(0, "ns/op")
	b.Logf("%d streams: disk %.1f MiB (apparent %.1f MiB), rss +%.1f MiB anon +%.1f MiB file, heap +%.1f MiB, stacks +%.1f MiB, fds +%d, goroutines +%d, mappings +%d; create mean %v p50 %v p99 %v, first append p50 %v; idle CPU %.1f%% of a core",
		n, mib(blocks), mib(apparent), mib(after.rssAnon-before.rssAnon), mib(after.rssFile-before.rssFile),
		mib(after.heap-before.heap), mib(after.stack-before.stack), after.fds-before.fds,
		after.goroutines-before.goroutines, after.maps-before.maps, mean(create), quantile(create, 0.5), quantile(create, 0.99),
		quantile(first, 0.5), 100*idleCPU.Seconds()/2)
	if err := st.Close(); err != nil {
		b.Fatal(err)
	}
	b.StartTimer()
}

// streamOps counts the file-system operations of creating one stream and
// of its first durable append.
func streamOps(b *testing.B) {
	b.StopTimer()
	var mu sync.Mutex
	counts := map[vfs.OpKind]int{}
	counting := false
	fsys := vfs.Wrap(vfs.OS, vfs.InjectorFunc(func(op vfs.Op) vfs.Fault {
		mu.Lock()
		if counting {
			counts[op.Kind]++
		}
		mu.Unlock()
		return 0
	}))
	st, err := Open(benchDir(b), Config{FS: fsys})
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	report := func(what string) {
		mu.Lock()
		defer mu.Unlock()
		var parts []string
		for _, k := range []vfs.OpKind{vfs.OpSync, vfs.OpSyncDir, vfs.OpMsync, vfs.OpMkdir, vfs.OpCreate, vfs.OpRename, vfs.OpRemove, vfs.OpAllocate, vfs.OpMap, vfs.OpWrite} {
			parts = append(parts, fmt.Sprintf("%s=%d", k, counts[k]))
		}
		b.ReportMetric(float64(counts[vfs.OpSync]+counts[vfs.OpSyncDir]+counts[vfs.OpMsync]), what+"-syncs")
		b.Logf("%s: %s", what, strings.Join(parts, " "))
		clear(counts)
	}
	mu.Lock()
	counting = true
	mu.Unlock()
	s, err := st.Stream(1)
	if err != nil {
		b.Fatal(err)
	}
	report("create")
	if _, err := s.AppendDurable(context.Background(), benchPayload(100), AppendOptions{}); err != nil {
		b.Fatal(err)
	}
	report("first-append")
	b.ReportMetric(0, "ns/op")
	b.StartTimer()
}

type procSample struct {
	rssAnon, rssFile, heap, stack int64
	fds, goroutines, maps         int
}

// sampleProcess reads this process's resident memory, descriptors,
// goroutines and mappings, after returning freed heap to the OS.
func sampleProcess(b *testing.B) procSample {
	runtime.GC()
	debug.FreeOSMemory()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	s := procSample{heap: int64(ms.HeapInuse), stack: int64(ms.StackInuse), goroutines: runtime.NumGoroutine()}
	f, err := os.Open("/proc/self/status")
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
		switch k {
		case "RssAnon":
			s.rssAnon = kb << 10
		case "RssFile":
			s.rssFile = kb << 10
		}
	}
	fds, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		b.Fatal(err)
	}
	s.fds = len(fds)
	maps, err := os.ReadFile("/proc/self/maps")
	if err != nil {
		b.Fatal(err)
	}
	s.maps = strings.Count(string(maps), "\n")
	return s
}

// diskUsage returns the allocated blocks (as du counts them) and the
// apparent size of every file under dir, directories included.
func diskUsage(tb testing.TB, dir string) (blocks, apparent int64) {
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		if st, ok := fi.Sys().(*syscall.Stat_t); ok {
			blocks += st.Blocks * 512
		}
		if !d.IsDir() {
			apparent += fi.Size()
		}
		return nil
	})
	if err != nil {
		tb.Fatal(err)
	}
	return blocks, apparent
}

// cpuTime is the CPU time (user and system) this process has used.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func mib(v int64) float64 { return float64(v) / (1 << 20) }

func mean(d []time.Duration) time.Duration {
	var t time.Duration
	for _, x := range d {
		t += x
	}
	return t / time.Duration(max(len(d), 1))
}

func quantile(d []time.Duration, q float64) time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	return s[min(len(s)-1, int(float64(len(s))*q))]
}
