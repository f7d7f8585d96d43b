package pluginapi_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/aof2/aof2/pluginapi"
)

func TestValidatePutRequest(t *testing.T) {
	all := pluginapi.Capabilities{IfAbsent: true, IfMatch: true}
	info := pluginapi.Info{Capabilities: all, Limits: pluginapi.Limits{MaxObjectSize: 100, MaxMetadataBytes: 8}}
	cases := []struct {
		name string
		info pluginapi.Info
		req  pluginapi.PutRequest
		want error
	}{
		{"valid", info, pluginapi.PutRequest{Key: "a/b", Size: 100, Metadata: map[string]string{"k": "v"}, IfAbsent: true}, nil},
		{"invalid key", info, pluginapi.PutRequest{Key: "a/../b"}, pluginapi.ErrInvalidKey},
		{"malformed metadata", info, pluginapi.PutRequest{Key: "k", Metadata: map[string]string{"Bad Key/": "v"}}, pluginapi.ErrInvalidArgument},
		{"metadata over the limit", info, pluginapi.PutRequest{Key: "k", Metadata: map[string]string{"k": "12345678"}}, pluginapi.ErrInvalidArgument},
		{"default metadata limit", pluginapi.Info{}, pluginapi.PutRequest{Key: "k", Metadata: map[string]string{"k": "12345678"}}, nil},
		{"too large", info, pluginapi.PutRequest{Key: "k", Size: 101}, pluginapi.ErrInvalidArgument},
		{"both preconditions", info, pluginapi.PutRequest{Key: "k", IfAbsent: true, IfMatch: "e"}, pluginapi.ErrInvalidArgument},
		{"if_absent unadvertised", pluginapi.Info{}, pluginapi.PutRequest{Key: "k", IfAbsent: true}, pluginapi.ErrUnimplemented},
		{"if_match unadvertised", pluginapi.Info{}, pluginapi.PutRequest{Key: "k", IfMatch: "e"}, pluginapi.ErrUnimplemented},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := pluginapi.ValidatePutRequest(c.req, c.info)
			if c.want == nil {
				require.NoError(t, err)
				return
			}
			require.ErrorIs(t, err, c.want)
		})
	}
}
