package host_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/aof2/aof2/conformance/fake"
	"github.com/aof2/aof2/pluginapi"
	"github.com/aof2/aof2/pluginapi/host"
	"github.com/aof2/aof2/pluginapi/internal/sink"
	"github.com/aof2/aof2/plugins/fs"
)

// Throughput of the plugin boundary. Results depend on the machine and on
// whatever else runs on it; docs/adr-plugin-transport.md records a run.
//
//	go test -run '^$' -bench . -benchtime 20x ./pluginapi/host/

const benchObject = 64 << 20

type benchTarget struct {
	name string
	open func(b *testing.B, chunk uint32) pluginapi.Backend
}

func directTarget(newBackend func(b *testing.B) pluginapi.Backend) benchTarget {
	return benchTarget{"direct", func(b *testing.B, _ uint32) pluginapi.Backend { return newBackend(b) }}
}

func grpcTarget(newBackend func(b *testing.B) pluginapi.Backend, cfg func(b *testing.B) map[string]string) benchTarget {
	return benchTarget{"inprocess-grpc", func(b *testing.B, chunk uint32) pluginapi.Backend {
		ip, err := host.ServeInProcess(newBackend(b), nil)
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { _ = ip.Close() })
		if _, _, err := ip.Setup(b.Context(), pluginapi.ConfigureRequest{ChunkSize: chunk, Config: cfg(b)}); err != nil {
			b.Fatal(err)
		}
		return ip.Client
	}}
}

func pluginTarget(name string, mtls bool, binary string, cfg func(b *testing.B) map[string]string, args ...string) benchTarget {
	return benchTarget{name, func(b *testing.B, chunk uint32) pluginapi.Backend {
		p, err := host.Launch(b.Context(), host.LaunchConfig{
			Path: bin(b, binary), Args: args, DisableAutoMTLS: !mtls, Logger: quietLogger(),
			Configure: pluginapi.ConfigureRequest{ChunkSize: chunk, Config: cfg(b)},
		})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(p.Kill)
		return p
	}}
}

func noConfig(*testing.B) map[string]string { return nil }

func fsConfig(b *testing.B) map[string]string { return map[string]string{"root": b.TempDir()} }

func newFS(b *testing.B) pluginapi.Backend {
	f := fs.New()
	if _, err := f.Configure(b.Context(), pluginapi.ConfigureRequest{Config: fsConfig(b)}); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = f.Close() })
	return f
}

// BenchmarkTransport measures streamed Put and Get against a backend that
// stores nothing (internal/sink), so only the plugin transport is measured.
func BenchmarkTransport(b *testing.B) {
	newSink := func(*testing.B) pluginapi.Backend { return sink.New() }
	benchStreams(b, []benchTarget{
		directTarget(newSink),
		grpcTarget(newSink, noConfig),
		pluginTarget("plugin-plain", false, "testplugin", noConfig, "sink"),
		pluginTarget("plugin-automtls", true, "testplugin", noConfig, "sink"),
	})
}

// BenchmarkStream measures streamed Put and Get against the in-memory
// fake (which allocates and copies every object it stores).
func BenchmarkStream(b *testing.B) {
	newFake := func(*testing.B) pluginapi.Backend { return fake.New(fake.Options{}) }
	benchStreams(b, []benchTarget{
		directTarget(newFake),
		grpcTarget(newFake, noConfig),
		pluginTarget("plugin-plain", false, "aof2-plugin-fake", noConfig),
		pluginTarget("plugin-automtls", true, "aof2-plugin-fake", noConfig),
	})
}

func benchStreams(b *testing.B, targets []benchTarget) {
	data := bytes.Repeat([]byte("0123456789abcdef"), benchObject/16)
	req := pluginapi.PutRequest{Key: "bench/object", Size: benchObject, CRC64: pluginapi.CRC64(data)}
	for _, tg := range targets {
		for _, chunk := range []uint32{64 << 10, 1 << 20} {
			name := fmt.Sprintf("%s/chunk=%dKiB", tg.name, chunk>>10)
			b.Run(name+"/Put", func(b *testing.B) {
				be := tg.open(b, chunk)
				b.SetBytes(benchObject)
				for b.Loop() {
					if _, err := be.Put(b.Context(), req, bytes.NewReader(data)); err != nil {
						b.Fatal(err)
					}
				}
			})
			b.Run(name+"/Get", func(b *testing.B) {
				be := tg.open(b, chunk)
				if _, err := be.Put(b.Context(), req, bytes.NewReader(data)); err != nil {
					b.Fatal(err)
				}
				b.SetBytes(benchObject)
				for b.Loop() {
					readAll(b, be, req.Key)
				}
			})
		}
	}
}

func readAll(b *testing.B, be pluginapi.Backend, key string) {
	_, rc, err := be.Get(b.Context(), pluginapi.GetRequest{Key: key})
	if err != nil {
		b.Fatal(err)
	}
	if n, err := io.Copy(io.Discard, rc); err != nil || n != benchObject {
		b.Fatalf("read %d bytes: %v", n, err)
	}
	_ = rc.Close()
}

// BenchmarkFiles measures PutFile/GetFile (and, for comparison, the
// streamed path) against the fs backend, called directly and as a plugin.
func BenchmarkFiles(b *testing.B) {
	verified := benchTarget{"direct+verify", func(b *testing.B, _ uint32) pluginapi.Backend { return verifyGetFile{newFS(b)} }}
	targets := []benchTarget{
		directTarget(newFS),
		verified,
		pluginTarget("plugin-plain", false, "aof2-plugin-fs", fsConfig),
		pluginTarget("plugin-automtls", true, "aof2-plugin-fs", fsConfig),
	}
	data := bytes.Repeat([]byte("fedcba9876543210"), benchObject/16)
	src := filepath.Join(b.TempDir(), "segment")
	if err := os.WriteFile(src, data, 0o600); err != nil {
		b.Fatal(err)
	}
	req := pluginapi.PutRequest{Key: "streams/1/segments/00000000000000000001.seg.zst", Size: benchObject, CRC64: pluginapi.CRC64(data)}
	for _, tg := range targets {
		b.Run(tg.name+"/PutFile", func(b *testing.B) {
			be := tg.open(b, 0)
			b.SetBytes(benchObject)
			for b.Loop() {
				if _, err := be.PutFile(b.Context(), req, src); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(tg.name+"/GetFile", func(b *testing.B) {
			be := tg.open(b, 0)
			if _, err := be.PutFile(b.Context(), req, src); err != nil {
				b.Fatal(err)
			}
			dst := filepath.Join(b.TempDir(), "hydrated")
			b.SetBytes(benchObject)
			for b.Loop() {
				if _, err := be.GetFile(context.Background(), pluginapi.GetRequest{Key: req.Key}, dst); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(tg.name+"/Put", func(b *testing.B) {
			be := tg.open(b, 0)
			b.SetBytes(benchObject)
			for b.Loop() {
				if _, err := be.Put(b.Context(), req, bytes.NewReader(data)); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(tg.name+"/Get", func(b *testing.B) {
			be := tg.open(b, 0)
			if _, err := be.Put(b.Context(), req, bytes.NewReader(data)); err != nil {
				b.Fatal(err)
			}
			b.SetBytes(benchObject)
			for b.Loop() {
				readAll(b, be, req.Key)
			}
		})
	}
}

// verifyGetFile adds to a direct GetFile the CRC check that the plugin
// client runs on every GetFile output, for a like-for-like comparison.
type verifyGetFile struct{ pluginapi.Backend }

func (v verifyGetFile) GetFile(ctx context.Context, req pluginapi.GetRequest, path string) (pluginapi.ObjectRange, error) {
	rng, err := v.Backend.GetFile(ctx, req, path)
	if err != nil {
		return rng, err
	}
	if crc, _, err := pluginapi.FileCRC64(path); err != nil || crc != rng.Info.CRC64 {
		return rng, fmt.Errorf("verification: %v", err)
	}
	return rng, nil
}
