package main

import (
	"bytes"
	"context"
	"fmt"
	"io/fs"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/aof2/aof2/host/dump"
)

// TestServeREADMEDefaults runs `aof2-host serve` as `make run` does: no
// configuration file, the binaries side by side, a working directory in
// which ./data is relative. Only the listen addresses are changed (free
// ports). Records appended and sealed over HTTP must reach tier 2: with a
// relative data_dir every upload used to fail with `local path
// "data/streams/1/warm/….seg.zst": must be absolute`, retried forever.
// A clean restart then adopts the warm artifact quietly.
func TestServeREADMEDefaults(t *testing.T) {
	bin := hostBinaries(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	wd := t.TempDir()
	h := startHostIn(t, bin, wd, nil, "-listen-grpc", "127.0.0.1:0", "-listen-http", "127.0.0.1:0")
	h.waitReady()

	for i := range 20 {
		code, body, _ := httpDo(t, http.MethodPost, h.url("/v1/streams/1/records"), "", strings.NewReader(fmt.Sprintf("hello %d", i)))
		require.Equal(t, http.StatusOK, code, body)
	}
	code, body, _ := httpDo(t, http.MethodPost, h.url("/v1/streams/1/seal"), "", nil)
	require.Equal(t, http.StatusOK, code, body)

	// The default scan interval is 1 s; compressing and uploading 20
	// records takes well under the bound.
	var d dump.Dump
	deadline := time.Now().Add(time.Minute)
	for {
		var out, errOut bytes.Buffer
		require.Equal(t, exitOK, run(ctx, []string{"dump", "-addr", h.grpc, "--json"}, &out, &errOut), errOut.String())
		d = dump.Dump{}
		require.NoError(t, jsonUnmarshal(out.Bytes(), &d))
		if d.Tiers[2].Segments == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no segment reached tier 2 within a minute: %+v\nhost log:\n%s", d.Tiers, h.stderr)
		}
		time.Sleep(100 * time.Millisecond)
	}
	require.Equal(t, filepath.Join(wd, "data"), d.DataDir, "data_dir is absolute once loaded")
	require.NotContains(t, h.stderr.String(), "must be absolute")
	var objects []string
	require.NoError(t, filepath.WalkDir(filepath.Join(wd, "data", "tier2"), func(path string, e fs.DirEntry, err error) error {
		if err == nil && e.Type().IsRegular() && strings.Contains(e.Name(), "00000000000000000001.seg.zst") {
			objects = append(objects, path)
		}
		return err
	}))
	require.Len(t, objects, 1, "the fs plugin stored segment 1 under ./data/tier2")
	require.Equal(t, 1, d.Tiers[1].Segments, "the warm copy stays (no tier-1 budget)")
	h.stop()

	// A clean restart adopts the warm artifact the manifest names without
	// calling it unknown (it used to log tier1_unknown_artifact for it).
	h = startHostIn(t, bin, wd, nil, "-listen-grpc", "127.0.0.1:0", "-listen-http", "127.0.0.1:0")
	h.waitReady()
	var out, errOut bytes.Buffer
	require.Equal(t, exitOK, run(ctx, []string{"dump", "-addr", h.grpc, "--json"}, &out, &errOut), errOut.String())
	d = dump.Dump{}
	require.NoError(t, jsonUnmarshal(out.Bytes(), &d))
	require.Equal(t, 1, d.Tiers[1].Segments)
	h.stop()
	require.NotContains(t, h.stderr.String(), "tier1_unknown_artifact")
}
