package tier2

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/hashicorp/go-hclog"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/aof2/aof2/conformance/fake"
	"github.com/aof2/aof2/pluginapi"
)

var streamOnly = pluginapi.Capabilities{RangeGet: true, IfAbsent: true, IfMatch: true, List: true}

func uploaded(t *testing.T, e *env, data []byte) Uploaded {
	t.Helper()
	up, err := e.store.UploadSegment(context.Background(), sk(4, 2), writeFile(t, data), SegmentInfo{RecordCount: 3})
	require.NoError(t, err)
	return up
}

func TestDownloadRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		name string
		caps *pluginapi.Capabilities
	}{{"GetFile", nil}, {"streamed Get", &streamOnly}} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, fake.Options{Capabilities: tc.caps}, nil)
			data := payload(3<<20+17, 11)
			up := uploaded(t, e, data)
			dst := filepath.Join(t.TempDir(), "hydrated")
			res, err := e.store.DownloadSegment(context.Background(), sk(4, 2), dst, Expect{ETag: up.ETag, CRC64: up.CRC64, HasCRC64: true, Size: up.Size, HasSize: true})
			require.NoError(t, err)
			got, err := os.ReadFile(dst)
			require.NoError(t, err)
			assert.Equal(t, data, got)
			assert.Equal(t, up.CRC64, res.CRC64)
			assert.Equal(t, float64(len(data)), e.metric("aof_tier2_downloaded_bytes_total", nil))

			mem, info, err := e.store.Fetch(context.Background(), up.Key, Expect{})
			require.NoError(t, err)
			assert.Equal(t, data, mem)
			assert.Equal(t, up.ETag, info.ETag)
		})
	}
}

// A corrupt download is a ChecksumError after one re-fetch, and nothing
// unverified is returned or left on disk.
func TestDownloadCorruption(t *testing.T) {
	cases := []struct {
		name  string
		caps  *pluginapi.Capabilities
		fault fake.Fault
	}{
		{"wrong bytes via GetFile", nil, fake.Fault{Mode: fake.WrongBytes}},
		{"wrong bytes via Get", &streamOnly, fake.Fault{Mode: fake.WrongBytes}},
		{"wrong checksum reported", nil, fake.Fault{Mode: fake.WrongChecksum, Ops: []fake.Op{fake.OpGetFile}}},
		{"truncated stream", &streamOnly, fake.Fault{Mode: fake.Truncate, AfterBytes: 1000}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, fake.Options{Capabilities: tc.caps}, nil)
			data := payload(64<<10, 12)
			up := uploaded(t, e, data)
			require.NoError(t, e.fake.Inject(tc.fault))

			dst := filepath.Join(t.TempDir(), "out")
			_, err := e.store.DownloadFile(context.Background(), up.Key, dst, Expect{})
			require.Error(t, err)
			assert.ErrorIs(t, err, ErrChecksum)
			assert.ErrorIs(t, err, pluginapi.ErrChecksum)
			var ce *ChecksumError
			require.ErrorAs(t, err, &ce)
			assert.Equal(t, up.Key, ce.Key)
			_, statErr := os.Stat(dst)
			assert.True(t, os.IsNotExist(statErr), "a file failing verification is removed")
			assert.Equal(t, uint64(1), e.retries(OpFetch), "one re-fetch, then give up")
			assert.Equal(t, 1.0, e.metric("aof_tier2_checksum_failures_total", nil))

			if tc.fault.Mode != fake.WrongChecksum || tc.caps != nil {
				mem, _, err := e.store.Fetch(context.Background(), up.Key, Expect{})
				assert.ErrorIs(t, err, ErrChecksum)
				assert.Nil(t, mem)
			}

			// Once the fault is a one-off, the re-fetch heals it.
			tc.fault.Count = 1
			require.NoError(t, e.fake.Inject(tc.fault))
			_, err = e.store.DownloadFile(context.Background(), up.Key, dst, Expect{})
			require.NoError(t, err)
			got, err := os.ReadFile(dst)
			require.NoError(t, err)
			assert.Equal(t, data, got)
		})
	}
}

func TestDownloadExpectations(t *testing.T) {
	e := newEnv(t, fake.Options{}, nil)
	data := payload(1000, 13)
	up := uploaded(t, e, data)
	dst := filepath.Join(t.TempDir(), "out")
	ctx := context.Background()

	_, err := e.store.DownloadFile(ctx, up.Key, dst, Expect{ETag: "other"})
	assert.ErrorIs(t, err, pluginapi.ErrPrecondition)
	_, err = e.store.DownloadFile(ctx, up.Key, dst, Expect{CRC64: up.CRC64 ^ 1, HasCRC64: true})
	assert.ErrorIs(t, err, ErrChecksum)
	_, err = e.store.DownloadFile(ctx, up.Key, dst, Expect{Size: up.Size + 1, HasSize: true})
	assert.ErrorIs(t, err, ErrChecksum)
	before := e.retries(OpFetch)
	_, err = e.store.DownloadFile(ctx, e.store.Layout().SegmentObjectKey(sk(4, 99)), dst, Expect{})
	assert.ErrorIs(t, err, pluginapi.ErrNotFound)
	assert.Equal(t, before, e.retries(OpFetch), "not found is final")
	_, statErr := os.Stat(dst)
	assert.True(t, os.IsNotExist(statErr))
}

func TestFetchRefusesObjectsWithoutChecksum(t *testing.T) {
	e := newEnv(t, fake.Options{}, nil)
	st, err := New(stripCRC{e.fake}, Config{Clock: e.clock, Logger: hclog.NewNullLogger()})
	require.NoError(t, err)
	e.rawPut("k/1", []byte("abc"), nil)
	_, _, err = st.Fetch(context.Background(), "k/1", Expect{})
	assert.ErrorIs(t, err, ErrChecksum)
	// The caller's expected checksum is enough.
	got, _, err := st.Fetch(context.Background(), "k/1", Expect{CRC64: pluginapi.CRC64([]byte("abc")), HasCRC64: true})
	require.NoError(t, err)
	assert.Equal(t, "abc", string(got))
}

func TestFetchLimit(t *testing.T) {
	e := newEnv(t, fake.Options{}, func(c *Config) { c.MaxFetchBytes = 100 })
	e.rawPut("k/big", payload(101, 1), nil)
	_, _, err := e.store.Fetch(context.Background(), "k/big", Expect{})
	assert.ErrorIs(t, err, pluginapi.ErrInvalidArgument)
}

// stripCRC is a backend that stores no checksum of its own.
type stripCRC struct{ pluginapi.Backend }

func (s stripCRC) Get(ctx context.Context, req pluginapi.GetRequest) (pluginapi.ObjectRange, io.ReadCloser, error) {
	rng, rc, err := s.Backend.Get(ctx, req)
	rng.Info.HasCRC64, rng.Info.CRC64 = false, 0
	return rng, rc, err
}

// A backend connection dropped mid-stream (the in-process form of the
// fake's Crash fault) is retried like any transient failure.
func TestDownloadSurvivesCrashMidStream(t *testing.T) {
	e := newEnv(t, fake.Options{Capabilities: &streamOnly}, nil)
	data := payload(2<<20, 14)
	up := uploaded(t, e, data)
	require.NoError(t, e.fake.Inject(fake.Fault{Mode: fake.Crash, Ops: []fake.Op{fake.OpGet}, AfterBytes: 1 << 20, Count: 1}))
	dst := filepath.Join(t.TempDir(), "out")
	_, err := e.store.DownloadFile(context.Background(), up.Key, dst, Expect{ETag: up.ETag})
	require.NoError(t, err)
	got, err := os.ReadFile(dst)
	require.NoError(t, err)
	assert.Equal(t, data, got)
	assert.Equal(t, uint64(1), e.retries(OpFetch))
	assert.Equal(t, 1.0, e.requests(ClassGet, OutcomeUnavailable))
}

// overlong is a backend whose bodies run on past the object: extra more
// bytes after each, counting what was read of them.
type overlong struct {
	pluginapi.Backend
	extra int64
	read  *int64
}

type countingReader struct {
	r io.Reader
	n *int64
}

func (c countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	*c.n += int64(n)
	return n, err
}

func (o overlong) Get(ctx context.Context, req pluginapi.GetRequest) (pluginapi.ObjectRange, io.ReadCloser, error) {
	rng, rc, err := o.Backend.Get(ctx, req)
	if err != nil {
		return rng, rc, err
	}
	more := countingReader{r: io.LimitReader(zeros{}, o.extra), n: o.read}
	return rng, struct {
		io.Reader
		io.Closer
	}{io.MultiReader(rc, more), rc}, nil
}

type zeros struct{}

func (zeros) Read(p []byte) (int, error) { clear(p); return len(p), nil }

// TestFetchReadsNoMoreThanAnnounced: Fetch holds a whole object in
// memory; a body longer than the length the backend announced is refused
// after at most one byte past it, not read (and held) to its end.
func TestFetchReadsNoMoreThanAnnounced(t *testing.T) {
	fb := fake.New(fake.Options{})
	var read int64
	e := newEnvWith(t, fb, overlong{Backend: fb, extra: 64 << 20, read: &read}, func(c *Config) { c.MaxFetchBytes = 1 << 20 })
	e.rawPut("k/small", payload(100, 1), nil)
	_, _, err := e.store.Fetch(context.Background(), "k/small", Expect{})
	require.ErrorIs(t, err, ErrChecksum)
	require.Less(t, read, int64(1<<10), "read %d bytes past the announced length (one per attempt at most)", read)
}
