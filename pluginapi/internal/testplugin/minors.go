package main

import (
	"context"

	"github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/aof2/aof2/conformance/fake"
	"github.com/aof2/aof2/pluginapi"
	pb "github.com/aof2/aof2/pluginapi/proto/aof2/backend/v1"
)

// The contract-minor fixtures (docs/plugin-contract.md#versioning). The
// contract has one minor so far, so neither is built from another
// revision of the proto; each shows the host what a plugin of another
// minor looks like on the wire.

// olderMinorBackend is a plugin of an older minor than the host's: it
// reports minor 0 and advertises none of the capabilities a newer minor
// would have added, only the three a writer host needs (if_absent and
// if_match for the prefix claim, list to create streams). The host falls
// back for the rest: streamed Put and Get instead of files, no ranges.
type olderMinorBackend struct{ *fake.Backend }

func (b olderMinorBackend) Info(ctx context.Context) (pluginapi.Info, error) {
	info, err := b.Backend.Info(ctx)
	info.ContractMinor = 0
	info.Capabilities = pluginapi.Capabilities{IfAbsent: true, IfMatch: true, List: true}
	return info, err
}

// newerMinorServer is a plugin of a newer minor than the host's: it
// reports ContractMinor+1 and sends response fields, and a capability
// flag, that the host's proto does not have (field numbers no minor of v1
// uses). A newer plugin built on pluginapi could not claim a minor its
// adapter does not serve (Server reports the lower one); this one bypasses
// that to show that the host accepts it and ignores what it does not know.
type newerMinorServer struct{ *pluginapi.Server }

// withUnknownField adds to m a field a later minor might add: number
// 9999, varint 1.
func withUnknownField(m proto.Message) {
	r := m.ProtoReflect()
	b := protowire.AppendTag(r.GetUnknown(), 9999, protowire.VarintType)
	r.SetUnknown(protowire.AppendVarint(b, 1))
}

func (s newerMinorServer) GetInfo(ctx context.Context, req *pb.GetInfoRequest) (*pb.GetInfoResponse, error) {
	resp, err := s.Server.GetInfo(ctx, req)
	if err != nil {
		return nil, err
	}
	resp.ContractMinor = pluginapi.ContractMinor + 1
	withUnknownField(resp)
	withUnknownField(resp.GetCapabilities())
	withUnknownField(resp.GetLimits())
	return resp, nil
}

func (s newerMinorServer) Head(ctx context.Context, req *pb.HeadRequest) (*pb.HeadResponse, error) {
	resp, err := s.Server.Head(ctx, req)
	if err != nil {
		return nil, err
	}
	withUnknownField(resp)
	withUnknownField(resp.GetInfo())
	return resp, nil
}

func (s newerMinorServer) Get(req *pb.GetRequest, stream pb.Backend_GetServer) error {
	return s.Server.Get(req, unknownFieldsGetStream{stream})
}

// unknownFieldsGetStream adds an unknown field to every Get message.
type unknownFieldsGetStream struct{ pb.Backend_GetServer }

func (s unknownFieldsGetStream) Send(m *pb.GetResponse) error {
	withUnknownField(m)
	return s.Backend_GetServer.Send(m)
}

type newerMinorPlugin struct {
	plugin.NetRPCUnsupportedPlugin
	srv newerMinorServer
}

func (p *newerMinorPlugin) GRPCServer(_ *plugin.GRPCBroker, s *grpc.Server) error {
	pb.RegisterBackendServer(s, p.srv)
	return nil
}

func (p *newerMinorPlugin) GRPCClient(context.Context, *plugin.GRPCBroker, *grpc.ClientConn) (any, error) {
	return nil, nil // plugin side only
}

func serveNewerMinor(b *fake.Backend) {
	srv := newerMinorServer{pluginapi.NewServer(b, nil)}
	plugin.Serve(&plugin.ServeConfig{
		HandshakeConfig:  pluginapi.Handshake,
		VersionedPlugins: map[int]plugin.PluginSet{pluginapi.ContractMajor: {pluginapi.PluginName: &newerMinorPlugin{srv: srv}}},
		GRPCServer: func(o []grpc.ServerOption) *grpc.Server {
			return grpc.NewServer(append(o, pluginapi.ServerOptions()...)...)
		},
	})
}
