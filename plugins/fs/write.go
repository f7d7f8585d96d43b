package fs

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"golang.org/x/sys/unix"

	"github.com/aof2/aof2/pluginapi"
)

// commitRetries bounds how often a commit re-walks a directory that a
// concurrent Delete removed between the walk and the rename.
const commitRetries = 100

// Put streams body into a temporary file and commits it.
func (s *Backend) Put(ctx context.Context, req pluginapi.PutRequest, body io.Reader) (pluginapi.ObjectInfo, error) {
	return s.write(ctx, req, pluginapi.CheckPut(req, body))
}

// PutFile copies the local file at path (never following a symlink there)
// and commits it; the size and CRC-64/NVME are checked on the way.
func (s *Backend) PutFile(ctx context.Context, req pluginapi.PutRequest, path string) (pluginapi.ObjectInfo, error) {
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return pluginapi.ObjectInfo{}, pluginapi.Errorf(pluginapi.CodeInvalidArgument, req.Key, "PutFile source %q: %w", path, err)
	}
	src := os.NewFile(uintptr(fd), path)
	defer func() { _ = src.Close() }()
	if fi, err := src.Stat(); err != nil || !fi.Mode().IsRegular() {
		return pluginapi.ObjectInfo{}, pluginapi.Errorf(pluginapi.CodeInvalidArgument, req.Key, "PutFile source %q is not a regular file", path)
	}
	return s.write(ctx, req, pluginapi.CheckPut(req, src))
}

func (s *Backend) write(ctx context.Context, req pluginapi.PutRequest, body io.Reader) (pluginapi.ObjectInfo, error) {
	if err := pluginapi.ValidateKey(req.Key); err != nil {
		return pluginapi.ObjectInfo{}, err
	}
	if err := pluginapi.ValidateMetadata(req.Metadata, maxMetadataBytes); err != nil {
		return pluginapi.ObjectInfo{}, err
	}
	st, err := s.state()
	if err != nil {
		return pluginapi.ObjectInfo{}, err
	}
	if err := s.precondition(req); err != nil {
		return pluginapi.ObjectInfo{}, err
	}
	// modTime is a placeholder of the final width, stamped once the last
	// byte arrived (see stampHeader).
	h := &header{size: req.Size, crc: req.CRC64, etag: newETag(req.CRC64), md: req.Metadata}
	hdr, err := encodeHeader(h)
	if err != nil {
		return pluginapi.ObjectInfo{}, pluginapi.Errorf(pluginapi.CodeInvalidArgument, req.Key, "%w", err)
	}
	tmp, tmpName, err := createTemp(st.tmp)
	if err != nil {
		return pluginapi.ObjectInfo{}, fsError(req.Key, "create temporary file", err)
	}
	committed := false
	defer func() {
		_ = tmp.Close()
		if !committed {
			_ = unix.Unlinkat(int(st.tmp.Fd()), tmpName, 0)
		}
	}()
	if err := writeAll(ctx, tmp, hdr, body); err != nil {
		return pluginapi.ObjectInfo{}, fsError(req.Key, "write", err)
	}
	if err := stampHeader(tmp, h, s.clock().UnixNano()); err != nil {
		return pluginapi.ObjectInfo{}, fsError(req.Key, "write header", err)
	}
	if err := tmp.Sync(); err != nil {
		return pluginapi.ObjectInfo{}, fsError(req.Key, "fsync", err)
	}
	if err := ctx.Err(); err != nil {
		return pluginapi.ObjectInfo{}, err
	}
	if err := s.commit(st, req, tmp, tmpName, h); err != nil {
		return pluginapi.ObjectInfo{}, err
	}
	committed = true
	return h.info(req.Key), nil
}

// writeAll writes the header, then body until io.EOF. A Put stream hands
// its chunks straight to the file (WriterTo) and ends with the caller's
// cancellation; a local file is copied in 1 MiB steps that check ctx.
func writeAll(ctx context.Context, f *os.File, hdr []byte, body io.Reader) error {
	if _, err := f.Write(hdr); err != nil {
		return err
	}
	_, err := io.CopyBuffer(f, ctxReader{ctx, body}, make([]byte, 1<<20))
	return err
}

// ctxReader fails with ctx's error once ctx is done. It forwards WriterTo
// so a Put stream's chunks are not copied through a buffer.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

func (c ctxReader) WriteTo(w io.Writer) (int64, error) {
	if wt, ok := c.r.(io.WriterTo); ok {
		if _, isFile := c.r.(*os.File); !isFile {
			return wt.WriteTo(ctxWriter{c.ctx, w})
		}
	}
	return io.CopyBuffer(w, struct{ io.Reader }{c}, make([]byte, 1<<20))
}

type ctxWriter struct {
	ctx context.Context
	w   io.Writer
}

func (c ctxWriter) Write(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.w.Write(p)
}

func newETag(crc uint64) string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return fmt.Sprintf("%016x-%s", crc, hex.EncodeToString(b[:]))
}

func createTemp(dir *os.File) (*os.File, string, error) {
	var b [8]byte
	_, _ = rand.Read(b[:])
	name := fmt.Sprintf("%d-%s.tmp", os.Getpid(), hex.EncodeToString(b[:]))
	fd, err := unix.Openat(int(dir.Fd()), name, unix.O_RDWR|unix.O_CREAT|unix.O_EXCL|unix.O_CLOEXEC, 0o640)
	if err != nil {
		return nil, "", err
	}
	return os.NewFile(uintptr(fd), name), name, nil
}

// precondition fails early when a precondition already cannot hold, before
// any byte is written; commit checks again under the directory lock.
func (s *Backend) precondition(req pluginapi.PutRequest) error {
	if !req.IfAbsent && req.IfMatch == "" {
		return nil
	}
	f, h, _, err := s.openObject(req.Key)
	if err == nil {
		_ = f.Close()
	}
	return checkPrecondition(req, h, err)
}

// checkPrecondition judges req against the current object (h, or the error
// opening it).
func checkPrecondition(req pluginapi.PutRequest, h *header, openErr error) error {
	exists := openErr == nil
	if openErr != nil && !errors.Is(openErr, pluginapi.ErrNotFound) {
		return openErr
	}
	switch {
	case req.IfAbsent && exists:
		return &pluginapi.Error{Code: pluginapi.CodeAlreadyExists, Key: req.Key, Metadata: map[string]string{"etag": h.etag}}
	case req.IfMatch != "" && !exists:
		return pluginapi.Errorf(pluginapi.CodePrecondition, req.Key, "if_match %q: object does not exist", req.IfMatch)
	case req.IfMatch != "" && h.etag != req.IfMatch:
		return &pluginapi.Error{Code: pluginapi.CodePrecondition, Key: req.Key, Message: fmt.Sprintf("if_match %q: current etag differs", req.IfMatch), Metadata: map[string]string{"etag": h.etag}}
	}
	return nil
}

// commit renames the temporary file into place under an exclusive flock
// on the destination directory (which orders it against other commits and
// deletes in that directory, in this process or another), after checking
// the precondition again and stamping h's ModTime, then fsyncs the
// directory.
func (s *Backend) commit(st *rootState, req pluginapi.PutRequest, tmp *os.File, tmpName string, h *header) error {
	for attempt := 0; ; attempt++ {
		chain, name, err := s.walk(req.Key, true)
		if err == nil {
			err = s.commitIn(st, chain.parent(), name, req, tmp, tmpName, h)
			chain.close()
		}
		if errors.Is(err, unix.ENOENT) && attempt < commitRetries {
			continue // a Delete pruned a directory between our mkdir/walk and the rename
		}
		if errors.Is(err, unix.ENOENT) {
			return &pluginapi.Error{Code: pluginapi.CodeUnavailable, Key: req.Key, Message: "commit: directories keep disappearing under concurrent deletes", Err: err}
		}
		if err != nil {
			return fsError(req.Key, "commit", err)
		}
		return nil
	}
}

func (s *Backend) commitIn(st *rootState, parent *os.File, name string, req pluginapi.PutRequest, tmp *os.File, tmpName string, h *header) error {
	if err := lockDir(parent); err != nil {
		return err
	}
	defer unlockDir(parent)
	cur, err := readHeaderAt(parent, name)
	if req.IfAbsent || req.IfMatch != "" {
		if errors.Is(err, unix.ENOENT) {
			err = pluginapi.ErrNotFound
		}
		if err := checkPrecondition(req, cur, err); err != nil {
			return err
		}
	}
	if err == nil && cur.modTime >= h.modTime {
		// Another version committed after this one was stamped, with a
		// later time: restamp, so that the version visible last is never
		// older than the one it replaces.
		if err := stampHeader(tmp, h, max(s.clock().UnixNano(), cur.modTime+1)); err != nil {
			return err
		}
		if err := unix.Fdatasync(int(tmp.Fd())); err != nil {
			return err
		}
	}
	if err := unix.Renameat(int(st.tmp.Fd()), tmpName, int(parent.Fd()), name); err != nil {
		return err
	}
	return parent.Sync()
}

// stampHeader rewrites the temporary file's header with ModTime = ns. The
// contract's ModTime is when a version became visible, never before its
// last byte arrived (the stamp in write) and never older than the version
// it replaces (the restamp in commitIn, under the directory lock): a Put
// that started first but commits last reports the later time. The header
// keeps its length (mod_time is fixed-width); the caller syncs it before
// the rename, so a visible object never has a torn header.
func stampHeader(tmp *os.File, h *header, ns int64) error {
	h.modTime = ns
	hdr, err := encodeHeader(h)
	if err != nil {
		return err
	}
	_, err = tmp.WriteAt(hdr, 0)
	return err
}

func readHeaderAt(dir *os.File, name string) (*header, error) {
	fd, err := unix.Openat(int(dir.Fd()), name, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	f := os.NewFile(uintptr(fd), name)
	defer func() { _ = f.Close() }()
	h, _, err := readHeader(f)
	return h, err
}

// probeWrite writes, reads back and deletes key.
func probeWrite(ctx context.Context, s *Backend, key string) error {
	data := []byte("aof2 fs probe " + time.Now().UTC().Format(time.RFC3339Nano))
	if _, err := s.Put(ctx, pluginapi.PutRequest{Key: key, Size: uint64(len(data)), CRC64: pluginapi.CRC64(data)}, bytes.NewReader(data)); err != nil {
		return err
	}
	_, rc, err := s.Get(ctx, pluginapi.GetRequest{Key: key})
	if err != nil {
		return err
	}
	got, err := io.ReadAll(rc)
	_ = rc.Close()
	if err != nil || !bytes.Equal(got, data) {
		return pluginapi.Errorf(pluginapi.CodeUnavailable, key, "probe read back %d bytes (%v)", len(got), err)
	}
	return s.Delete(ctx, key)
}
