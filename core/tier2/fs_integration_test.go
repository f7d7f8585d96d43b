package tier2

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/hashicorp/go-hclog"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/aof2/aof2/pluginapi"
	pluginhost "github.com/aof2/aof2/pluginapi/host"
	fsbackend "github.com/aof2/aof2/plugins/fs"
)

// fsServed is the fs backend served over a real gRPC connection in this
// process (the plugin's adapter and transport, without the process),
// with a staging directory for PutFile/GetFile.
type fsServed struct {
	ip      *pluginhost.InProcess
	info    pluginapi.Info
	root    string
	staging string
}

func serveFS(tb testing.TB) *fsServed {
	tb.Helper()
	root, staging := tb.TempDir(), tb.TempDir()
	ip, err := pluginhost.ServeInProcess(fsbackend.New(), hclog.NewNullLogger())
	require.NoError(tb, err)
	tb.Cleanup(func() { _ = ip.Close() })
	info, _, err := ip.Setup(context.Background(), pluginapi.ConfigureRequest{Config: map[string]string{"root": root}, StagingDir: staging})
	require.NoError(tb, err)
	return &fsServed{ip: ip, info: info, root: root, staging: staging}
}

func (f *fsServed) store(tb testing.TB, prefix string) *Store {
	tb.Helper()
	st, err := New(f.ip, Config{Prefix: prefix, Info: &f.info, Registerer: prometheus.NewRegistry(), Logger: hclog.NewNullLogger()})
	require.NoError(tb, err)
	return st
}

// Real bytes through the fs plugin's gRPC adapter: upload (PutFile),
// idempotent re-upload, data-loss refusal, download (GetFile and the
// streamed path), range reads, listing and delete.
func TestFSPluginRoundTrip(t *testing.T) {
	f := serveFS(t)
	st := f.store(t, "cluster-a")
	ctx := context.Background()
	data := payload(5<<20+123, 31)
	src := filepath.Join(f.staging, "up.seg.zst")
	require.NoError(t, os.WriteFile(src, data, 0o600))

	up, err := st.UploadSegment(ctx, sk(42, 7), src, SegmentInfo{RecordCount: 1000, BaseRecord: 5000})
	require.NoError(t, err)
	assert.Equal(t, "cluster-a/streams/42/segments/00000000000000000007.seg.zst", up.Key)
	again, err := st.UploadSegment(ctx, sk(42, 7), src, SegmentInfo{RecordCount: 1000, BaseRecord: 5000})
	require.NoError(t, err)
	assert.True(t, again.AlreadyPresent)
	assert.Equal(t, up.ETag, again.ETag)

	other := filepath.Join(f.staging, "other.seg.zst")
	require.NoError(t, os.WriteFile(other, payload(100, 1), 0o600))
	_, err = st.UploadSegment(ctx, sk(42, 7), other, SegmentInfo{})
	assert.ErrorIs(t, err, ErrDataLoss)

	dst := filepath.Join(f.staging, "down.seg.zst")
	res, err := st.DownloadSegment(ctx, sk(42, 7), dst, Expect{ETag: up.ETag})
	require.NoError(t, err)
	got, err := os.ReadFile(dst)
	require.NoError(t, err)
	assert.Equal(t, data, got)
	assert.Equal(t, up.CRC64, res.CRC64)
	meta, err := ParseMetadata(res.Info.Metadata)
	require.NoError(t, err)
	assert.Equal(t, uint64(1000), meta.RecordCount)
	assert.Equal(t, uint64(5000), meta.BaseRecord)

	mem, _, err := st.Fetch(ctx, up.Key, Expect{ETag: up.ETag})
	require.NoError(t, err)
	assert.Equal(t, data, mem)

	rr, err := st.OpenSegmentRange(ctx, sk(42, 7), Expect{ETag: up.ETag})
	require.NoError(t, err)
	p := make([]byte, 64<<10)
	_, err = rr.ReadAt(p, 1<<20)
	require.NoError(t, err)
	assert.Equal(t, data[1<<20:1<<20+64<<10], p)
	assert.Equal(t, uint64(64<<10), rr.BytesFetched())
	assert.Equal(t, uint64(1), rr.Requests())

	_, err = st.UploadManifestChunk(ctx, 42, 0, payload(1000, 2))
	require.NoError(t, err)
	l, err := st.ListStream(ctx, 42)
	require.NoError(t, err)
	require.Len(t, l.Segments, 1)
	assert.Equal(t, Ref{KindSegment, 42, 7}, l.Segments[0].Ref)
	assert.Len(t, l.ManifestChunks, 1)
	assert.Empty(t, l.Unknown)

	require.NoError(t, st.DeleteSegment(ctx, sk(42, 7)))
	require.NoError(t, st.DeleteSegment(ctx, sk(42, 7)))
	_, err = st.Stat(ctx, up.Key)
	assert.ErrorIs(t, err, pluginapi.ErrNotFound)
}

// A corrupted object on disk under the fs root is caught on download.
func TestFSPluginDetectsCorruption(t *testing.T) {
	f := serveFS(t)
	st := f.store(t, "")
	ctx := context.Background()
	data := payload(256<<10, 32)
	up, err := st.UploadManifestChunk(ctx, 1, 1, data)
	require.NoError(t, err)
	flipped := 0
	require.NoError(t, filepath.Walk(f.root, func(path string, info os.FileInfo, err error) error {
		if err != nil || info.IsDir() || info.Size() < int64(len(data)) {
			return err
		}
		fh, err := os.OpenFile(path, os.O_RDWR, 0)
		if err != nil {
			return err
		}
		defer func() { _ = fh.Close() }()
		b := make([]byte, 1)
		off := info.Size() - 1000 // inside the payload, past any header
		if _, err := fh.ReadAt(b, off); err != nil && err != io.EOF {
			return err
		}
		b[0] ^= 0xff
		_, err = fh.WriteAt(b, off)
		flipped++
		return err
	}))
	require.Equal(t, 1, flipped)
	_, err = st.DownloadFile(ctx, up.Key, filepath.Join(f.staging, "x"), Expect{})
	assert.ErrorIs(t, err, ErrChecksum)
	_, _, err = st.Fetch(ctx, up.Key, Expect{})
	assert.ErrorIs(t, err, ErrChecksum)
}
