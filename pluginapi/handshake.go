package pluginapi

import (
	"context"

	"github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"
)

// PluginName is the name the backend is dispensed under.
const PluginName = "backend"

// Handshake is the go-plugin handshake every AOF2 backend plugin and host
// share. The cookie is a UX guard (it stops a plugin binary from being run
// by hand or by another host), not security, and it never changes.
var Handshake = plugin.HandshakeConfig{
	MagicCookieKey:   "AOF2_BACKEND_PLUGIN",
	MagicCookieValue: "d1f4c0a7-6b3e-4f52-9a8e-2c7b5e19f3a6-aof2-tier2",
}

// GRPCPlugin is the go-plugin glue for the backend contract: the plugin
// side registers a Server for Impl, the host side gets a *Client.
type GRPCPlugin struct {
	plugin.NetRPCUnsupportedPlugin
	// Impl is the backend served (plugin side only).
	Impl Backend
	// Adapter, when set, is served instead of NewServer(Impl, nil).
	Adapter *Server
}

var _ plugin.GRPCPlugin = (*GRPCPlugin)(nil)

func (p *GRPCPlugin) GRPCServer(_ *plugin.GRPCBroker, s *grpc.Server) error {
	srv := p.Adapter
	if srv == nil {
		srv = NewServer(p.Impl, nil)
	}
	RegisterServer(s, srv)
	return nil
}

func (p *GRPCPlugin) GRPCClient(_ context.Context, _ *plugin.GRPCBroker, conn *grpc.ClientConn) (any, error) {
	return NewClient(conn), nil
}

// pluginSets is VersionedPlugins for a plugin serving b: only major 1.
func pluginSets(srv *Server) map[int]plugin.PluginSet {
	return map[int]plugin.PluginSet{ContractMajor: {PluginName: &GRPCPlugin{Adapter: srv}}}
}
