package tier2

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/aof2/aof2/core/types"
	"github.com/aof2/aof2/internal/logthrottle"
	"github.com/aof2/aof2/pluginapi"
)

// Downloaded describes a verified download.
type Downloaded struct {
	Info  pluginapi.ObjectInfo
	Size  uint64
	CRC64 uint64
}

// DownloadSegment fetches a segment artifact into path (see DownloadFile).
func (s *Store) DownloadSegment(ctx context.Context, k types.SegmentKey, path string, expect Expect) (Downloaded, error) {
	return s.DownloadFile(ctx, s.layout.SegmentObjectKey(k), path, expect)
}

// DownloadFile writes the whole object into path (created or truncated),
// through GetFile when the backend has it (the bytes never cross the
// plugin connection) or a streamed Get, and verifies the file against the
// stored checksum and expect. On any error path is removed: a file left
// at path is always verified. It does not fsync: a caller that keeps the
// file syncs it (tier 1 renames it into place and syncs the directory).
// path must be inside the backend's staging directory if it has one.
func (s *Store) DownloadFile(ctx context.Context, key, path string, expect Expect) (Downloaded, error) {
	if err := pluginapi.ValidateKey(key); err != nil {
		return Downloaded{}, fmt.Errorf("tier2 fetch: %w", err)
	}
	var res Downloaded
	err := s.run(ctx, OpFetch, key, func(ctx context.Context) (err error) {
		res, err = s.downloadAttempt(ctx, key, path, expect)
		if err != nil {
			_ = os.Remove(path)
		}
		return err
	})
	return res, s.fetchDone(key, res, err)
}

func (s *Store) fetchDone(key string, res Downloaded, err error) error {
	args := append(refArgs(s.layout, key), "key", key)
	if err != nil {
		if errors.Is(err, ErrChecksum) {
			s.m.badChecksum()
		}
		s.fetchFailed(append(args, "error", err.Error()), err)
		return err
	}
	s.logs.Succeed("tier2_fetch_failed", "")
	s.log.Info("tier2_fetch_success", append(args, "bytes", res.Size, "crc64", fmt.Sprintf("%016x", res.CRC64))...)
	return nil
}

// fetchFailed logs tier2_fetch_failed, rate-limited (docs/adr-host.md,
// "Logs while something stays broken").
func (s *Store) fetchFailed(args []any, err error) {
	s.logs.Fail(logthrottle.Failure{Msg: "tier2_fetch_failed", Reason: Reason(err), Recovered: "tier2_fetch_recovered", Args: args})
}

func (s *Store) downloadAttempt(ctx context.Context, key, path string, expect Expect) (Downloaded, error) {
	caps, err := s.caps(ctx)
	if err != nil {
		return Downloaded{}, err
	}
	req := pluginapi.GetRequest{Key: key}
	if caps.IfMatch {
		req.IfMatch = expect.ETag
	}
	var rng pluginapi.ObjectRange
	var crc, n uint64
	if caps.GetFile && !s.noFile.Load() {
		err = s.request(ctx, ClassGet, func(ctx context.Context) (err error) {
			rng, err = s.b.GetFile(ctx, req, path)
			return err
		})
		if errors.Is(err, pluginapi.ErrUnimplemented) {
			s.noFile.Store(true)
		} else if err != nil {
			return Downloaded{}, asChecksum(key, "download", err)
		} else if crc, n, err = pluginapi.FileCRC64(path); err != nil {
			return Downloaded{}, fmt.Errorf("verifying %s: %w", path, err)
		}
	}
	if !caps.GetFile || s.noFile.Load() {
		rng, crc, n, err = s.streamToFile(ctx, req, path)
		if err != nil {
			return Downloaded{}, asChecksum(key, "download", err)
		}
	}
	s.m.downloaded(n)
	if err := checkETag(key, expect, rng.Info); err != nil {
		return Downloaded{}, err
	}
	if err := verifyObject(key, "download", rng.Info, expect, crc, n); err != nil {
		return Downloaded{}, err
	}
	return Downloaded{Info: rng.Info, Size: n, CRC64: crc}, nil
}

func (s *Store) streamToFile(ctx context.Context, req pluginapi.GetRequest, path string) (rng pluginapi.ObjectRange, crc, n uint64, err error) {
	f, err := os.Create(path)
	if err != nil {
		return rng, 0, 0, err
	}
	defer func() {
		if cerr := f.Close(); err == nil && cerr != nil {
			err = cerr
		}
	}()
	err = s.request(ctx, ClassGet, func(ctx context.Context) error {
		var rc io.ReadCloser
		var gerr error
		rng, rc, gerr = s.b.Get(ctx, req)
		if gerr != nil {
			return gerr
		}
		defer func() { _ = rc.Close() }()
		w := &crcWriter{w: f}
		_, gerr = io.CopyBuffer(w, rc, make([]byte, 1<<20))
		crc, n = w.crc, w.n
		return gerr
	})
	return rng, crc, n, err
}

// Fetch reads a whole object (a manifest chunk or snapshot) into memory
// and verifies it; objects over Config.MaxFetchBytes are refused.
func (s *Store) Fetch(ctx context.Context, key string, expect Expect) ([]byte, pluginapi.ObjectInfo, error) {
	if err := pluginapi.ValidateKey(key); err != nil {
		return nil, pluginapi.ObjectInfo{}, fmt.Errorf("tier2 fetch: %w", err)
	}
	var data []byte
	var info pluginapi.ObjectInfo
	err := s.run(ctx, OpFetch, key, func(ctx context.Context) error {
		caps, err := s.caps(ctx)
		if err != nil {
			return err
		}
		req := pluginapi.GetRequest{Key: key}
		if caps.IfMatch {
			req.IfMatch = expect.ETag
		}
		data, info = nil, pluginapi.ObjectInfo{}
		var got []byte
		var rng pluginapi.ObjectRange
		err = s.request(ctx, ClassGet, func(ctx context.Context) error {
			var rc io.ReadCloser
			var gerr error
			rng, rc, gerr = s.b.Get(ctx, req)
			if gerr != nil {
				return gerr
			}
			defer func() { _ = rc.Close() }()
			if rng.Length > s.cfg.MaxFetchBytes {
				return fmt.Errorf("%w: %q is %d bytes, over the fetch limit of %d", pluginapi.ErrInvalidArgument, key, rng.Length, s.cfg.MaxFetchBytes)
			}
			// The body is read to at most one byte past the length the
			// backend announced (and the limit allowed): a backend that
			// sends more is caught by the size check below, without
			// holding all it sends.
			got = make([]byte, 0, rng.Length)
			got, gerr = readAllInto(got, io.LimitReader(rc, int64(rng.Length)+1))
			if gerr == nil && uint64(len(got)) > rng.Length {
				return &ChecksumError{Key: key, What: "download", Detail: fmt.Sprintf("served more than the %d bytes announced", rng.Length)}
			}
			return gerr
		})
		s.m.downloaded(uint64(len(got)))
		if err != nil {
			return asChecksum(key, "download", err)
		}
		if err := checkETag(key, expect, rng.Info); err != nil {
			return err
		}
		if err := verifyObject(key, "download", rng.Info, expect, pluginapi.CRC64(got), uint64(len(got))); err != nil {
			return err
		}
		data, info = got, rng.Info
		return nil
	})
	res := Downloaded{Info: info, Size: uint64(len(data)), CRC64: pluginapi.CRC64(data)}
	if err = s.fetchDone(key, res, err); err != nil {
		return nil, pluginapi.ObjectInfo{}, err
	}
	return data, info, nil
}

// Stat describes an object; a missing key matches pluginapi.ErrNotFound.
func (s *Store) Stat(ctx context.Context, key string) (pluginapi.ObjectInfo, error) {
	if err := pluginapi.ValidateKey(key); err != nil {
		return pluginapi.ObjectInfo{}, fmt.Errorf("tier2 stat: %w", err)
	}
	var info pluginapi.ObjectInfo
	err := s.run(ctx, OpStat, key, func(ctx context.Context) (err error) {
		info, err = s.head(ctx, key)
		return err
	})
	return info, err
}

// checkETag compares the served object's etag with the expected one (the
// backend may not support if_match).
func checkETag(key string, expect Expect, info pluginapi.ObjectInfo) error {
	if expect.ETag != "" && info.ETag != expect.ETag {
		return &pluginapi.Error{Code: pluginapi.CodePrecondition, Key: key, Message: fmt.Sprintf("object etag %q, expected %q", info.ETag, expect.ETag)}
	}
	return nil
}

// asChecksum turns a backend's checksum error (a truncated or corrupt
// stream detected by the plugin client) into a ChecksumError.
func asChecksum(key, what string, err error) error {
	var ce *ChecksumError
	if pluginapi.CodeOf(err) == pluginapi.CodeChecksum && !errors.As(err, &ce) {
		return &ChecksumError{Key: key, What: what, Detail: "the backend's stream failed verification", Err: err}
	}
	return err
}

type crcWriter struct {
	w   io.Writer
	crc uint64
	n   uint64
}

func (c *crcWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.crc = pluginapi.UpdateCRC64(c.crc, p[:n])
	c.n += uint64(n)
	return n, err
}

// readAllInto reads r to EOF, appending to buf.
func readAllInto(buf []byte, r io.Reader) ([]byte, error) {
	for {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		n, err := r.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if err == io.EOF {
			return buf, nil
		}
		if err != nil {
			return buf, err
		}
	}
}
