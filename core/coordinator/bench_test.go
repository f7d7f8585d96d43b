package coordinator

import (
	"context"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/stretchr/testify/require"

	"github.com/aof2/aof2/core"
	"github.com/aof2/aof2/core/budget"
	"github.com/aof2/aof2/core/segment"
	"github.com/aof2/aof2/core/tier1"
	"github.com/aof2/aof2/core/tier2"
	"github.com/aof2/aof2/core/types"
	"github.com/aof2/aof2/pluginapi"
	pluginhost "github.com/aof2/aof2/pluginapi/host"
	fsbackend "github.com/aof2/aof2/plugins/fs"
)

// coldRig is one full 64 MiB segment of log-line records that lives only
// in tier 2 (the fs plugin over real gRPC in this process), for the cold
// read benchmarks.
type coldRig struct {
	c      *Coordinator
	st     *core.Store
	s      *core.Stream
	remote *tier2.Store
	root   string // the fs plugin's root (tier 2 on disk)
	dir    string // the data directory (the plugin's staging directory)
	seg    core.SegmentInfo
	ids    []core.RecordID
}

func logLine(i int) []byte {
	line := []byte(`{"ts":"2026-11-29T03:27:00.123Z","level":"info","svc":"checkout","msg":"request served","path":"/v1/items/` +
		string(rune('a'+i%26)) + `","status":200,"dur_us":` + string(rune('0'+i%10)) + `}`)
	p := make([]byte, 256)
	for j := range p {
		p[j] = line[j%len(line)]
	}
	return p
}

func newColdRig(b *testing.B) *coldRig {
	ctx := context.Background()
	dir, root := b.TempDir(), b.TempDir()
	ip, err := pluginhost.ServeInProcess(fsbackend.New(), hclog.NewNullLogger())
	require.NoError(b, err)
	b.Cleanup(func() { _ = ip.Close() })
	info, _, err := ip.Setup(ctx, pluginapi.ConfigureRequest{Config: map[string]string{"root": root}, StagingDir: dir})
	require.NoError(b, err)
	remote, err := tier2.New(ip, tier2.Config{Info: &info, Logger: hclog.NewNullLogger()})
	require.NoError(b, err)
	rg := startRig(b, Config{DataDir: dir, Tier2: remote, Tier0: budget.Config{Policy: budget.PolicyTier2}, ScanInterval: 10 * time.Millisecond,
		Logger: hclog.NewNullLogger()}, core.Config{Sync: core.SyncNone, SegmentSize: segment.DefaultCapacity})
	c, st := rg.c, rg.st
	s, err := st.Stream(1)
	require.NoError(b, err)
	r := &coldRig{c: c, st: st, s: s, remote: remote, root: root, dir: dir}
	for i := 0; ; i++ {
		id, err := s.AppendCtx(ctx, logLine(i), core.AppendOptions{})
		require.NoError(b, err)
		if id.Segment() != 1 {
			break
		}
		r.ids = append(r.ids, id)
	}
	require.NoError(b, s.FlushAll(ctx))
	require.Eventually(b, func() bool {
		ms, _ := s.TierLog().Segment(1)
		return ms.Tier2.Key != ""
	}, time.Minute, 10*time.Millisecond)
	r.seg, _ = s.Segment(1)
	b.Cleanup(func() { _ = st.Close(); _ = c.Close() })
	return r
}

// makeCold evicts the segment from tier 0 and the warm cache.
func (r *coldRig) makeCold(b *testing.B) {
	require.NoError(b, r.s.Evict(1))
	_ = r.c.budget.Removed(types.SegmentKey{Stream: 1, Segment: 1})
	if _, err := r.c.Warm().Remove(types.SegmentKey{Stream: 1, Segment: 1}); err != nil {
		require.ErrorIs(b, err, tier1.ErrNotCached)
	}
}

func scan(b *testing.B, s *core.Stream, want int) {
	rd, err := s.NewReader(core.AtStart())
	require.NoError(b, err)
	defer rd.Close()
	n := 0
	for ; ; n++ {
		_, err := rd.NextCtx(context.Background())
		if err == io.EOF {
			break
		}
		require.NoError(b, err)
	}
	require.GreaterOrEqual(b, n, want)
}

// BenchmarkColdTier2 measures, on one 64 MiB segment held only in tier 2:
// a point read of one record (seek table + the frames it needs), a full
// scan (hydrate, then read) against a warm scan of the same segment, and
// hydration from tier 2 against copying the object file directly.
func BenchmarkColdTier2(b *testing.B) {
	r := newColdRig(b)
	ctx := context.Background()
	segBytes := int64(r.seg.Footer.DurableBytes)
	b.Run("point-read", func(b *testing.B) {
		r.makeCold(b)
		before := r.c.ColdReadBytes()
		b.ResetTimer()
		for i := range b.N {
			id := r.ids[(i*7919+len(r.ids)/2)%len(r.ids)]
			rec, err := r.s.ReadAt(ctx, id)
			require.NoError(b, err)
			require.Len(b, rec.Payload, 256)
		}
		b.ReportMetric(float64(r.c.ColdReadBytes()-before)/float64(b.N), "fetched-B/read")
		b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N)/1000, "ms/read")
	})
	b.Run("cold-scan", func(b *testing.B) {
		for range b.N {
			b.StopTimer()
			r.makeCold(b)
			b.StartTimer()
			scan(b, r.s, len(r.ids))
		}
		b.ReportMetric(float64(segBytes*int64(b.N))/b.Elapsed().Seconds()/1e6, "MB/s")
	})
	b.Run("warm-scan", func(b *testing.B) {
		scan(b, r.s, len(r.ids)) // resident after the cold scan
		b.ResetTimer()
		for range b.N {
			scan(b, r.s, len(r.ids))
		}
		b.ReportMetric(float64(segBytes*int64(b.N))/b.Elapsed().Seconds()/1e6, "MB/s")
	})
	b.Run("hydrate-via-plugin", func(b *testing.B) {
		for range b.N {
			b.StopTimer()
			r.makeCold(b)
			b.StartTimer()
			rd, err := r.s.NewReader(core.AtStart())
			require.NoError(b, err)
			_, err = rd.NextCtx(ctx) // hydrates the whole segment
			require.NoError(b, err)
			rd.Close()
		}
		b.ReportMetric(float64(segBytes*int64(b.N))/b.Elapsed().Seconds()/1e6, "MB/s")
	})
	b.Run("direct-copy", func(b *testing.B) {
		var src string
		require.NoError(b, filepath.WalkDir(r.root, func(p string, d fs.DirEntry, err error) error {
			if err == nil && !d.IsDir() && strings.Contains(p, ".seg.zst") {
				src = p
			}
			return err
		}))
		require.NotEmpty(b, src)
		dst := filepath.Join(b.TempDir(), "copy")
		data, err := os.ReadFile(src)
		require.NoError(b, err)
		b.ResetTimer()
		for range b.N {
			in, err := os.ReadFile(src)
			require.NoError(b, err)
			f, err := os.Create(dst)
			require.NoError(b, err)
			_, err = f.Write(in)
			require.NoError(b, err)
			require.NoError(b, f.Sync())
			require.NoError(b, f.Close())
		}
		b.ReportMetric(float64(len(data)*b.N)/b.Elapsed().Seconds()/1e6, "object-MB/s")
		b.ReportMetric(float64(len(data)), "object-B")
	})
	b.Run("download-via-plugin", func(b *testing.B) {
		dst := filepath.Join(r.dir, "download.tmp")
		var n uint64
		for range b.N {
			d, err := r.remote.DownloadSegment(ctx, sk(1, 1), dst, tier2.Expect{})
			require.NoError(b, err)
			n = d.Info.Size
		}
		b.ReportMetric(float64(n*uint64(b.N))/b.Elapsed().Seconds()/1e6, "object-MB/s")
	})
}
