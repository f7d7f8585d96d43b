package pluginapi

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"sync/atomic"

	"google.golang.org/grpc"

	pb "github.com/aof2/aof2/pluginapi/proto/aof2/backend/v1"
)

// Client is the calling side of the contract: a Backend whose methods are
// RPCs to a plugin. The host (pluginapi/host) and the conformance suite
// both use it. On top of the wire protocol it verifies what comes back: a
// Put's acknowledged size and checksum, every chunk's offset, the length
// of every range, the CRC-64/NVME of every full-object Get and GetFile. It
// never retries, and no gRPC retry policy is configured (gRPC itself only
// replays, transparently, an RPC that never reached the plugin);
// core/tier2 owns retries.
type Client struct {
	rpc       pb.BackendClient
	chunkSize *atomic.Uint32
	// sendChunk, when set, sends Put chunks of this size instead of the
	// negotiated one (tests exercise arbitrary chunk boundaries with it).
	sendChunk uint32

	infoMu sync.Mutex
	info   *Info
}

var _ Backend = (*Client)(nil)

// NewClient returns a Backend speaking aof2.backend.v1 over conn.
func NewClient(conn grpc.ClientConnInterface) *Client {
	c := &Client{rpc: pb.NewBackendClient(conn), chunkSize: new(atomic.Uint32)}
	c.chunkSize.Store(DefaultChunkSize)
	return c
}

// ChunkSize is the negotiated chunk size (DefaultChunkSize before Configure).
func (c *Client) ChunkSize() uint32 { return c.chunkSize.Load() }

// WithSendChunkSize returns a view of c that sends Put chunks of n bytes
// (1 <= n <= the negotiated size); any chunking is legal on the wire.
func (c *Client) WithSendChunkSize(n uint32) *Client {
	return &Client{rpc: c.rpc, chunkSize: c.chunkSize, sendChunk: n, info: c.cachedInfo()}
}

func (c *Client) cachedInfo() *Info {
	c.infoMu.Lock()
	defer c.infoMu.Unlock()
	return c.info
}

func (c *Client) Info(ctx context.Context) (Info, error) {
	r, err := c.rpc.GetInfo(ctx, &pb.GetInfoRequest{})
	if err != nil {
		return Info{}, errorFromRPC(ctx, err)
	}
	info := infoFromProto(r)
	c.infoMu.Lock()
	c.info = &info
	c.infoMu.Unlock()
	return info, nil
}

func (c *Client) Configure(ctx context.Context, req ConfigureRequest) (ConfigureResult, error) {
	r, err := c.rpc.Configure(ctx, &pb.ConfigureRequest{Config: req.Config, ProposedChunkSize: req.ChunkSize, StagingDir: req.StagingDir})
	if err != nil {
		return ConfigureResult{}, errorFromRPC(ctx, err)
	}
	if !validChunkSize(r.GetChunkSize()) {
		return ConfigureResult{}, fmt.Errorf("%w: plugin chose chunk size %d outside [%d, %d]", ErrContractViolation, r.GetChunkSize(), MinChunkSize, MaxChunkSize)
	}
	c.chunkSize.Store(r.GetChunkSize())
	return ConfigureResult{ChunkSize: r.GetChunkSize()}, nil
}

func (c *Client) Probe(ctx context.Context, req ProbeRequest) error {
	_, err := c.rpc.Probe(ctx, &pb.ProbeRequest{WriteKey: req.WriteKey})
	return errorFromRPC(ctx, err)
}

func (c *Client) Put(ctx context.Context, req PutRequest, body io.Reader) (ObjectInfo, error) {
	if err := ValidateKey(req.Key); err != nil {
		return ObjectInfo{}, err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stream, err := c.rpc.Put(ctx)
	if err != nil {
		return ObjectInfo{}, errorFromRPC(ctx, err)
	}
	if err := stream.Send(&pb.PutRequest{Msg: &pb.PutRequest_Header{Header: putHeaderToProto(req)}}); err != nil {
		return ObjectInfo{}, c.putStreamError(ctx, stream, err)
	}
	bufp := chunkPool.Get().(*[]byte)
	defer chunkPool.Put(bufp)
	n := c.chunkSize.Load()
	if c.sendChunk != 0 && c.sendChunk < n {
		n = c.sendChunk
	}
	buf := (*bufp)[:n]
	var off uint64
	for {
		m, rerr := io.ReadFull(body, buf)
		if m > 0 {
			chunk := &pb.Chunk{Offset: off, Data: buf[:m]}
			if err := stream.Send(&pb.PutRequest{Msg: &pb.PutRequest_Chunk{Chunk: chunk}}); err != nil {
				return ObjectInfo{}, c.putStreamError(ctx, stream, err)
			}
			off += uint64(m)
		}
		if rerr == io.EOF || rerr == io.ErrUnexpectedEOF {
			break
		}
		if rerr != nil {
			cancel() // the plugin sees the cancellation and stores nothing
			return ObjectInfo{}, fmt.Errorf("reading the body of %q: %w", req.Key, rerr)
		}
	}
	resp, err := stream.CloseAndRecv()
	if err != nil {
		return ObjectInfo{}, errorFromRPC(ctx, err)
	}
	return checkPutAck(req, resp.GetInfo())
}

// putStreamError gets the real status after a failed Send: gRPC reports
// io.EOF from Send when the server has already ended the call.
func (c *Client) putStreamError(ctx context.Context, stream pb.Backend_PutClient, err error) error {
	if errors.Is(err, io.EOF) {
		_, err = stream.CloseAndRecv()
		if err == nil {
			return fmt.Errorf("%w: plugin acknowledged a Put before it received the body", ErrContractViolation)
		}
	}
	return errorFromRPC(ctx, err)
}

// checkPutAck verifies that the plugin acknowledged what was sent.
func checkPutAck(req PutRequest, p *pb.ObjectInfo) (ObjectInfo, error) {
	if p == nil {
		return ObjectInfo{}, fmt.Errorf("%w: Put acknowledged without ObjectInfo", ErrContractViolation)
	}
	info := objectFromProto(p)
	if info.Key != req.Key || info.Size != req.Size {
		return info, &Error{Code: CodeChecksum, Key: req.Key, Message: fmt.Sprintf("plugin acknowledged key %q size %d, sent size %d", info.Key, info.Size, req.Size)}
	}
	if info.HasCRC64 && info.CRC64 != req.CRC64 {
		return info, &Error{Code: CodeChecksum, Key: req.Key, Message: fmt.Sprintf("plugin acknowledged CRC-64/NVME %016x, sent %016x", info.CRC64, req.CRC64)}
	}
	return info, nil
}

func (c *Client) PutFile(ctx context.Context, req PutRequest, path string) (ObjectInfo, error) {
	if err := ValidateKey(req.Key); err != nil {
		return ObjectInfo{}, err
	}
	resp, err := c.rpc.PutFile(ctx, &pb.PutFileRequest{Header: putHeaderToProto(req), Path: path})
	if err != nil {
		return ObjectInfo{}, errorFromRPC(ctx, err)
	}
	return checkPutAck(req, resp.GetInfo())
}

func (c *Client) Head(ctx context.Context, key string) (ObjectInfo, error) {
	if err := ValidateKey(key); err != nil {
		return ObjectInfo{}, err
	}
	r, err := c.rpc.Head(ctx, &pb.HeadRequest{Key: key})
	if err != nil {
		return ObjectInfo{}, errorFromRPC(ctx, err)
	}
	return objectFromProto(r.GetInfo()), nil
}

func (c *Client) Delete(ctx context.Context, key string) error {
	if err := ValidateKey(key); err != nil {
		return err
	}
	_, err := c.rpc.Delete(ctx, &pb.DeleteRequest{Key: key})
	return errorFromRPC(ctx, err)
}

func (c *Client) List(ctx context.Context, req ListRequest, page func([]ObjectInfo) error) error {
	if err := ValidatePrefix(req.Prefix); err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stream, err := c.rpc.List(ctx, &pb.ListRequest{Prefix: req.Prefix, StartAfter: req.StartAfter, PageSize: req.PageSize})
	if err != nil {
		return errorFromRPC(ctx, err)
	}
	for {
		r, err := stream.Recv()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return errorFromRPC(ctx, err)
		}
		objs := make([]ObjectInfo, len(r.GetObjects()))
		for i, o := range r.GetObjects() {
			objs[i] = objectFromProto(o)
		}
		if err := page(objs); err != nil {
			return err
		}
	}
}

// GetFile asks the plugin to write the range into path, then verifies the
// file's length and, for a whole object, its CRC-64/NVME.
func (c *Client) GetFile(ctx context.Context, req GetRequest, path string) (ObjectRange, error) {
	if err := ValidateKey(req.Key); err != nil {
		return ObjectRange{}, err
	}
	r, err := c.rpc.GetFile(ctx, &pb.GetFileRequest{Range: getToProto(req), Path: path})
	if err != nil {
		return ObjectRange{}, errorFromRPC(ctx, err)
	}
	rng := rangeFromProto(r.GetHeader())
	if err := checkRangeHeader(req, rng); err != nil {
		return rng, err
	}
	f, err := os.Open(path)
	if err != nil {
		return rng, fmt.Errorf("verifying GetFile output: %w", err)
	}
	defer func() { _ = f.Close() }()
	whole := rng.Offset == 0 && rng.Length == rng.Info.Size && rng.Info.HasCRC64
	var crc, n uint64
	if whole {
		crc, n, err = crcFile(f)
	} else if fi, serr := f.Stat(); serr == nil {
		n = uint64(fi.Size()) // a range: only its length can be checked
	} else {
		err = serr
	}
	if err != nil {
		return rng, fmt.Errorf("verifying GetFile output: %w", err)
	}
	if n != rng.Length {
		return rng, &Error{Code: CodeChecksum, Key: req.Key, Message: fmt.Sprintf("GetFile wrote %d bytes, expected %d", n, rng.Length)}
	}
	if whole && crc != rng.Info.CRC64 {
		return rng, &Error{Code: CodeChecksum, Key: req.Key, Message: fmt.Sprintf("GetFile wrote CRC-64/NVME %016x, object has %016x", crc, rng.Info.CRC64)}
	}
	return rng, nil
}

// checkRangeHeader verifies that the plugin served the range the contract
// says it must for req.
func checkRangeHeader(req GetRequest, rng ObjectRange) error {
	if rng.Info.Key != req.Key {
		return fmt.Errorf("%w: asked for %q, plugin described %q", ErrContractViolation, req.Key, rng.Info.Key)
	}
	want, err := ResolveRange(rng.Info.Size, req.Offset, req.Length)
	if err != nil || rng.Offset != req.Offset || rng.Length != want {
		return fmt.Errorf("%w: plugin served range [%d, +%d) of a %d-byte object for request offset %d length %d",
			ErrContractViolation, rng.Offset, rng.Length, rng.Info.Size, req.Offset, req.Length)
	}
	return nil
}

// ErrContractViolation means the plugin answered something the contract
// does not allow (a malformed stream, a range it was not asked for).
var ErrContractViolation = errors.New("plugin violated the backend contract")

// Raw is the generated client underneath, for tests that must send what
// the Client refuses to (invalid keys, malformed streams), such as the
// conformance suite's checks of a plugin's own validation.
func (c *Client) Raw() pb.BackendClient { return c.rpc }
