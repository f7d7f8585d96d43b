package s3_test

import (
	"context"
	"io"
	"os"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/s3/transfermanager"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/aof2/aof2/plugins/internal/cloudtest"
)

// BenchmarkFiles compares PutFile/GetFile through the plugin with the same
// transfer made by the SDK (transfer manager, 8 MiB parts) in-process.
func BenchmarkFiles(b *testing.B) {
	s := localServer(b)
	bucket := s.bucket(b)
	tm := transfermanager.New(s.client, func(o *transfermanager.Options) {
		o.PartSizeBytes, o.MultipartUploadThreshold, o.Concurrency = 8<<20, 8<<20, 4
	})
	cloudtest.RunBench(b, cloudtest.PluginBinary(b, "./cmd/aof2-plugin-s3"), s.config(bucket, s.endpoint), cloudtest.SDK{
		PutFile: func(ctx context.Context, key, src string) error {
			f, err := os.Open(src)
			if err != nil {
				return err
			}
			defer func() { _ = f.Close() }()
			_, err = tm.UploadObject(ctx, &transfermanager.UploadObjectInput{Bucket: aws.String(bucket), Key: aws.String(key), Body: f})
			return err
		},
		GetFile: func(ctx context.Context, key, dst string) error {
			out, err := s.client.GetObject(ctx, &awss3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
			if err != nil {
				return err
			}
			defer func() { _ = out.Body.Close() }()
			return cloudtest.CopyToFile(dst, func(f *os.File) error { _, err := io.Copy(f, out.Body); return err })
		},
	})
}
