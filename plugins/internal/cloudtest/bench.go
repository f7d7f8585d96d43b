package cloudtest

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/aof2/aof2/pluginapi"
	pluginhost "github.com/aof2/aof2/pluginapi/host"
)

// BenchSize is the object size of the PutFile/GetFile benchmarks.
const BenchSize = 64 << 20

// SDK is the same transfer done with the provider's SDK in-process, the
// baseline a plugin is measured against.
type SDK struct {
	PutFile func(ctx context.Context, key, src string) error
	GetFile func(ctx context.Context, key, dst string) error
}

// RunBench measures PutFile and GetFile of a 64 MiB file through the
// plugin binary (launched as the host launches it, GetFile output checked
// by the host) and through the SDK directly. The two are interleaved:
// every iteration makes both transfers, in alternating order, so what
// drifts during a run weighs on both alike — a server that slows down as
// its store fills (Azurite's in-memory store does), another process on the
// same cores. Each sub-benchmark reports plugin-MB/s, sdk-MB/s and
// plugin/sdk-% (ns/op is the pair).
func RunBench(b *testing.B, binary string, config map[string]string, sdk SDK) {
	dir := b.TempDir()
	data := Pattern(7, BenchSize)
	src := filepath.Join(dir, "segment")
	if err := os.WriteFile(src, data, 0o600); err != nil {
		b.Fatal(err)
	}
	req := pluginapi.PutRequest{Key: "bench/segment", Size: BenchSize, CRC64: pluginapi.CRC64(data)}
	const sdkKey = "bench/sdk-segment"
	dst := filepath.Join(dir, "hydrated")
	p, err := pluginhost.Launch(b.Context(), pluginhost.LaunchConfig{
		Path: binary, Logger: hclog.New(&hclog.LoggerOptions{Level: hclog.Warn}),
		Configure: pluginapi.ConfigureRequest{Config: config, StagingDir: dir},
	})
	if err != nil {
		b.Fatal(err)
	}
	defer p.Kill()
	pluginPut := func(ctx context.Context) error { _, err := p.PutFile(ctx, req, src); return err }
	sdkPut := func(ctx context.Context) error { return sdk.PutFile(ctx, sdkKey, src) }
	// GetFile alone (-bench Files/GetFile) needs both objects.
	for _, put := range []func(context.Context) error{pluginPut, sdkPut} {
		if err := put(b.Context()); err != nil {
			b.Fatal(err)
		}
	}
	b.Run("PutFile", func(b *testing.B) { interleave(b, pluginPut, sdkPut) })
	b.Run("GetFile", func(b *testing.B) {
		interleave(b,
			func(ctx context.Context) error {
				_, err := p.GetFile(ctx, pluginapi.GetRequest{Key: req.Key}, dst)
				return err
			},
			func(ctx context.Context) error { return sdk.GetFile(ctx, sdkKey, dst) })
	})
}

// interleave runs plugin and sdk once per iteration, alternating which
// goes first, and reports each side's throughput and their ratio.
func interleave(b *testing.B, plugin, sdk func(context.Context) error) {
	sides := []func(context.Context) error{plugin, sdk}
	var spent [2]time.Duration
	n := 0
	for b.Loop() {
		for j := range 2 {
			k := (n + j) % 2
			start := time.Now()
			if err := sides[k](b.Context()); err != nil {
				b.Fatalf("%s: %v", [2]string{"plugin", "sdk"}[k], err)
			}
			spent[k] += time.Since(start)
		}
		n++
	}
	mbps := func(d time.Duration) float64 { return float64(BenchSize) * float64(n) / d.Seconds() / 1e6 }
	b.ReportMetric(mbps(spent[0]), "plugin-MB/s")
	b.ReportMetric(mbps(spent[1]), "sdk-MB/s")
	b.ReportMetric(100*spent[1].Seconds()/spent[0].Seconds(), "plugin/sdk-%")
}

// CopyToFile writes r into a new file at path.
func CopyToFile(path string, write func(f *os.File) error) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := write(f); err != nil {
		_ = f.Close()
		return err
	}
	return f.Close()
}
