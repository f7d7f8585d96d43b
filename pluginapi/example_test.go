package pluginapi_test

import (
	"github.com/aof2/aof2/conformance/fake"
	"github.com/aof2/aof2/pluginapi"
)

// A plugin's main is one call; the backend implements pluginapi.Backend.
func ExampleServe() {
	backend := fake.New(fake.Options{})
	pluginapi.Serve(backend, pluginapi.ServeOptions{})
}
