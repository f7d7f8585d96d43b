package fake_test

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/aof2/aof2/conformance/fake"
	"github.com/aof2/aof2/pluginapi"
)

// The fake called in-process refuses what the gRPC server refuses for a
// plugin: host tests using it must not pass writes every backend rejects.
func TestInProcessPutValidatesLikeThePluginPath(t *testing.T) {
	limits := pluginapi.Limits{MaxObjectSize: 10, MaxMetadataBytes: 16}
	none := pluginapi.Capabilities{}
	cases := []struct {
		name string
		caps *pluginapi.Capabilities
		req  pluginapi.PutRequest
		want error
	}{
		{"malformed metadata key", nil, pluginapi.PutRequest{Key: "k", Metadata: map[string]string{"Bad Key/": "v"}}, pluginapi.ErrInvalidArgument},
		{"metadata over the advertised limit", nil, pluginapi.PutRequest{Key: "k", Metadata: map[string]string{"k": "0123456789abcdef"}}, pluginapi.ErrInvalidArgument},
		{"over the maximum object size", nil, pluginapi.PutRequest{Key: "k", Size: 11}, pluginapi.ErrInvalidArgument},
		{"both preconditions", nil, pluginapi.PutRequest{Key: "k", IfAbsent: true, IfMatch: "e"}, pluginapi.ErrInvalidArgument},
		{"invalid key", nil, pluginapi.PutRequest{Key: "a//b"}, pluginapi.ErrInvalidKey},
		{"unadvertised if_absent", &none, pluginapi.PutRequest{Key: "k", IfAbsent: true}, pluginapi.ErrUnimplemented},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := fake.New(fake.Options{Limits: &limits, Capabilities: c.caps})
			data := []byte("x")
			req := c.req
			if req.Size == 0 {
				req.Size = uint64(len(data))
			}
			req.CRC64 = pluginapi.CRC64(data)
			_, err := f.Put(t.Context(), req, bytes.NewReader(data))
			require.ErrorIs(t, err, c.want)
			require.Zero(t, f.Len(), "a refused Put stored something")
			path := filepath.Join(t.TempDir(), "body")
			require.NoError(t, os.WriteFile(path, data, 0o600))
			_, err = f.PutFile(t.Context(), req, path)
			if c.caps == nil {
				require.ErrorIs(t, err, c.want, "PutFile")
			}
			require.Zero(t, f.Len(), "a refused PutFile stored something")
		})
	}
}
