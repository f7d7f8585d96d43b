// Package cloud holds what the object-store plugins (s3, gcs, azure) share
// and that is not part of the contract itself: settings parsing, the
// CRC-64/NVME metadata entry, a reader that verifies what a provider
// returned, and the local-file side of PutFile/GetFile.
package cloud

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/aof2/aof2/internal/bytesize"
	"github.com/aof2/aof2/pluginapi"
)

// CRCMetadataKey is the object metadata entry holding the object's
// CRC-64/NVME as 16 lower-case hex digits. Users may not set it.
const CRCMetadataKey = "aof2-crc64nvme"

// CRCMetadataBytes is what the CRC entry costs of a provider's metadata budget.
const CRCMetadataBytes = len(CRCMetadataKey) + 16

// FormatCRC renders a CRC-64/NVME for the metadata entry.
func FormatCRC(crc uint64) string { return fmt.Sprintf("%016x", crc) }

// ParseCRC reads the metadata entry; ok is false when it is absent or
// malformed (an object written by someone else).
func ParseCRC(v string) (uint64, bool) {
	if len(v) != 16 {
		return 0, false
	}
	crc, err := strconv.ParseUint(v, 16, 64)
	return crc, err == nil
}

// Settings is a plugin's Configure map with the checks every plugin makes.
type Settings struct {
	m     map[string]string
	known []string
}

// ParseSettings refuses settings that are not in known (ErrInvalidConfig
// naming the setting, never its value).
func ParseSettings(m map[string]string, known []string) (Settings, error) {
	var keys []string
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		if !slices.Contains(known, k) {
			return Settings{}, pluginapi.Errorf(pluginapi.CodeInvalidConfig, "", "unknown setting %q (known: %s)", k, strings.Join(known, ", "))
		}
	}
	return Settings{m: m, known: known}, nil
}

// String returns a setting ("" when unset).
func (s Settings) String(name string) string { return s.m[name] }

// Required returns a setting that must be set.
func (s Settings) Required(name string) (string, error) {
	v := s.m[name]
	if v == "" {
		return "", pluginapi.Errorf(pluginapi.CodeInvalidConfig, "", "setting %q is required", name)
	}
	return v, nil
}

// Bool parses a boolean setting (def when unset).
func (s Settings) Bool(name string, def bool) (bool, error) {
	v, ok := s.m[name]
	if !ok || v == "" {
		return def, nil
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		return false, pluginapi.Errorf(pluginapi.CodeInvalidConfig, "", "setting %q must be true or false", name)
	}
	return b, nil
}

// Size parses a byte count in the host's size grammar (internal/bytesize:
// "8388608", "8MiB", "8MB", "1.5GiB"; def when unset), which must lie in
// [lo, hi].
func (s Settings) Size(name string, def, lo, hi int64) (int64, error) {
	v, ok := s.m[name]
	if !ok || v == "" {
		return def, nil
	}
	n, err := bytesize.Parse(v)
	if err != nil {
		return 0, pluginapi.Errorf(pluginapi.CodeInvalidConfig, "", "setting %q: %v", name, err)
	}
	if n < lo || n > hi {
		return 0, pluginapi.Errorf(pluginapi.CodeInvalidConfig, "", "setting %q must be a size from %s to %s, got %s",
			name, bytesize.Format(lo), bytesize.Format(hi), bytesize.Format(n))
	}
	return n, nil
}

// DefaultMaxAttempts is how many times a plugin's SDK sends one request
// unless the max_attempts setting says otherwise: once. The host's
// core/tier2 owns retries (backoff with jitter, the backend's retry-after,
// a circuit breaker, one bounded budget per operation: docs/adr-tier2.md);
// an SDK that retried as well would multiply each of those attempts, spend
// its own backoff inside one of them, and hide the failures from the
// breaker until it gave up.
const DefaultMaxAttempts = 1

// MaxAttempts parses the max_attempts setting: the SDK's tries per
// request, the first included (DefaultMaxAttempts when unset, at most 20).
func (s Settings) MaxAttempts() (int, error) {
	return s.Int("max_attempts", DefaultMaxAttempts, 1, 20)
}

// Int parses an integer setting in [lo, hi] (def when unset).
func (s Settings) Int(name string, def, lo, hi int) (int, error) {
	v, ok := s.m[name]
	if !ok || v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < lo || n > hi {
		return 0, pluginapi.Errorf(pluginapi.CodeInvalidConfig, "", "setting %q must be an integer between %d and %d", name, lo, hi)
	}
	return n, nil
}

// Prefix validates the "prefix" setting: empty, or a valid key prefix that
// ends with "/" (added when missing).
func (s Settings) Prefix() (string, error) {
	p := s.m["prefix"]
	if p == "" {
		return "", nil
	}
	if !strings.HasSuffix(p, "/") {
		p += "/"
	}
	if err := pluginapi.ValidateKey(strings.TrimSuffix(p, "/")); err != nil {
		return "", pluginapi.Errorf(pluginapi.CodeInvalidConfig, "", "setting \"prefix\": %w", err)
	}
	return p, nil
}

// CheckPut validates a Put's key and metadata before any byte moves.
func CheckPut(req pluginapi.PutRequest, maxMetadata int) error {
	if err := pluginapi.ValidateKey(req.Key); err != nil {
		return err
	}
	if _, ok := req.Metadata[CRCMetadataKey]; ok {
		return pluginapi.Errorf(pluginapi.CodeInvalidArgument, req.Key, "metadata key %q is reserved", CRCMetadataKey)
	}
	return pluginapi.ValidateMetadata(req.Metadata, maxMetadata)
}

// UserMetadata returns md without the CRC entry, and the CRC when present.
func UserMetadata(md map[string]string) (map[string]string, uint64, bool) {
	var out map[string]string
	var crc uint64
	var has bool
	for k, v := range md {
		if strings.EqualFold(k, CRCMetadataKey) {
			crc, has = ParseCRC(v)
			continue
		}
		if out == nil {
			out = make(map[string]string, len(md))
		}
		out[strings.ToLower(k)] = v
	}
	return out, crc, has
}

// WithCRC returns md plus the CRC entry.
func WithCRC(md map[string]string, crc uint64) map[string]string {
	out := make(map[string]string, len(md)+1)
	for k, v := range md {
		out[k] = v
	}
	out[CRCMetadataKey] = FormatCRC(crc)
	return out
}

// OpenSource opens PutFile's local file: an absolute, clean path to a
// regular file, never through a symlink.
func OpenSource(key, path string) (*os.File, error) {
	if !filepath.IsAbs(path) || filepath.Clean(path) != path {
		return nil, pluginapi.Errorf(pluginapi.CodeInvalidArgument, key, "PutFile source %q must be an absolute clean path", path)
	}
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, pluginapi.Errorf(pluginapi.CodeInvalidArgument, key, "PutFile source %q: %w", path, err)
	}
	f := os.NewFile(uintptr(fd), path)
	if fi, err := f.Stat(); err != nil || !fi.Mode().IsRegular() {
		_ = f.Close()
		return nil, pluginapi.Errorf(pluginapi.CodeInvalidArgument, key, "PutFile source %q is not a regular file", path)
	}
	return f, nil
}

// CreateDest creates (or truncates) GetFile's local file, never through a symlink.
func CreateDest(key, path string) (*os.File, error) {
	if !filepath.IsAbs(path) || filepath.Clean(path) != path {
		return nil, pluginapi.Errorf(pluginapi.CodeInvalidArgument, key, "GetFile destination %q must be an absolute clean path", path)
	}
	fd, err := unix.Open(path, unix.O_WRONLY|unix.O_CREAT|unix.O_TRUNC|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o640)
	if err != nil {
		return nil, pluginapi.Errorf(pluginapi.CodeInvalidArgument, key, "GetFile destination %q: %w", path, err)
	}
	return os.NewFile(uintptr(fd), path), nil
}

// copyBufferSize is GetFile's copy buffer.
const copyBufferSize = 1 << 20

// copyFull copies src to dst in full buffers: each write is copyBufferSize
// bytes but the last. A provider's body returns what the socket holds
// (often 16-64 KiB), and io.Copy into an *os.File goes through its
// ReadFrom, which ignores any buffer given and moves 32 KiB at a time; so
// a 64 MiB object took thousands of write calls instead of 64. src's
// io.EOF ends the copy (VerifiedBody returns it only for a complete,
// matching body); any other error is returned as it is.
func copyFull(dst io.Writer, src io.Reader) error {
	buf := make([]byte, copyBufferSize)
	for {
		n, err := 0, error(nil)
		for n < len(buf) && err == nil {
			var m int
			m, err = src.Read(buf[n:])
			n += m
		}
		if n > 0 {
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return werr
			}
		}
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

// Getter is the Get half of a Backend.
type Getter interface {
	Get(ctx context.Context, req pluginapi.GetRequest) (pluginapi.ObjectRange, io.ReadCloser, error)
}

// GetFile implements Backend.GetFile over Get: it copies the verified
// range into the destination file.
func GetFile(ctx context.Context, g Getter, req pluginapi.GetRequest, path string) (pluginapi.ObjectRange, error) {
	if err := pluginapi.ValidateKey(req.Key); err != nil {
		return pluginapi.ObjectRange{}, err
	}
	if !filepath.IsAbs(path) || filepath.Clean(path) != path {
		return pluginapi.ObjectRange{}, pluginapi.Errorf(pluginapi.CodeInvalidArgument, req.Key, "GetFile destination %q must be an absolute clean path", path)
	}
	rng, rc, err := g.Get(ctx, req)
	if err != nil {
		return rng, err
	}
	defer func() { _ = rc.Close() }()
	dst, err := CreateDest(req.Key, path)
	if err != nil {
		return rng, err
	}
	err = copyFull(dst, rc)
	if cerr := dst.Close(); err == nil && cerr != nil {
		err = pluginapi.Errorf(pluginapi.CodeInvalidArgument, req.Key, "GetFile destination: %w", cerr)
	}
	return rng, err
}

// ProbeWrite writes, reads back and deletes key: Probe with a WriteKey.
func ProbeWrite(ctx context.Context, b pluginapi.Backend, key string) error {
	data := []byte("aof2 probe " + key)
	if _, err := b.Put(ctx, pluginapi.PutRequest{Key: key, Size: uint64(len(data)), CRC64: pluginapi.CRC64(data)}, strings.NewReader(string(data))); err != nil {
		return err
	}
	_, rc, err := b.Get(ctx, pluginapi.GetRequest{Key: key})
	if err != nil {
		return err
	}
	got, err := io.ReadAll(rc)
	_ = rc.Close()
	if err != nil {
		return err
	}
	if string(got) != string(data) {
		return pluginapi.Errorf(pluginapi.CodeUnavailable, key, "probe read back %d different bytes", len(got))
	}
	return b.Delete(ctx, key)
}

// Put is the shared shape of a cloud backend's Put: validate the request,
// get the configured state, and hand the provider upload a body that ends
// only after exactly req.Size bytes with the declared CRC-64/NVME.
func Put[S any](req pluginapi.PutRequest, maxMetadata int, state func() (S, error), body io.Reader,
	upload func(S, io.Reader) (pluginapi.ObjectInfo, error)) (pluginapi.ObjectInfo, error) {
	if err := CheckPut(req, maxMetadata); err != nil {
		return pluginapi.ObjectInfo{}, err
	}
	st, err := state()
	if err != nil {
		return pluginapi.ObjectInfo{}, err
	}
	return upload(st, pluginapi.CheckPut(req, body))
}

// PutFile is Put for the local file at path (inside the staging directory).
func PutFile[S any](req pluginapi.PutRequest, maxMetadata int, state func() (S, error), path string,
	upload func(S, io.Reader) (pluginapi.ObjectInfo, error)) (pluginapi.ObjectInfo, error) {
	if err := CheckPut(req, maxMetadata); err != nil {
		return pluginapi.ObjectInfo{}, err
	}
	st, err := state()
	if err != nil {
		return pluginapi.ObjectInfo{}, err
	}
	f, err := OpenSource(req.Key, path)
	if err != nil {
		return pluginapi.ObjectInfo{}, err
	}
	defer func() { _ = f.Close() }()
	return upload(st, pluginapi.CheckPut(req, f))
}
