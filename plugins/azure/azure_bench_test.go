package azure_test

import (
	"context"
	"os"
	"testing"

	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob"

	"github.com/aof2/aof2/plugins/internal/cloudtest"
)

// BenchmarkFiles compares PutFile/GetFile through the plugin with the same
// transfer made by the SDK (UploadStream, 8 MiB blocks; DownloadStream)
// in-process.
func BenchmarkFiles(b *testing.B) {
	s := localServer(b)
	container := s.container(b)
	cloudtest.RunBench(b, cloudtest.PluginBinary(b, "./cmd/aof2-plugin-azure"), s.config(container), cloudtest.SDK{
		PutFile: func(ctx context.Context, key, src string) error {
			f, err := os.Open(src)
			if err != nil {
				return err
			}
			defer func() { _ = f.Close() }()
			_, err = s.client.UploadStream(ctx, container, key, f, &azblob.UploadStreamOptions{BlockSize: 8 << 20, Concurrency: 4})
			return err
		},
		GetFile: func(ctx context.Context, key, dst string) error {
			resp, err := s.client.DownloadStream(ctx, container, key, nil)
			if err != nil {
				return err
			}
			defer func() { _ = resp.Body.Close() }()
			return cloudtest.CopyToFile(dst, func(f *os.File) error { _, err := f.ReadFrom(resp.Body); return err })
		},
	})
}
