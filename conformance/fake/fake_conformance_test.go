package fake_test

import (
	"testing"

	"github.com/aof2/aof2/conformance"
	"github.com/aof2/aof2/conformance/fake"
	"github.com/aof2/aof2/pluginapi"
)

func TestConformanceInProcess(t *testing.T) {
	conformance.Run(t, &conformance.InProcess{
		New: func() (pluginapi.Backend, error) { return fake.New(fake.Options{}), nil },
	}, conformance.Options{Large: conformance.LargeFromEnv()})
}
