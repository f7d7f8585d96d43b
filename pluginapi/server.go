package pluginapi

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"

	"github.com/hashicorp/go-hclog"

	pb "github.com/aof2/aof2/pluginapi/proto/aof2/backend/v1"
)

// Server adapts a Backend to the aof2.backend.v1 gRPC service. It does the
// contract's validation once (keys, metadata, chunk framing, staging paths,
// Put size and checksum, advertised capabilities) so backends stay thin.
// Serve registers one; tests and the conformance suite's in-process
// harness register one on their own grpc.Server.
type Server struct {
	pb.UnimplementedBackendServer
	b   Backend
	log hclog.Logger

	infoMu sync.Mutex
	info   *Info

	chunkSize atomic.Uint32
	staging   atomic.Pointer[string]
}

var _ pb.BackendServer = (*Server)(nil)

// NewServer wraps b. A nil logger discards.
func NewServer(b Backend, logger hclog.Logger) *Server {
	if logger == nil {
		logger = hclog.NewNullLogger()
	}
	s := &Server{b: b, log: logger}
	s.chunkSize.Store(DefaultChunkSize)
	return s
}

// backendInfo returns the backend's Info with the defaults filled in,
// cached after the first success.
func (s *Server) backendInfo(ctx context.Context) (Info, error) {
	s.infoMu.Lock()
	defer s.infoMu.Unlock()
	if s.info != nil {
		return *s.info, nil
	}
	info, err := s.b.Info(ctx)
	if err != nil {
		return Info{}, err
	}
	info.ContractMajor = ContractMajor
	info.ContractMinor = min(info.ContractMinor, ContractMinor)
	l := &info.Limits
	if l.MaxChunkSize == 0 || l.MaxChunkSize > MaxChunkSize {
		l.MaxChunkSize = MaxChunkSize
	}
	if l.PreferredChunkSize == 0 {
		l.PreferredChunkSize = DefaultChunkSize
	}
	l.PreferredChunkSize = min(max(l.PreferredChunkSize, MinChunkSize), l.MaxChunkSize)
	if l.MaxMetadataBytes == 0 {
		l.MaxMetadataBytes = DefaultMaxMetadataBytes
	}
	s.info = &info
	return info, nil
}

func (s *Server) GetInfo(ctx context.Context, _ *pb.GetInfoRequest) (*pb.GetInfoResponse, error) {
	info, err := s.backendInfo(ctx)
	if err != nil {
		return nil, statusError(err)
	}
	return infoToProto(info), nil
}

func (s *Server) Configure(ctx context.Context, req *pb.ConfigureRequest) (*pb.ConfigureResponse, error) {
	info, err := s.backendInfo(ctx)
	if err != nil {
		return nil, statusError(err)
	}
	staging := req.GetStagingDir()
	if staging != "" {
		if staging, err = resolveStagingDir(staging); err != nil {
			return nil, statusError(err)
		}
	}
	proposed := req.GetProposedChunkSize()
	if proposed != 0 && !validChunkSize(proposed) {
		return nil, statusError(Errorf(CodeInvalidConfig, "", "proposed chunk size %d is outside [%d, %d]", proposed, MinChunkSize, MaxChunkSize))
	}
	res, err := s.b.Configure(ctx, ConfigureRequest{Config: req.GetConfig(), ChunkSize: proposed, StagingDir: staging})
	if err != nil {
		s.log.Warn("configure failed", "error", err)
		return nil, statusError(err)
	}
	chunk := res.ChunkSize
	if chunk == 0 {
		chunk = NegotiateChunkSize(proposed, info.Limits)
	}
	if !validChunkSize(chunk) {
		return nil, statusError(Errorf(CodeUnknown, "", "backend chose chunk size %d outside [%d, %d]", chunk, MinChunkSize, MaxChunkSize))
	}
	s.chunkSize.Store(chunk)
	s.staging.Store(&staging)
	s.log.Info("configured", "chunk_size", chunk, "staging_dir", staging, "settings", len(req.GetConfig()))
	return &pb.ConfigureResponse{ChunkSize: chunk}, nil
}

func (s *Server) Probe(ctx context.Context, req *pb.ProbeRequest) (*pb.ProbeResponse, error) {
	if k := req.GetWriteKey(); k != "" {
		if err := ValidateKey(k); err != nil {
			return nil, statusError(err)
		}
	}
	if err := s.b.Probe(ctx, ProbeRequest{WriteKey: req.GetWriteKey()}); err != nil {
		return nil, statusError(err)
	}
	return &pb.ProbeResponse{}, nil
}

// checkPut validates a PutRequest against the contract and the backend's
// advertised capabilities and limits.
func (s *Server) checkPut(ctx context.Context, req PutRequest) error {
	if err := ValidateKey(req.Key); err != nil {
		return err
	}
	info, err := s.backendInfo(ctx)
	if err != nil {
		return err
	}
	return ValidatePutRequest(req, info)
}

func (s *Server) checkGet(ctx context.Context, req GetRequest) error {
	if err := ValidateKey(req.Key); err != nil {
		return err
	}
	info, err := s.backendInfo(ctx)
	if err != nil {
		return err
	}
	if (req.Offset != 0 || req.Length != 0) && !info.Capabilities.RangeGet {
		return Errorf(CodeUnimplemented, req.Key, "range reads are not supported by this backend")
	}
	if req.IfMatch != "" && !info.Capabilities.IfMatch {
		return Errorf(CodeUnimplemented, req.Key, "if_match is not supported by this backend")
	}
	return nil
}

func (s *Server) Put(stream pb.Backend_PutServer) error {
	ctx := stream.Context()
	first, err := stream.Recv()
	if err == io.EOF {
		return statusError(Errorf(CodeInvalidArgument, "", "the Put stream ended before its header"))
	}
	if err != nil {
		return statusError(recvError(ctx, err, "put header"))
	}
	h := first.GetHeader()
	if h == nil {
		return statusError(Errorf(CodeInvalidArgument, "", "the first Put message must be a header"))
	}
	req := putHeaderFromProto(h)
	if err := s.checkPut(ctx, req); err != nil {
		return statusError(err)
	}
	// Chunks are bounded by what the backend advertises, not by the last
	// negotiation: a re-attached plugin may serve hosts that negotiated
	// different sizes.
	backendInfo, _ := s.backendInfo(ctx) // cached by checkPut
	body := &streamBody{ctx: ctx, stream: stream, key: req.Key, limit: backendInfo.Limits.MaxChunkSize}
	checked := CheckPut(req, body).(*checkedBody)
	info, err := s.b.Put(ctx, req, checked)
	if err != nil {
		return statusError(err)
	}
	if !errors.Is(checked.err, io.EOF) {
		s.log.Error("backend acknowledged a Put before reading the whole body", "key", req.Key)
		return statusError(Errorf(CodeUnknown, req.Key, "backend acknowledged the Put after %d of %d bytes", checked.n, req.Size))
	}
	return stream.SendAndClose(&pb.PutResponse{Info: objectToProto(info)})
}

// streamBody is the io.Reader over a Put stream's chunks.
type streamBody struct {
	ctx     context.Context
	stream  pb.Backend_PutServer
	key     string
	limit   uint32
	nextOff uint64 // offset the next chunk must carry
	cur     []byte
}

func (b *streamBody) Read(p []byte) (int, error) {
	for len(b.cur) == 0 {
		if err := b.next(); err != nil {
			return 0, err
		}
	}
	n := copy(p, b.cur)
	b.cur = b.cur[n:]
	return n, nil
}

// WriteTo passes each chunk's bytes to w as they arrive, sparing the copy
// through a caller's buffer.
func (b *streamBody) WriteTo(w io.Writer) (int64, error) {
	var total int64
	for {
		for len(b.cur) == 0 {
			if err := b.next(); err == io.EOF {
				return total, nil
			} else if err != nil {
				return total, err
			}
		}
		n, err := w.Write(b.cur)
		total += int64(n)
		b.cur = b.cur[n:]
		if err != nil {
			return total, err
		}
	}
}

// next receives the next chunk into b.cur, checking its framing.
func (b *streamBody) next() error {
	msg, err := b.stream.Recv()
	if err == io.EOF {
		return io.EOF
	}
	if err != nil {
		return recvError(b.ctx, err, "put chunk")
	}
	c := msg.GetChunk()
	switch {
	case c == nil:
		return Errorf(CodeInvalidArgument, b.key, "a Put stream carries one header, then only chunks")
	case c.GetOffset() != b.nextOff:
		return Errorf(CodeInvalidArgument, b.key, "chunk at offset %d, expected %d", c.GetOffset(), b.nextOff)
	case len(c.GetData()) > int(b.limit):
		return Errorf(CodeInvalidArgument, b.key, "chunk of %d bytes exceeds the maximum chunk size %d", len(c.GetData()), b.limit)
	}
	b.cur = c.GetData()
	b.nextOff += uint64(len(b.cur))
	return nil
}

// recvError turns a stream receive failure into the caller's cancellation
// when that is what it is.
func recvError(ctx context.Context, err error, what string) error {
	if ctxErr := ctx.Err(); ctxErr != nil {
		return ctxErr
	}
	return fmt.Errorf("receiving %s: %w", what, errorFromRPC(ctx, err))
}
