package tier2

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/aof2/aof2/pluginapi"
)

const benchObject = 64 << 20

func benchFile(b *testing.B, dir string) string {
	b.Helper()
	p := filepath.Join(dir, "src.seg.zst")
	require.NoError(b, os.WriteFile(p, payload(benchObject, 41), 0o600))
	return p
}

// copyFile is the baseline: the same bytes copied with the OS, fsynced
// when sync is set (the fs backend fsyncs every object it stores).
func copyFile(b *testing.B, src, dst string, sync bool) {
	in, err := os.Open(src)
	require.NoError(b, err)
	defer func() { _ = in.Close() }()
	out, err := os.Create(dst)
	require.NoError(b, err)
	_, err = io.Copy(out, in)
	require.NoError(b, err)
	if sync {
		require.NoError(b, out.Sync())
	}
	require.NoError(b, out.Close())
}

// BenchmarkUpload: a 64 MiB segment through the store and the fs plugin
// served in-process over gRPC (checksum, if_absent PutFile, verifying
// Head) against copying the same file directly.
func BenchmarkUpload(b *testing.B) {
	b.Run("store+fs-plugin/PutFile", func(b *testing.B) {
		f := serveFS(b)
		st := f.store(b, "")
		src := benchFile(b, f.staging)
		b.SetBytes(benchObject)
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			_, err := st.UploadSegment(context.Background(), sk(1, uint64(i)), src, SegmentInfo{})
			require.NoError(b, err)
		}
	})
	b.Run("store+fs-plugin/streamed-Put", func(b *testing.B) {
		f := serveFS(b)
		info := f.info
		info.Capabilities.PutFile, info.Capabilities.GetFile = false, false
		st, err := New(f.ip, Config{Info: &info, Logger: nullLogger()})
		require.NoError(b, err)
		src := benchFile(b, f.staging)
		b.SetBytes(benchObject)
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			_, err := st.UploadSegment(context.Background(), sk(1, uint64(i)), src, SegmentInfo{})
			require.NoError(b, err)
		}
	})
	b.Run("direct-copy+fsync", func(b *testing.B) {
		dir := b.TempDir()
		src := benchFile(b, dir)
		b.SetBytes(benchObject)
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			copyFile(b, src, filepath.Join(dir, fmt.Sprintf("dst-%d", i)), true)
		}
	})
}

// BenchmarkDownload: a verified 64 MiB download through the store and the
// fs plugin against copying the same file directly (no fsync on either
// side: DownloadFile leaves syncing to its caller).
func BenchmarkDownload(b *testing.B) {
	setup := func(b *testing.B, noFile bool) (*Store, string, string) {
		f := serveFS(b)
		info := f.info
		if noFile {
			info.Capabilities.PutFile, info.Capabilities.GetFile = false, false
		}
		st, err := New(f.ip, Config{Info: &info, Logger: nullLogger()})
		require.NoError(b, err)
		up, err := st.UploadSegment(context.Background(), sk(1, 1), benchFile(b, f.staging), SegmentInfo{})
		require.NoError(b, err)
		return st, up.Key, f.staging
	}
	for _, tc := range []struct {
		name   string
		noFile bool
	}{{"store+fs-plugin/GetFile", false}, {"store+fs-plugin/streamed-Get", true}} {
		b.Run(tc.name, func(b *testing.B) {
			st, key, staging := setup(b, tc.noFile)
			dst := filepath.Join(staging, "dst")
			b.SetBytes(benchObject)
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				_, err := st.DownloadFile(context.Background(), key, dst, Expect{})
				require.NoError(b, err)
			}
		})
	}
	b.Run("direct-copy", func(b *testing.B) {
		dir := b.TempDir()
		src := benchFile(b, dir)
		b.SetBytes(benchObject)
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			copyFile(b, src, filepath.Join(dir, "dst"), false)
		}
	})
	b.Run("direct-copy+crc", func(b *testing.B) {
		dir := b.TempDir()
		src := benchFile(b, dir)
		b.SetBytes(benchObject)
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			copyFile(b, src, filepath.Join(dir, "dst"), false)
			_, _, err := pluginapi.FileCRC64(filepath.Join(dir, "dst"))
			require.NoError(b, err)
		}
	})
}

// BenchmarkRangeRead1MiBOf64MiB: a cold read of a 1 MiB slice of a
// 64 MiB object fetches that slice only (fetched-B/op).
func BenchmarkRangeRead1MiBOf64MiB(b *testing.B) {
	f := serveFS(b)
	st := f.store(b, "")
	up, err := st.UploadSegment(context.Background(), sk(1, 1), benchFile(b, f.staging), SegmentInfo{})
	require.NoError(b, err)
	rr, err := st.OpenRange(context.Background(), up.Key, Expect{ETag: up.ETag})
	require.NoError(b, err)
	p := make([]byte, 1<<20)
	b.SetBytes(1 << 20)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		off := int64(i%63) << 20
		n, err := rr.ReadAt(p, off)
		require.NoError(b, err)
		require.Equal(b, 1<<20, n)
	}
	b.StopTimer()
	b.ReportMetric(float64(rr.BytesFetched())/float64(b.N), "fetched-B/op")
	b.ReportMetric(float64(rr.Requests())/float64(b.N), "requests/op")
}
