package azure_test

import (
	"maps"
	"net/http"
	"strings"
	"testing"

	"github.com/aof2/aof2/pluginapi"
	"github.com/aof2/aof2/plugins/azure"
	"github.com/aof2/aof2/plugins/internal/cloudtest"
)

// wrongKey is a valid base64 key that is not the account's.
const wrongKey = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=="

func azureError(status int, code, msg string, header map[string]string) cloudtest.Action {
	h := map[string]string{"x-ms-error-code": code, "Content-Type": "application/xml"}
	maps.Copy(h, header)
	return cloudtest.Respond(status, h, `<?xml version="1.0" encoding="utf-8"?><Error><Code>`+code+`</Code><Message>`+msg+`</Message></Error>`)
}

func throttle(status int, after string) cloudtest.Action {
	return azureError(status, "ServerBusy", "The server is busy.", map[string]string{"Retry-After": after})
}

func rig(t *testing.T) *cloudtest.Rig {
	s := localServer(t)
	container := s.container(t)
	// Azurite's connection string names the blob endpoint; the proxy
	// takes its place.
	endpoint := field(s.conn, "BlobEndpoint")
	return &cloudtest.Rig{
		Endpoint: strings.TrimSuffix(endpoint, "/devstoreaccount1"),
		Config: func(ep string) map[string]string {
			return map[string]string{"container": container, "connection_string": strings.Replace(s.conn, endpoint, ep+"/devstoreaccount1", 1)}
		},
		New:      func() pluginapi.Backend { return azure.New() },
		Throttle: throttle,
		Download: cloudtest.All(cloudtest.Method(http.MethodGet), cloudtest.Path("/"+container+"/")),
		Parts:    map[string]string{"block_size": "8MiB"},
	}
}

func field(conn, name string) string {
	for _, kv := range strings.Split(conn, ";") {
		if v, ok := strings.CutPrefix(kv, name+"="); ok {
			return v
		}
	}
	return ""
}

// TestFaults puts an HTTP fault proxy between the plugin and Azurite.
func TestFaults(t *testing.T) {
	r := rig(t)
	conn := r.Config(r.Endpoint)["connection_string"]
	r.BadCredentials = map[string]string{"connection_string": strings.Replace(conn, field(conn, "AccountKey"), wrongKey, 1)}
	cloudtest.RunFaults(t, r)
}

// TestBlocks exercises 64 MiB objects in 8 MiB blocks.
func TestBlocks(t *testing.T) { cloudtest.RunLarge(t, rig(t)) }

// TestOneRequestPerCall: the SDK sends each request once; tier 2 retries.
func TestOneRequestPerCall(t *testing.T) {
	cloudtest.RunOneRequestPerCall(t, cloudtest.Failing{
		New: func() pluginapi.Backend { return azure.New() },
		Config: func(endpoint string) map[string]string {
			return map[string]string{"container": "c", "account": "devstoreaccount1", "endpoint": endpoint + "/devstoreaccount1", "account_key": wrongKey}
		},
		ServerError: azureError(http.StatusInternalServerError, "InternalError", "The server encountered an internal error.", nil),
		Throttle:    throttle,
	})
}
