package host_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/aof2/aof2/conformance/fake"
	"github.com/aof2/aof2/pluginapi"
	"github.com/aof2/aof2/pluginapi/host"
)

// The host supervises a plugin and uses it as a Backend. The supervisor
// never retries a call; core/tier2, which the engine puts over it, owns
// retries, backoff and retry-after.
func ExampleNewSupervisor() {
	ctx := context.Background()
	sup, err := host.NewSupervisor(ctx, host.SupervisorConfig{
		Launch: host.LaunchConfig{
			Path:      "bin/aof2-plugin-fs",
			Configure: pluginapi.ConfigureRequest{Config: map[string]string{"root": "/var/lib/aof2/tier2"}},
		},
		Registerer: prometheus.NewRegistry(),
	})
	if err != nil {
		fmt.Println("plugin did not start:", err) // a *host.StartError for start-up problems
		return
	}
	defer func() { _ = sup.Close(ctx) }()
	data := []byte("segment bytes")
	req := pluginapi.PutRequest{Key: "streams/1/segments/00000000000000000001.seg.zst", Size: uint64(len(data)), CRC64: pluginapi.CRC64(data)}
	_, err = sup.Put(ctx, req, bytes.NewReader(data))
	switch {
	case errors.Is(err, host.ErrBreakerOpen):
		fmt.Println("the plugin keeps crashing; try again later:", err)
	case errors.Is(err, pluginapi.ErrPluginCrashed):
		fmt.Println("the plugin died during the call; it is being relaunched:", err)
	default:
		fmt.Println(err)
	}
}

// ServeInProcess gives a real gRPC round trip without a process.
func ExampleServeInProcess() {
	ip, err := host.ServeInProcess(fake.New(fake.Options{}), nil)
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
