package azure_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"testing"

	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob"

	"github.com/aof2/aof2/conformance"
	"github.com/aof2/aof2/pluginapi"
	"github.com/aof2/aof2/plugins/azure"
	"github.com/aof2/aof2/plugins/internal/cloudtest"
)

func TestMain(m *testing.M) {
	code := m.Run()
	cloudtest.RemoveBinaries()
	os.Exit(code)
}

type server struct {
	conn   string
	client *azblob.Client
}

func localServer(t testing.TB) *server {
	env := cloudtest.Env(t, "AOF2_AZURE_CONNECTION_STRING")
	s := &server{conn: env["AOF2_AZURE_CONNECTION_STRING"]}
	c, err := azblob.NewClientFromConnectionString(s.conn, nil)
	if err != nil {
		t.Fatal(err)
	}
	s.client = c
	return s
}

// container creates a fresh container, deleted after the test.
func (s *server) container(t testing.TB) string {
	t.Helper()
	var b [5]byte
	_, _ = rand.Read(b[:])
	name := "aof2-test-" + hex.EncodeToString(b[:])
	if _, err := s.client.CreateContainer(context.Background(), name, nil); err != nil {
		t.Fatalf("creating container %s: %v", name, err)
	}
	t.Cleanup(func() { _, _ = s.client.DeleteContainer(context.Background(), name, nil) })
	return name
}

func (s *server) config(container string) map[string]string {
	return map[string]string{"container": container, "connection_string": s.conn}
}

// TestConformanceBinary certifies the plugin binary, launched through
// go-plugin as the host launches it, against Azurite.
func TestConformanceBinary(t *testing.T) {
	s := localServer(t)
	conformance.Run(t, &conformance.Binary{
		Path:       cloudtest.PluginBinary(t, "./cmd/aof2-plugin-azure"),
		Config:     cloudtest.ConformanceSettings(s.config(s.container(t))),
		StagingDir: t.TempDir(),
	}, conformance.Options{Large: conformance.LargeFromEnv()})
}

// TestConformanceInProcessPrefixed runs the suite in-process with a key
// prefix. (Block uploads of one blob by concurrent writers conflict on
// Azure — a commit discards the others' uncommitted blocks, reported as a
// retryable ErrUnavailable — so the default 8 MiB blocks keep the
// concurrency behaviour's objects single-request.)
func TestConformanceInProcessPrefixed(t *testing.T) {
	s := localServer(t)
	cfg := cloudtest.ConformanceSettings(s.config(s.container(t)))
	cfg["prefix"] = "tier2/"
	conformance.Run(t, &conformance.InProcess{
		New:    func() (pluginapi.Backend, error) { return azure.New(), nil },
		Config: cfg,
	}, conformance.Options{Quick: true})
}
