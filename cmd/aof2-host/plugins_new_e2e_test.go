package main

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/aof2/aof2/conformance"
	"github.com/aof2/aof2/host/dump"
	"github.com/aof2/aof2/internal/testwait"
)

// TestPluginsNewFilled walks a new author's path (docs/plugin-authors.md):
// `aof2-host plugins new`, the skeleton building and failing the suite at
// its TODO(aof2) places, the places filled with an in-memory store
// (testdata/pluginfill), the suite green in-process (the skeleton's own
// test) and on the built binary (launched as the host launches it), then
// aof2-host serving with the plugin as its tier 2: a sealed segment is
// uploaded to it and every record reads back.
func TestPluginsNewFilled(t *testing.T) {
	bin := hostBinaries(t) // skips under -short
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	dir := newSkeleton(t, "mine", "-aof2", repoRoot(t))
	gocmd := func(args ...string) (string, error) {
		out, err := goCmd(ctx, dir, nil, args...).CombinedOutput()
		return string(out), err
	}
	out, err := gocmd("mod", "tidy")
	require.NoError(t, err, out)

	out, err = gocmd("vet", "./...")
	require.NoError(t, err, "the skeleton as written: %s", out)
	out, err = gocmd("test", "-count=1", "-run", "^TestConformance$", ".")
	require.Error(t, err, "the skeleton as written passes the suite:\n%s", out)
	require.Contains(t, out, "[ROUND-TRIP] Get returns exactly the bytes Put stored")
	require.Contains(t, out, "TODO(aof2): Put is not implemented yet (backend.go)")

	fillSkeleton(t, dir, "mine")
	out, err = gocmd("vet", "./...")
	require.NoError(t, err, "the filled skeleton: %s", out)
	out, err = gocmd("test", "-count=1", "-run", "^TestConformance$", ".")
	require.NoError(t, err, "the suite on the filled skeleton, in-process:\n%s", out)

	plugins := t.TempDir()
	plugin := filepath.Join(plugins, "aof2-plugin-mine")
	out, err = gocmd("build", "-o", plugin, "./cmd/aof2-plugin-mine")
	require.NoError(t, err, out)
	t.Run("binary", func(t *testing.T) {
		conformance.Run(t, &conformance.Binary{Path: plugin, StagingDir: t.TempDir()}, conformance.Options{Quick: true})
	})

	serveWithPlugin(t, ctx, bin, plugins, "mine")
}

// serveWithPlugin serves a host whose tier 2 is the plugin aof2-plugin-<name>
// in pluginDir, appends records, seals the stream, waits for the segment
// to reach tier 2 and reads the records back.
func serveWithPlugin(t *testing.T, ctx context.Context, bin, pluginDir, name string) {
	t.Helper()
	h := startHost(t, bin, nil, append(defaultHostArgs(filepath.Join(t.TempDir(), "data")),
		"-plugin-dir", pluginDir, "-tier2-plugin", name)...)
	h.waitReady()
	for i := range 20 {
		code, body, _ := httpDo(t, http.MethodPost, h.url("/v1/streams/1/records"), "", strings.NewReader(fmt.Sprintf("hello %d", i)))
		require.Equal(t, http.StatusOK, code, body)
	}
	code, body, _ := httpDo(t, http.MethodPost, h.url("/v1/streams/1/seal"), "", nil)
	require.Equal(t, http.StatusOK, code, body)
	testwait.Until(t, time.Minute, 50*time.Millisecond, func() bool {
		var out, errOut bytes.Buffer
		require.Equal(t, exitOK, run(ctx, []string{"dump", "-addr", h.grpc, "--json"}, &out, &errOut), errOut.String())
		var d dump.Dump
		require.NoError(t, jsonUnmarshal(out.Bytes(), &d))
		return d.Tiers[2].Segments == 1
	}, "the sealed segment to reach aof2-plugin-%s (host log:\n%s)", name, h.stderr)
	code, body, _ = httpDo(t, http.MethodGet, h.url("/v1/streams/1/records?text=1"), "", nil)
	require.Equal(t, http.StatusOK, code, body)
	require.Contains(t, body, "hello 19")
	h.stop()
}
