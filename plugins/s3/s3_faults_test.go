package s3_test

import (
	"context"
	"fmt"
	"maps"
	"net/http"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/aof2/aof2/pluginapi"
	"github.com/aof2/aof2/plugins/internal/cloudtest"
	"github.com/aof2/aof2/plugins/s3"
)

func s3Error(status int, code, msg string, header map[string]string) cloudtest.Action {
	h := map[string]string{"Content-Type": "application/xml"}
	maps.Copy(h, header)
	return cloudtest.Respond(status, h, fmt.Sprintf(`<?xml version="1.0" encoding="UTF-8"?><Error><Code>%s</Code><Message>%s</Message></Error>`, code, msg))
}

func throttle(status int, after string) cloudtest.Action {
	code := "SlowDown"
	if status == http.StatusTooManyRequests {
		code = "TooManyRequests"
	}
	return s3Error(status, code, "Please reduce your request rate.", map[string]string{"Retry-After": after})
}

func rig(t *testing.T) *cloudtest.Rig {
	s := localServer(t)
	bucket := s.bucket(t)
	return &cloudtest.Rig{
		Endpoint:       s.endpoint,
		Config:         func(endpoint string) map[string]string { return s.config(bucket, endpoint) },
		New:            func() pluginapi.Backend { return s3.New() },
		Throttle:       throttle,
		BadCredentials: map[string]string{"secret_access_key": "not-the-secret"},
		Download:       cloudtest.All(cloudtest.Method(http.MethodGet), cloudtest.Path("/"+bucket+"/")),
		Parts:          map[string]string{"part_size": "8MiB", "multipart_threshold": "8MiB"},
		Leftovers: func(t *testing.T) {
			out, err := s.client.ListMultipartUploads(context.Background(), &awss3.ListMultipartUploadsInput{Bucket: aws.String(bucket)})
			if err != nil {
				t.Fatalf("ListMultipartUploads: %v", err)
			}
			if n := len(out.Uploads); n != 0 {
				t.Fatalf("%d multipart uploads were left behind (not aborted)", n)
			}
		},
	}
}

// TestFaults puts an HTTP fault proxy between the plugin and versitygw.
func TestFaults(t *testing.T) { cloudtest.RunFaults(t, rig(t)) }

// TestMultipart exercises 64 MiB objects in 8 MiB parts.
func TestMultipart(t *testing.T) { cloudtest.RunLarge(t, rig(t)) }

// TestOneRequestPerCall: the SDK sends each request once; tier 2 retries.
func TestOneRequestPerCall(t *testing.T) {
	cloudtest.RunOneRequestPerCall(t, cloudtest.Failing{
		New: func() pluginapi.Backend { return s3.New() },
		Config: func(endpoint string) map[string]string {
			return map[string]string{"bucket": "b", "endpoint": endpoint, "path_style": "true", "access_key_id": "id", "secret_access_key": "made-up"}
		},
		ServerError: s3Error(http.StatusInternalServerError, "InternalError", "We encountered an internal error.", nil),
		Throttle:    throttle,
	})
}
