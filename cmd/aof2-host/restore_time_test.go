package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/hashicorp/go-hclog"
	"github.com/stretchr/testify/require"

	"github.com/aof2/aof2/core"
	"github.com/aof2/aof2/core/coordinator"
	"github.com/aof2/aof2/core/tier2"
	"github.com/aof2/aof2/internal/testbin"
	"github.com/aof2/aof2/internal/testwait"
	"github.com/aof2/aof2/pluginapi"
	"github.com/aof2/aof2/plugins/fs"
	"github.com/aof2/aof2/plugins/s3"
)

// TestRestoreTime measures `aof2-host restore` of one stream of
// AOF2_RESTORE_SEGMENTS sealed segments (skipped unless set, e.g. 10000)
// on the fs plugin and, with the local S3 server up (scripts/emulators.sh),
// on the s3 plugin. The stream is written in process through the backend
// the plugin wraps (one record per segment), then restored by the real
// binaries into an empty data directory.
func TestRestoreTime(t *testing.T) {
	v := os.Getenv("AOF2_RESTORE_SEGMENTS")
	if v == "" {
		t.Skip("set AOF2_RESTORE_SEGMENTS to measure restore time")
	}
	n, err := strconv.Atoi(v)
	require.NoError(t, err)
	bin := testbin.Dir(t, "aof2-host", "aof2-plugin-fs", "aof2-plugin-s3")
	t.Run("fs", func(t *testing.T) {
		// AOF2_RESTORE_KEEP=<dir> keeps the written prefix in dir and
		// reuses it on the next run (writing 10,000 segments takes minutes).
		root := filepath.Join(t.TempDir(), "objects")
		keep := os.Getenv("AOF2_RESTORE_KEEP")
		if keep != "" {
			root = filepath.Join(keep, "objects")
		}
		b := fs.New()
		_, err := b.Configure(context.Background(), pluginapi.ConfigureRequest{Config: map[string]string{"root": root}})
		require.NoError(t, err)
		written := filepath.Join(keep, "written")
		if _, err := os.Stat(written); keep == "" || err != nil {
			populate(t, b, n)
			if keep != "" {
				require.NoError(t, os.WriteFile(written, nil, 0o644))
			}
		}
		timeRestore(t, bin, b, n, []string{"AOF2_TIER2_SETTINGS_ROOT=" + root})
	})
	t.Run("s3", func(t *testing.T) {
		settings := s3Bucket(t, "aof2-restore-", false)
		b := s3.New()
		_, err = b.Configure(context.Background(), pluginapi.ConfigureRequest{Config: settings})
		require.NoError(t, err)
		env := s3Env(settings)
		populate(t, b, n)
		timeRestore(t, bin, b, n, env)
	})
}

// s3Bucket creates a bucket on the local S3 server (`make emulators-up`)
// and returns the s3 plugin's settings for it. Without a server the test
// is skipped, or, with required in CI (CI=true), fails: the cloud job
// runs it.
func s3Bucket(t *testing.T, prefix string, required bool) map[string]string {
	t.Helper()
	endpoint, access, secret := os.Getenv("AOF2_S3_ENDPOINT"), os.Getenv("AOF2_S3_ACCESS_KEY"), os.Getenv("AOF2_S3_SECRET_KEY")
	if endpoint == "" {
		if required && os.Getenv("CI") == "true" {
			t.Fatal("CI: AOF2_S3_ENDPOINT is not set: no local S3 server (make emulators-up)")
		}
		t.Skip("no local S3 server (make emulators-up)")
	}
	var r [5]byte
	_, _ = rand.Read(r[:])
	bucket := prefix + hex.EncodeToString(r[:])
	sdk := awss3.New(awss3.Options{Region: "us-east-1", BaseEndpoint: aws.String(endpoint), UsePathStyle: true,
		Credentials: credentials.NewStaticCredentialsProvider(access, secret, "")})
	_, err := sdk.CreateBucket(context.Background(), &awss3.CreateBucketInput{Bucket: aws.String(bucket)})
	require.NoError(t, err)
	return map[string]string{"bucket": bucket, "endpoint": endpoint, "path_style": "true", "region": "us-east-1",
		"access_key_id": access, "secret_access_key": secret}
}

// s3Env is the host's environment for the s3 plugin with settings.
func s3Env(settings map[string]string) []string {
	env := []string{"AOF2_TIER2_PLUGIN=s3"}
	for k, v := range settings {
		env = append(env, "AOF2_TIER2_SETTINGS_"+upper(k)+"="+v)
	}
	return env
}

func upper(s string) string {
	b := []byte(s)
	for i, c := range b {
		if c >= 'a' && c <= 'z' {
			b[i] = c - 'a' + 'A'
		}
	}
	return string(b)
}

// populate writes stream 7 with n one-record segments through backend,
// every one uploaded.
func populate(t *testing.T, backend pluginapi.Backend, n int) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Hour)
	defer cancel()
	remote, err := tier2.New(backend, tier2.Config{Logger: hclog.NewNullLogger(), MaxConcurrency: 16})
	require.NoError(t, err)
	dir := t.TempDir()
	c, err := coordinator.New(coordinator.Config{DataDir: dir, Tier2: remote, ScanInterval: 10 * time.Millisecond, Workers: 8})
	require.NoError(t, err)
	st, err := core.Open(dir, core.Config{Tiering: c, SegmentTargetBytes: 1})
	require.NoError(t, err)
	require.NoError(t, c.Start(ctx, st))
	s, err := st.Stream(7)
	require.NoError(t, err)
	began := time.Now()
	for i := range n {
		_, err := s.AppendDurable(ctx, fmt.Appendf(nil, "record %d", i), core.AppendOptions{})
		require.NoError(t, err)
	}
	require.NoError(t, s.Seal(ctx))
	testwait.Until(t, 2*time.Hour, time.Second, func() bool {
		l, err := remote.ListStream(ctx, 7)
		return err == nil && len(l.Segments) >= n
	}, "every segment uploaded")
	t.Logf("%d one-record segments written and uploaded in %s", n, time.Since(began).Round(time.Second))
	require.NoError(t, st.Close())
	require.NoError(t, c.Close())
	require.NoError(t, remote.Close(ctx))
}

// timeRestore times the real takeover and restore of stream 7 into an
// empty data directory.
func timeRestore(t *testing.T, bin string, backend pluginapi.Backend, n int, env []string) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Hour)
	defer cancel()
	remote, err := tier2.New(backend, tier2.Config{Logger: hclog.NewNullLogger()})
	require.NoError(t, err)
	l, err := remote.ListStream(ctx, 7)
	require.NoError(t, err)
	require.NoError(t, remote.Close(ctx))
	data := filepath.Join(t.TempDir(), "data")
	code, stdout, stderr := runHostCmd(t, ctx, bin, env, "takeover", "-data-dir", data)
	require.Zero(t, code, "%s\n%s", stdout, stderr)
	start := time.Now()
	args := []string{"restore", "-data-dir", data}
	if c := os.Getenv("AOF2_RESTORE_CONCURRENCY"); c != "" {
		args = append(args, "-concurrency", c)
	}
	code, stdout, stderr = runHostCmd(t, ctx, bin, env, args...)
	took := time.Since(start)
	require.Zero(t, code, "%s\n%s", stdout, stderr)
	t.Logf("%d segments (%d segment objects, %d chunks, %d snapshots in tier 2): restore took %s\n%s",
		n, len(l.Segments), len(l.ManifestChunks), len(l.Snapshots), took.Round(time.Millisecond), stdout)
}
