package s3_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"io"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"
)

// TestServerGaps pins, with the SDK alone (no plugin code), each local
// server's departure from S3 that excludes a conformance behaviour there
// (posixGaps, flatGaps). When a server stops showing a gap, this test
// fails and says which exclusion to drop.
func TestServerGaps(t *testing.T) {
	t.Run("versitygw", func(t *testing.T) {
		s := localServer(t)
		bucket := s.bucket(t)
		ctx := context.Background()
		put := func(key string) error { return putObject(ctx, s.client, bucket, key, nil) }
		// A 1024-byte key is valid S3; as a file name it is too long.
		if err := put("gap/" + strings.Repeat("k", 1020)); err == nil {
			t.Errorf("versitygw stored a key with a 1020-byte segment: InvalidKeys can leave posixGaps")
		}
		// S3 keys form no tree: "a" and "a/x" coexist.
		if err := put("gap/a"); err != nil {
			t.Fatalf("PutObject gap/a: %v", err)
		}
		if err := put("gap/a/x"); err == nil {
			t.Errorf("versitygw stored gap/a/x next to gap/a: ListPaging and ListPrefixIsolation can leave posixGaps")
		}
	})
	t.Run("gofakes3", func(t *testing.T) {
		s := flatServer(t)
		bucket := s.bucket(t)
		ctx := context.Background()
		// S3 allows 2 KiB of user metadata (names and values); gofakes3
		// refuses 1.9 KiB because it adds the request's other X-Amz-*
		// headers to the count.
		md := map[string]string{"m": strings.Repeat("v", 1900)}
		var api smithy.APIError
		if err := putObject(ctx, s.client, bucket, "gap/metadata", md); !errors.As(err, &api) || api.ErrorCode() != "MetadataTooLarge" {
			t.Errorf("PutObject with 1901 bytes of user metadata: %v, want gofakes3's MetadataTooLarge; if it is gone, Metadata can leave flatGaps", err)
		}
		if err := putObject(ctx, s.client, bucket, "gap/object", nil); err != nil {
			t.Fatalf("PutObject gap/object: %v", err)
		}
		// S3 answers a GET with a stale If-Match 412.
		out, err := s.client.GetObject(ctx, &awss3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String("gap/object"), IfMatch: aws.String(`"0123456789abcdef0123456789abcdef"`)})
		if err == nil {
			_ = out.Body.Close()
		} else {
			t.Errorf("GET with a stale If-Match: %v; gofakes3 used to ignore If-Match, IfMatch can leave flatGaps", err)
		}
		// S3 sends no whole-object checksum with a range, so the SDK's
		// response check passes; gofakes3 echoes the one the upload sent
		// in a header, as the transfer manager's uploads do.
		body := []byte("whole object")
		var sum [4]byte
		binary.BigEndian.PutUint32(sum[:], crc32.ChecksumIEEE(body))
		if _, err := s.client.PutObject(ctx, &awss3.PutObjectInput{
			Bucket: aws.String(bucket), Key: aws.String("gap/checksummed"), Body: bytes.NewReader(body),
			ChecksumCRC32: aws.String(base64.StdEncoding.EncodeToString(sum[:])),
		}); err != nil {
			t.Fatalf("PutObject gap/checksummed: %v", err)
		}
		out, err = s.client.GetObject(ctx, &awss3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String("gap/checksummed"), Range: aws.String("bytes=0-3"),
			ChecksumMode: types.ChecksumModeEnabled, // what the plugin's client asks for by default
		})
		if err == nil {
			_, err = io.ReadAll(out.Body)
			_ = out.Body.Close()
		}
		if err == nil || !strings.Contains(err.Error(), "checksum did not match") {
			t.Errorf("ranged GET: %v, want the SDK's checksum mismatch on gofakes3's whole-object checksum; if it is gone, PutFileGetFile can leave flatGaps", err)
		}
	})
}

// putObject writes a small object with the SDK's default checksum.
func putObject(ctx context.Context, c *awss3.Client, bucket, key string, md map[string]string) error {
	_, err := c.PutObject(ctx, &awss3.PutObjectInput{
		Bucket: aws.String(bucket), Key: aws.String(key), Metadata: md,
		Body: strings.NewReader("gap probe " + key),
	})
	return err
}
