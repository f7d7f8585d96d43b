package pluginapi_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/aof2/aof2/conformance/fake"
	"github.com/aof2/aof2/pluginapi"
)

// A plugin's main is one call; the backend implements pluginapi.Backend.
func ExampleServe() {
	backend := fake.New(fake.Options{})
	pluginapi.Serve(backend, pluginapi.ServeOptions{Name: "aof2-plugin-fake"})
}

// The host supervises a plugin and uses it as a Backend, retrying what the
// contract says is retryable.
func ExampleNewSupervisor() {
	ctx := context.Background()
	sup, err := pluginapi.NewSupervisor(ctx, pluginapi.SupervisorConfig{
		Launch: pluginapi.LaunchConfig{
			Path:      "bin/aof2-plugin-fs",
			Configure: pluginapi.ConfigureRequest{Config: map[string]string{"root": "/var/lib/aof2/tier2"}},
		},
		Registerer: prometheus.NewRegistry(),
	})
	if err != nil {
		fmt.Println("plugin did not start:", err) // a *pluginapi.StartError for start-up problems
		return
	}
	defer func() { _ = sup.Close(ctx) }()
	data := []byte("segment bytes")
	req := pluginapi.PutRequest{Key: "streams/1/segments/00000000000000000001.seg.zst", Size: uint64(len(data)), CRC64: pluginapi.CRC64(data)}
	for {
		_, err = sup.Put(ctx, req, bytes.NewReader(data))
		if !pluginapi.Retryable(err) {
			break
		}
		wait, ok := pluginapi.RetryAfter(err)
		if !ok {
			wait = 100 * time.Millisecond
		}
		time.Sleep(wait)
	}
	fmt.Println(err)
}

// ServeInProcess gives a real gRPC round trip without a process.
func ExampleServeInProcess() {
	ip, err := pluginapi.ServeInProcess(fake.New(fake.Options{}), nil)
	if err != nil {
		panic(err)
	}
	defer func() { _ = ip.Close() }()
	ctx := context.Background()
	if _, _, err := ip.Setup(ctx, pluginapi.ConfigureRequest{}); err != nil {
		panic(err)
	}
	data := []byte("hello")
	_, _ = ip.Put(ctx, pluginapi.PutRequest{Key: "greeting", Size: 5, CRC64: pluginapi.CRC64(data)}, bytes.NewReader(data))
	_, rc, _ := ip.Get(ctx, pluginapi.GetRequest{Key: "greeting", Offset: 1, Length: 3})
	got, _ := io.ReadAll(rc)
	_ = rc.Close()
	_, err = ip.Head(ctx, "missing")
	fmt.Println(string(got), err)
	// Output: ell object not found (key "missing")
}
