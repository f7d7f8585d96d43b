package pluginapi

import (
	"bytes"
	"context"
	"io"
	"net"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	pb "github.com/aof2/aof2/pluginapi/proto/aof2/backend/v1"
)

// liar is a plugin that breaks the wire contract in one chosen way, to
// prove the host-side Client notices.
type liar struct {
	pb.UnimplementedBackendServer
	mode string
	data []byte
}

func (l *liar) info() *pb.ObjectInfo {
	crc := CRC64(l.data)
	if l.mode == "header-crc" {
		crc ^= 1
	}
	return &pb.ObjectInfo{Key: "k", Size: uint64(len(l.data)), Etag: "e", Crc64Nvme: &crc}
}

func (l *liar) Get(r *pb.GetRequest, s pb.Backend_GetServer) error {
	if l.mode == "no-header" {
		return s.Send(&pb.GetResponse{Msg: &pb.GetResponse_Chunk{Chunk: &pb.Chunk{Data: l.data}}})
	}
	hdr := &pb.GetHeader{Info: l.info(), Offset: r.GetOffset(), Length: uint64(len(l.data)) - r.GetOffset()}
	if l.mode == "wrong-range" {
		hdr.Offset++
	}
	if err := s.Send(&pb.GetResponse{Msg: &pb.GetResponse_Header{Header: hdr}}); err != nil {
		return err
	}
	data := l.data[r.GetOffset():]
	off := r.GetOffset()
	switch l.mode {
	case "truncate":
		data = data[:len(data)-1]
	case "extra":
		data = append(bytes.Clone(data), 'x')
	case "wrong-bytes":
		data = bytes.Clone(data)
		data[3] ^= 1
	case "bad-offset":
		off++
	}
	return s.Send(&pb.GetResponse{Msg: &pb.GetResponse_Chunk{Chunk: &pb.Chunk{Offset: off, Data: data}}})
}

func (l *liar) Put(s pb.Backend_PutServer) error {
	for {
		if _, err := s.Recv(); err == io.EOF {
			break
		} else if err != nil {
			return err
		}
	}
	info := l.info()
	switch l.mode {
	case "ack-crc":
		*info.Crc64Nvme ^= 1
	case "ack-size":
		info.Size++
	}
	return s.SendAndClose(&pb.PutResponse{Info: info})
}

func (l *liar) GetFile(_ context.Context, r *pb.GetFileRequest) (*pb.GetFileResponse, error) {
	data := bytes.Clone(l.data)
	if l.mode == "wrong-bytes" {
		data[0] ^= 1
	}
	if err := os.WriteFile(r.GetPath(), data, 0o600); err != nil {
		return nil, err
	}
	return &pb.GetFileResponse{Header: &pb.GetHeader{Info: l.info(), Length: uint64(len(data))}}, nil
}

// serveRaw serves srv on a Unix socket with the given server options and
// returns a connected Client.
func serveRaw(t *testing.T, srv pb.BackendServer, opts ...grpc.ServerOption) *Client {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "s")
	lis, err := net.Listen("unix", sock)
	require.NoError(t, err)
	g := grpc.NewServer(opts...)
	pb.RegisterBackendServer(g, srv)
	go func() { _ = g.Serve(lis) }()
	t.Cleanup(g.Stop)
	conn, err := grpc.NewClient("unix://"+sock, append([]grpc.DialOption{grpc.WithTransportCredentials(insecure.NewCredentials())}, DialOptions()...)...)
	require.NoError(t, err)
	t.Cleanup(func() { _ = conn.Close() })
	return NewClient(conn)
}

func TestClientRejectsBadGetStreams(t *testing.T) {
	data := []byte("the bytes that were stored")
	cases := map[string]error{
		"truncate":    ErrChecksum,
		"extra":       ErrChecksum,
		"wrong-bytes": ErrChecksum,
		"header-crc":  ErrChecksum,
		"bad-offset":  ErrChecksum,
		"wrong-range": ErrContractViolation,
		"no-header":   ErrContractViolation,
	}
	for mode, want := range cases {
		t.Run(mode, func(t *testing.T) {
			c := serveRaw(t, &liar{mode: mode, data: data})
			_, rc, err := c.Get(t.Context(), GetRequest{Key: "k"})
			if err == nil {
				_, err = io.ReadAll(rc)
				_ = rc.Close()
			}
			require.ErrorIs(t, err, want)
		})
	}
	// Ranges are checked for length and offsets (the CRC covers whole objects).
	c := serveRaw(t, &liar{mode: "truncate", data: data})
	_, rc, err := c.Get(t.Context(), GetRequest{Key: "k", Offset: 4})
	require.NoError(t, err)
	_, err = io.ReadAll(rc)
	require.ErrorIs(t, err, ErrChecksum)
}

func TestClientRejectsBadPutAcks(t *testing.T) {
	data := []byte("the bytes that were stored")
	for _, mode := range []string{"ack-crc", "ack-size"} {
		c := serveRaw(t, &liar{mode: mode, data: data})
		_, err := c.Put(t.Context(), PutRequest{Key: "k", Size: uint64(len(data)), CRC64: CRC64(data)}, bytes.NewReader(data))
		require.ErrorIs(t, err, ErrChecksum, mode)
	}
}

func TestClientVerifiesGetFile(t *testing.T) {
	data := []byte("the bytes that were stored")
	out := filepath.Join(t.TempDir(), "out")
	_, err := serveRaw(t, &liar{mode: "wrong-bytes", data: data}).GetFile(t.Context(), GetRequest{Key: "k"}, out)
	require.ErrorIs(t, err, ErrChecksum)
	_, err = serveRaw(t, &liar{data: data}).GetFile(t.Context(), GetRequest{Key: "k"}, out)
	require.NoError(t, err)
}

// A plugin that serves the contract without pluginapi.Serve (gRPC's
// default 4 MiB limits) still accepts the largest chunk a host may send.
func TestMaxChunkFitsDefaultGRPCLimits(t *testing.T) {
	c := serveRaw(t, NewServer(memBackend(), nil)) // default server options
	res, err := c.Configure(t.Context(), ConfigureRequest{ChunkSize: MaxChunkSize})
	require.NoError(t, err)
	require.Equal(t, MaxChunkSize, res.ChunkSize)
	data := bytes.Repeat([]byte{0xa5}, int(2*MaxChunkSize)+1)
	_, err = c.Put(t.Context(), PutRequest{Key: "big", Size: uint64(len(data)), CRC64: CRC64(data)}, bytes.NewReader(data))
	require.NoError(t, err)
	_, rc, err := c.Get(t.Context(), GetRequest{Key: "big"})
	require.NoError(t, err)
	got, err := io.ReadAll(rc)
	require.NoError(t, err)
	require.Equal(t, data, got)
}

// ...whereas a full 4 MiB message does not fit gRPC's defaults, which is
// why Serve raises them: the sender sees only a failed stream.
func TestServeOptionsCarryA4MiBMessage(t *testing.T) {
	big := &pb.GetResponse{Msg: &pb.GetResponse_Chunk{Chunk: &pb.Chunk{Data: make([]byte, 4<<20)}}}
	for _, tuned := range []bool{false, true} {
		var opts []grpc.ServerOption
		if tuned {
			opts = ServerOptions()
		}
		c := serveRaw(t, &echo{msg: big}, opts...)
		stream, err := c.Raw().Put(t.Context())
		require.NoError(t, err)
		sendErr := stream.Send(&pb.PutRequest{Msg: &pb.PutRequest_Chunk{Chunk: big.GetChunk()}})
		_, err = stream.CloseAndRecv()
		if tuned {
			require.NoError(t, sendErr)
			require.NoError(t, err)
		} else {
			require.Error(t, err, "gRPC's default server accepted a 4 MiB message")
		}
	}
}

type echo struct {
	pb.UnimplementedBackendServer
	msg *pb.GetResponse
}

func (e *echo) Put(s pb.Backend_PutServer) error {
	for {
		if _, err := s.Recv(); err == io.EOF {
			return s.SendAndClose(&pb.PutResponse{})
		} else if err != nil {
			return err
		}
	}
}
