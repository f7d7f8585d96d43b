package gcs_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"os"
	"testing"

	"cloud.google.com/go/storage"
	"google.golang.org/api/iterator"
	"google.golang.org/api/option"

	"github.com/aof2/aof2/conformance"
	"github.com/aof2/aof2/pluginapi"
	"github.com/aof2/aof2/plugins/gcs"
	"github.com/aof2/aof2/plugins/internal/cloudtest"
)

func TestMain(m *testing.M) {
	code := m.Run()
	cloudtest.RemoveBinaries()
	os.Exit(code)
}

type server struct {
	endpoint string
	client   *storage.Client
}

func localServer(t testing.TB) *server {
	env := cloudtest.Env(t, "AOF2_GCS_ENDPOINT")
	s := &server{endpoint: env["AOF2_GCS_ENDPOINT"]}
	c, err := sdkClient(context.Background(), s.endpoint)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	s.client = c
	return s
}

func sdkClient(ctx context.Context, endpoint string) (*storage.Client, error) {
	return storage.NewClient(ctx, option.WithEndpoint(endpoint+"/storage/v1/"), option.WithoutAuthentication())
}

// bucket creates a fresh bucket, emptied and deleted after the test.
func (s *server) bucket(t testing.TB) string {
	t.Helper()
	var b [5]byte
	_, _ = rand.Read(b[:])
	name := "aof2-test-" + hex.EncodeToString(b[:])
	ctx := context.Background()
	if err := s.client.Bucket(name).Create(ctx, "aof2-test", nil); err != nil {
		t.Fatalf("creating bucket %s: %v", name, err)
	}
	t.Cleanup(func() {
		it := s.client.Bucket(name).Objects(ctx, nil)
		for {
			a, err := it.Next()
			if errors.Is(err, iterator.Done) || err != nil {
				break
			}
			_ = s.client.Bucket(name).Object(a.Name).Delete(ctx)
		}
		_ = s.client.Bucket(name).Delete(ctx)
	})
	return name
}

func (s *server) config(bucket, endpoint string) map[string]string {
	return map[string]string{"bucket": bucket, "endpoint": endpoint, "no_auth": "true"}
}

// TestConformanceBinary certifies the plugin binary, launched through
// go-plugin as the host launches it, against fake-gcs-server.
func TestConformanceBinary(t *testing.T) {
	s := localServer(t)
	conformance.Run(t, &conformance.Binary{
		Path:       cloudtest.PluginBinary(t, "./cmd/aof2-plugin-gcs"),
		Config:     cloudtest.ConformanceSettings(s.config(s.bucket(t), s.endpoint)),
		StagingDir: t.TempDir(),
	}, conformance.Options{Large: conformance.LargeFromEnv()})
}

// TestConformanceInProcessPrefixed runs the suite in-process with a key
// prefix and the smallest resumable chunk.
func TestConformanceInProcessPrefixed(t *testing.T) {
	s := localServer(t)
	cfg := cloudtest.ConformanceSettings(s.config(s.bucket(t), s.endpoint))
	cfg["prefix"] = "tier2"
	cfg["chunk_size"] = "256KiB"
	conformance.Run(t, &conformance.InProcess{
		New:    func() (pluginapi.Backend, error) { return gcs.New(), nil },
		Config: cfg,
	}, conformance.Options{Quick: true})
}
