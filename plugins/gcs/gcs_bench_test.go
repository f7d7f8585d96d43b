package gcs_test

import (
	"context"
	"io"
	"os"
	"testing"

	"github.com/aof2/aof2/plugins/internal/cloudtest"
)

// BenchmarkFiles compares PutFile/GetFile through the plugin with the same
// transfer made by the SDK (resumable upload, 8 MiB chunks) in-process.
func BenchmarkFiles(b *testing.B) {
	s := localServer(b)
	bucket := s.client.Bucket(s.bucket(b))
	cloudtest.RunBench(b, cloudtest.PluginBinary(b, "./cmd/aof2-plugin-gcs"), s.config(bucket.BucketName(), s.endpoint), cloudtest.SDK{
		PutFile: func(ctx context.Context, key, src string) error {
			f, err := os.Open(src)
			if err != nil {
				return err
			}
			defer func() { _ = f.Close() }()
			w := bucket.Object(key).NewWriter(ctx)
			w.ChunkSize = 8 << 20
			if _, err := io.Copy(w, f); err != nil {
				_ = w.Close()
				return err
			}
			return w.Close()
		},
		GetFile: func(ctx context.Context, key, dst string) error {
			r, err := bucket.Object(key).NewReader(ctx)
			if err != nil {
				return err
			}
			defer func() { _ = r.Close() }()
			return cloudtest.CopyToFile(dst, func(f *os.File) error { _, err := io.Copy(f, r); return err })
		},
	})
}
