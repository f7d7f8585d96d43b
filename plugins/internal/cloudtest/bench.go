package cloudtest

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/hashicorp/go-hclog"

	"github.com/aof2/aof2/pluginapi"
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
// by the host) and through the SDK directly.
func RunBench(b *testing.B, binary string, config map[string]string, sdk SDK) {
	dir := b.TempDir()
	data := Pattern(7, BenchSize)
	src := filepath.Join(dir, "segment")
	if err := os.WriteFile(src, data, 0o600); err != nil {
		b.Fatal(err)
	}
	req := pluginapi.PutRequest{Key: "bench/segment", Size: BenchSize, CRC64: pluginapi.CRC64(data)}
	dst := filepath.Join(dir, "hydrated")
	b.Run("plugin", func(b *testing.B) {
		p, err := pluginapi.Launch(b.Context(), pluginapi.LaunchConfig{
			Path: binary, Logger: hclog.New(&hclog.LoggerOptions{Level: hclog.Warn}),
			Configure: pluginapi.ConfigureRequest{Config: config, StagingDir: dir},
		})
		if err != nil {
			b.Fatal(err)
		}
		defer p.Kill()
		b.Run("PutFile", func(b *testing.B) {
			b.SetBytes(BenchSize)
			for b.Loop() {
				if _, err := p.PutFile(b.Context(), req, src); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run("GetFile", func(b *testing.B) {
			b.SetBytes(BenchSize)
			for b.Loop() {
				if _, err := p.GetFile(b.Context(), pluginapi.GetRequest{Key: req.Key}, dst); err != nil {
					b.Fatal(err)
				}
			}
		})
	})
	b.Run("sdk", func(b *testing.B) {
		b.Run("PutFile", func(b *testing.B) {
			b.SetBytes(BenchSize)
			for b.Loop() {
				if err := sdk.PutFile(b.Context(), "bench/sdk-segment", src); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run("GetFile", func(b *testing.B) {
			b.SetBytes(BenchSize)
			for b.Loop() {
				if err := sdk.GetFile(b.Context(), "bench/sdk-segment", dst); err != nil {
					b.Fatal(err)
				}
			}
		})
	})
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
