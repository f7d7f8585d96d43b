package fs

import (
	"context"
	"io"
	"os"

	"golang.org/x/sys/unix"

	"github.com/aof2/aof2/pluginapi"
)

// open resolves a Get: the open file, the object's header and the range.
func (s *Backend) open(req pluginapi.GetRequest) (*os.File, int64, pluginapi.ObjectRange, error) {
	f, h, hlen, err := s.openObject(req.Key)
	if err != nil {
		return nil, 0, pluginapi.ObjectRange{}, err
	}
	fail := func(err error) (*os.File, int64, pluginapi.ObjectRange, error) {
		_ = f.Close()
		return nil, 0, pluginapi.ObjectRange{}, err
	}
	if req.IfMatch != "" && req.IfMatch != h.etag {
		return fail(&pluginapi.Error{Code: pluginapi.CodePrecondition, Key: req.Key, Message: "if_match: current etag differs", Metadata: map[string]string{"etag": h.etag}})
	}
	length, err := pluginapi.ResolveRange(h.size, req.Offset, req.Length)
	if err != nil {
		return fail(err)
	}
	return f, hlen, pluginapi.ObjectRange{Info: h.info(req.Key), Offset: req.Offset, Length: length}, nil
}

// Get returns a reader over the range; the file stays open (and so
// readable even if the object is replaced or deleted meanwhile) until the
// reader is closed.
func (s *Backend) Get(_ context.Context, req pluginapi.GetRequest) (pluginapi.ObjectRange, io.ReadCloser, error) {
	f, hlen, rng, err := s.open(req)
	if err != nil {
		return rng, nil, err
	}
	return rng, sectionReadCloser{SectionReader: io.NewSectionReader(f, hlen+int64(rng.Offset), int64(rng.Length)), f: f}, nil
}

// GetFile copies the range into a new file at path (never through a
// symlink), letting the kernel copy the bytes (copy_file_range) where it
// can. The destination is not fsynced: the host decides its durability.
func (s *Backend) GetFile(ctx context.Context, req pluginapi.GetRequest, path string) (pluginapi.ObjectRange, error) {
	f, hlen, rng, err := s.open(req)
	if err != nil {
		return rng, err
	}
	defer func() { _ = f.Close() }()
	fd, err := unix.Open(path, unix.O_WRONLY|unix.O_CREAT|unix.O_TRUNC|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o640)
	if err != nil {
		return rng, pluginapi.Errorf(pluginapi.CodeInvalidArgument, req.Key, "GetFile destination %q: %w", path, err)
	}
	dst := os.NewFile(uintptr(fd), path)
	defer func() { _ = dst.Close() }()
	if _, err := f.Seek(hlen+int64(rng.Offset), io.SeekStart); err != nil {
		return rng, fsError(req.Key, "seek", err)
	}
	remaining := int64(rng.Length)
	for remaining > 0 {
		if err := ctx.Err(); err != nil {
			return rng, err
		}
		n, err := io.Copy(dst, &io.LimitedReader{R: f, N: min(remaining, 64<<20)})
		remaining -= n
		if err != nil {
			return rng, fsError(req.Key, "copy", err)
		}
		if n == 0 {
			return rng, &pluginapi.Error{Code: pluginapi.CodeChecksum, Key: req.Key, Message: "object file is shorter than its header says"}
		}
	}
	return rng, nil
}
