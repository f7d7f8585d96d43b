package conformance

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"

	"github.com/aof2/aof2/pluginapi"
)

// suite is the state shared by the behaviours of one run.
type suite struct {
	h      Harness
	opts   Options
	prefix string
	tgt    *Target

	mu      sync.Mutex
	written map[string]bool // every key written, for cleanup without List
}

func (s *suite) b() *pluginapi.Client         { return s.tgt.Backend }
func (s *suite) caps() pluginapi.Capabilities { return s.tgt.Info.Capabilities }

// key returns a key under the run's prefix and remembers it for cleanup.
func (s *suite) key(name string) string {
	k := s.prefix + name
	s.mu.Lock()
	if s.written == nil {
		s.written = map[string]bool{}
	}
	s.written[k] = true
	s.mu.Unlock()
	return k
}

func (s *suite) ctx(t T) (context.Context, context.CancelFunc) {
	return context.WithTimeout(t.Context(), s.opts.Timeout)
}

// put stores data and checks the acknowledgement.
func (s *suite) put(t T, ctx context.Context, b pluginapi.Backend, key string, data []byte) pluginapi.ObjectInfo {
	t.Helper()
	return s.putReq(t, ctx, b, pluginapi.PutRequest{Key: key}, data)
}

// putReq stores data with req's key, metadata and preconditions (Size and
// CRC64 are filled in) and checks the acknowledgement.
func (s *suite) putReq(t T, ctx context.Context, b pluginapi.Backend, req pluginapi.PutRequest, data []byte) pluginapi.ObjectInfo {
	t.Helper()
	req.Size, req.CRC64 = uint64(len(data)), pluginapi.CRC64(data)
	info, err := b.Put(ctx, req, bytes.NewReader(data))
	noErr(t, RuleRoundTrip, err, "Put %q (%d bytes)", req.Key, len(data))
	checkAck(t, info, req.Key, req.Size, req.CRC64)
	return info
}

func checkAck(t T, info pluginapi.ObjectInfo, key string, size, crc uint64) {
	t.Helper()
	check(t, RulePutAck, info.Key == key, "got acknowledged key %q, want %q", info.Key, key)
	check(t, RulePutAck, info.Size == size, "got acknowledged size %d, want %d", info.Size, size)
	check(t, RulePutAck, info.ETag != "", "got an empty acknowledged etag, want a non-empty one")
	check(t, RulePutAck, info.HasCRC64 && info.CRC64 == crc, "got acknowledged CRC-64/NVME %016x (present %v), want %016x (present true)", info.CRC64, info.HasCRC64, crc)
}

// get reads a whole range into memory.
func (s *suite) get(ctx context.Context, b pluginapi.Backend, req pluginapi.GetRequest) (pluginapi.ObjectRange, []byte, error) {
	rng, rc, err := b.Get(ctx, req)
	if err != nil {
		return rng, nil, err
	}
	defer func() { _ = rc.Close() }()
	data, err := io.ReadAll(rc)
	return rng, data, err
}

// mustGet reads a whole object and checks it equals want.
func (s *suite) mustGet(t T, ctx context.Context, key string, want []byte) pluginapi.ObjectRange {
	t.Helper()
	return s.mustGetAs(t, ctx, RuleRoundTrip, key, want)
}

// mustGetAs is mustGet reporting a mismatch as a breach of r: the rule
// whose promise the object's content tests (an intact previous version
// after a cancelled Put is CANCEL, not ROUND-TRIP).
func (s *suite) mustGetAs(t T, ctx context.Context, r Rule, key string, want []byte) pluginapi.ObjectRange {
	t.Helper()
	rng, got, err := s.get(ctx, s.b(), pluginapi.GetRequest{Key: key})
	noErr(t, r, err, "Get %q", key)
	if !bytes.Equal(got, want) {
		fail(t, r, "Get %q: got %d bytes (first difference at %d), want the %d bytes stored", key, len(got), firstDiff(got, want), len(want))
	}
	return rng
}

// absent checks that key is not visible.
func (s *suite) absent(t T, ctx context.Context, r Rule, key, when string) {
	t.Helper()
	_, err := s.b().Head(ctx, key)
	wantErr(t, r, err, pluginapi.ErrNotFound, "Head %q %s", key, when)
}

// tempFile creates a file for PutFile/GetFile in the staging directory.
func (s *suite) tempFile(t T, data []byte) string {
	t.Helper()
	dir := s.tgt.StagingDir
	if dir == "" {
		dir = t.TempDir()
	}
	f, err := os.CreateTemp(dir, "conformance-*")
	noErr(t, RuleFiles, err, "creating a staging file")
	t.Cleanup(func() { _ = os.Remove(f.Name()) })
	if data != nil {
		_, err = f.Write(data)
		noErr(t, RuleFiles, err, "writing a staging file")
	}
	noErr(t, RuleFiles, f.Close(), "closing a staging file")
	return f.Name()
}

// tempPath names a file that does not exist yet in the staging directory.
func (s *suite) tempPath(t T, name string) string {
	dir := s.tgt.StagingDir
	if dir == "" {
		dir = t.TempDir()
	}
	p := filepath.Join(dir, "conformance-out-"+randomPrefix()[len("aof2-conformance-"):len("aof2-conformance-")+12]+"-"+name)
	t.Cleanup(func() { _ = os.Remove(p) })
	return p
}

func firstDiff(a, b []byte) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}

// pattern returns n deterministic, non-repeating-looking bytes.
func pattern(seed uint64, n int) []byte {
	out := make([]byte, n)
	fillPattern(seed, 0, out)
	return out
}

// fillPattern writes the bytes of pattern(seed, ...) at offset off into p:
// byte pos is byte pos%8 (little-endian) of mix(seed, pos/8). A cheap
// counter-mode mix, so a 1 GiB object needs no 1 GiB buffer.
func fillPattern(seed, off uint64, p []byte) {
	for i := 0; i < len(p); {
		pos := off + uint64(i)
		w := mix(seed, pos/8)
		if pos%8 == 0 && len(p)-i >= 8 {
			binary.LittleEndian.PutUint64(p[i:], w)
			i += 8
			continue
		}
		p[i] = byte(w >> (8 * (pos % 8)))
		i++
	}
}

func mix(seed, n uint64) uint64 {
	x := seed ^ n*0x9e3779b97f4a7c15
	x ^= x >> 29
	x *= 0xbf58476d1ce4e5b9
	return x ^ x>>32
}

// patternReader yields pattern(seed, n) without holding it in memory.
type patternReader struct {
	seed, off, n uint64
}

func (r *patternReader) Read(p []byte) (int, error) {
	if r.off >= r.n {
		return 0, io.EOF
	}
	p = p[:min(uint64(len(p)), r.n-r.off)]
	fillPattern(r.seed, r.off, p)
	r.off += uint64(len(p))
	return len(p), nil
}

func (s *suite) cleanup(t T) {
	ctx, cancel := s.ctx(t)
	defer cancel()
	keys := map[string]bool{}
	s.mu.Lock()
	for k := range s.written {
		keys[k] = true
	}
	s.mu.Unlock()
	if s.caps().List {
		err := s.b().List(ctx, pluginapi.ListRequest{Prefix: s.prefix}, func(page []pluginapi.ObjectInfo) error {
			for _, o := range page {
				keys[o.Key] = true
			}
			return nil
		})
		check(t, RuleCleanup, err == nil, "listing the run's prefix %q: got %v, want success", s.prefix, err)
	}
	// Many keys were deleted by their behaviour already: a backend whose
	// Delete of a missing key fails would fail here once per key, so the
	// failures are summed up in one message.
	var failed []string
	byCode := map[string]int{}
	var firstErr error
	for _, k := range slices.Sorted(maps.Keys(keys)) {
		if err := s.b().Delete(ctx, k); err != nil {
			if firstErr == nil {
				firstErr = err
			}
			failed = append(failed, k)
			byCode[pluginapi.CodeOf(err).String()]++
		}
	}
	if len(failed) > 0 {
		var codes []string
		for _, c := range slices.Sorted(maps.Keys(byCode)) {
			codes = append(codes, fmt.Sprintf("%s x%d", c, byCode[c]))
		}
		check(t, RuleCleanup, false, "got %d of %d Deletes failing (%s; first: %q: %v), want every Delete to succeed, including of a key already deleted",
			len(failed), len(keys), strings.Join(codes, ", "), failed[0], firstErr)
	}
	if s.caps().List {
		var left []string
		err := s.b().List(ctx, pluginapi.ListRequest{Prefix: s.prefix}, func(page []pluginapi.ObjectInfo) error {
			for _, o := range page {
				left = append(left, o.Key)
			}
			return nil
		})
		check(t, RuleCleanup, err == nil && len(left) == 0, "after cleanup, listing %q: got %d objects (first %v, error %v), want none", s.prefix, len(left), firstN(left, 5), err)
	}
}
