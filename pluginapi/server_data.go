package pluginapi

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"

	pb "github.com/aof2/aof2/pluginapi/proto/aof2/backend/v1"
)

var chunkPool = sync.Pool{New: func() any { b := make([]byte, MaxChunkSize); return &b }}

func (s *Server) PutFile(ctx context.Context, r *pb.PutFileRequest) (*pb.PutResponse, error) {
	req := putHeaderFromProto(r.GetHeader())
	if err := s.checkPut(ctx, req); err != nil {
		return nil, statusError(err)
	}
	if err := s.require(ctx, func(c Capabilities) bool { return c.PutFile }, "put_file"); err != nil {
		return nil, statusError(err)
	}
	if err := s.checkLocalPath(r.GetPath(), false); err != nil {
		return nil, statusError(err)
	}
	info, err := s.b.PutFile(ctx, req, r.GetPath())
	if err != nil {
		return nil, statusError(err)
	}
	return &pb.PutResponse{Info: objectToProto(info)}, nil
}

func (s *Server) Get(r *pb.GetRequest, stream pb.Backend_GetServer) error {
	ctx := stream.Context()
	req := getFromProto(r)
	if err := s.checkGet(ctx, req); err != nil {
		return statusError(err)
	}
	rng, rc, err := s.b.Get(ctx, req)
	if err != nil {
		return statusError(err)
	}
	defer func() { _ = rc.Close() }()
	if err := stream.Send(&pb.GetResponse{Msg: &pb.GetResponse_Header{Header: rangeToProto(rng)}}); err != nil {
		return err
	}
	bufp := chunkPool.Get().(*[]byte)
	defer chunkPool.Put(bufp)
	buf := (*bufp)[:s.chunkSize.Load()]
	var sent uint64
	for sent < rng.Length {
		n := min(uint64(len(buf)), rng.Length-sent)
		m, err := io.ReadFull(rc, buf[:n])
		if m > 0 {
			chunk := &pb.Chunk{Offset: rng.Offset + sent, Data: buf[:m]}
			if serr := stream.Send(&pb.GetResponse{Msg: &pb.GetResponse_Chunk{Chunk: chunk}}); serr != nil {
				return serr
			}
			sent += uint64(m)
		}
		if err != nil {
			if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
				err = Errorf(CodeChecksum, req.Key, "backend served %d of %d bytes", sent, rng.Length)
			}
			return statusError(err)
		}
	}
	return nil
}

func (s *Server) GetFile(ctx context.Context, r *pb.GetFileRequest) (*pb.GetFileResponse, error) {
	req := getFromProto(r.GetRange())
	if err := s.checkGet(ctx, req); err != nil {
		return nil, statusError(err)
	}
	if err := s.require(ctx, func(c Capabilities) bool { return c.GetFile }, "get_file"); err != nil {
		return nil, statusError(err)
	}
	if err := s.checkLocalPath(r.GetPath(), true); err != nil {
		return nil, statusError(err)
	}
	rng, err := s.b.GetFile(ctx, req, r.GetPath())
	if err != nil {
		return nil, statusError(err)
	}
	return &pb.GetFileResponse{Header: rangeToProto(rng)}, nil
}

func (s *Server) Head(ctx context.Context, r *pb.HeadRequest) (*pb.HeadResponse, error) {
	if err := ValidateKey(r.GetKey()); err != nil {
		return nil, statusError(err)
	}
	info, err := s.b.Head(ctx, r.GetKey())
	if err != nil {
		return nil, statusError(err)
	}
	return &pb.HeadResponse{Info: objectToProto(info)}, nil
}

// maxListPageSize bounds one List page so a page always fits a message.
const maxListPageSize = 5000

func (s *Server) List(r *pb.ListRequest, stream pb.Backend_ListServer) error {
	ctx := stream.Context()
	if err := ValidatePrefix(r.GetPrefix()); err != nil {
		return statusError(err)
	}
	if err := s.require(ctx, func(c Capabilities) bool { return c.List }, "list"); err != nil {
		return statusError(err)
	}
	size := r.GetPageSize()
	if size == 0 {
		size = DefaultListPageSize
	}
	size = min(size, maxListPageSize)
	req := ListRequest{Prefix: r.GetPrefix(), StartAfter: r.GetStartAfter(), PageSize: size}
	err := s.b.List(ctx, req, func(page []ObjectInfo) error {
		out := &pb.ListResponse{Objects: make([]*pb.ObjectInfo, len(page))}
		for i, o := range page {
			out.Objects[i] = objectToProto(o)
		}
		return stream.Send(out)
	})
	return statusError(err)
}

func (s *Server) Delete(ctx context.Context, r *pb.DeleteRequest) (*pb.DeleteResponse, error) {
	if err := ValidateKey(r.GetKey()); err != nil {
		return nil, statusError(err)
	}
	if err := s.b.Delete(ctx, r.GetKey()); err != nil {
		return nil, statusError(err)
	}
	return &pb.DeleteResponse{}, nil
}

// checkLocalPath confines PutFile/GetFile paths: absolute, clean, no NUL,
// not a symlink, and inside the staging directory when one is configured
// (after resolving symlinks in the parent directories).
func (s *Server) checkLocalPath(path string, forWrite bool) error {
	bad := func(why string) error { return Errorf(CodeInvalidArgument, "", "local path %q: %s", path, why) }
	switch {
	case path == "":
		return bad("empty")
	case strings.IndexByte(path, 0) >= 0:
		return bad("contains NUL")
	case !filepath.IsAbs(path):
		return bad("must be absolute")
	case filepath.Clean(path) != path:
		return bad("must be clean (no '..', '.', '//' or trailing '/')")
	}
	if fi, err := os.Lstat(path); err == nil {
		if fi.Mode()&os.ModeSymlink != 0 {
			return bad("is a symlink")
		}
		if !fi.Mode().IsRegular() {
			return bad("is not a regular file")
		}
	} else if !forWrite {
		return Errorf(CodeInvalidArgument, "", "local path %q: %w", path, err)
	}
	stagingp := s.staging.Load()
	if stagingp == nil || *stagingp == "" {
		return nil
	}
	dir, err := filepath.EvalSymlinks(filepath.Dir(path))
	if err != nil {
		return Errorf(CodeInvalidArgument, "", "local path %q: %w", path, err)
	}
	if !within(*stagingp, dir) {
		return bad("is outside the staging directory " + *stagingp)
	}
	return nil
}

// within reports whether dir is root or below it (both resolved, clean).
func within(root, dir string) bool {
	rel, err := filepath.Rel(root, dir)
	return err == nil && rel != ".." && !strings.HasPrefix(rel, "../") && !filepath.IsAbs(rel)
}

func resolveStagingDir(dir string) (string, error) {
	if !filepath.IsAbs(dir) {
		return "", Errorf(CodeInvalidConfig, "", "staging_dir %q must be absolute", dir)
	}
	resolved, err := filepath.EvalSymlinks(dir)
	if err != nil {
		return "", Errorf(CodeInvalidConfig, "", "staging_dir: %w", err)
	}
	fi, err := os.Stat(resolved)
	if err != nil || !fi.IsDir() {
		return "", Errorf(CodeInvalidConfig, "", "staging_dir %q is not a directory", dir)
	}
	return resolved, nil
}

// require answers Unimplemented for a capability the backend does not
// advertise, whatever the backend would have done.
func (s *Server) require(ctx context.Context, has func(Capabilities) bool, name string) error {
	info, err := s.backendInfo(ctx)
	if err != nil {
		return err
	}
	if !has(info.Capabilities) {
		return Errorf(CodeUnimplemented, "", "%s is not supported by this backend", name)
	}
	return nil
}
