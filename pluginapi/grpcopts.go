package pluginapi

import (
	backendv1 "github.com/aof2/aof2/pluginapi/proto/aof2/backend/v1"
	"google.golang.org/grpc"
)

// Transport tuning shared by both ends. gRPC's defaults (4 MiB messages,
// 64 KiB stream windows with BDP probing) cap a local stream well below
// what a Unix socket carries and reject a full-size chunk with nothing but
// io.EOF at the sender; see docs/adr-plugin-transport.md.
const (
	maxMessageSize    = 16 << 20
	streamWindowSize  = 16 << 20
	connWindowSize    = 64 << 20
	transportBufBytes = 1 << 20
)

// ServerOptions are the gRPC server options Serve uses; use them when
// serving a Server on your own grpc.Server.
func ServerOptions() []grpc.ServerOption {
	return []grpc.ServerOption{
		grpc.MaxRecvMsgSize(maxMessageSize),
		grpc.MaxSendMsgSize(maxMessageSize),
		grpc.InitialWindowSize(streamWindowSize),
		grpc.InitialConnWindowSize(connWindowSize),
		grpc.ReadBufferSize(transportBufBytes),
		grpc.WriteBufferSize(transportBufBytes),
	}
}

// DialOptions are the matching client options the host dials with.
func DialOptions() []grpc.DialOption {
	return []grpc.DialOption{
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(maxMessageSize), grpc.MaxCallSendMsgSize(maxMessageSize)),
		grpc.WithInitialWindowSize(streamWindowSize),
		grpc.WithInitialConnWindowSize(connWindowSize),
		grpc.WithReadBufferSize(transportBufBytes),
		grpc.WithWriteBufferSize(transportBufBytes),
	}
}

// RegisterServer registers srv on a grpc.Server.
func RegisterServer(s grpc.ServiceRegistrar, srv *Server) {
	backendv1.RegisterBackendServer(s, srv)
}
