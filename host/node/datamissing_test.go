package node

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/aof2/aof2/api/wire"
	"github.com/aof2/aof2/core"
	"github.com/aof2/aof2/core/tier1"
	"github.com/aof2/aof2/host/dump"
	"github.com/aof2/aof2/host/server"
)

// fsObjectPath is where the fs plugin keeps the object of key
// (docs/formats.md#fs-backend-object-file).
func fsObjectPath(root, key string) string {
	parts := strings.Split(key, "/")
	for i := range parts[:len(parts)-1] {
		parts[i] += ".d"
	}
	parts[len(parts)-1] += ".o"
	return filepath.Join(append([]string{root, "objects"}, parts...)...)
}

// TestMissingTier2ObjectIsDataLoss: a segment only tier 2 holds whose
// object was deleted behind the host's back reads as DATA_MISSING (HTTP
// 500, gRPC DATA_LOSS), not INTERNAL, every time it is asked for; the
// segments before and after it stay readable.
func TestMissingTier2ObjectIsDataLoss(t *testing.T) {
	if testing.Short() {
		t.Skip("launches a plugin binary")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	bin, dir := buildFSPlugin(t), t.TempDir()
	opts := testOptions(dir, bin, prometheus.NewRegistry())
	opts.Coordinator.Tier1 = tier1.Config{MaxBytes: 1} // no warm copies to fall back on
	n, err := New(opts)
	require.NoError(t, err)
	require.NoError(t, n.Start(ctx))
	defer n.Close(context.Background())

	s, err := n.Store().Stream(9)
	require.NoError(t, err)
	payload := bytes.Repeat([]byte("m"), 4000)
	for range 3000 { // ≈ 12 MiB: a dozen 1 MiB segments through a 4 MiB tier 0
		_, err := s.AppendCtx(ctx, payload, core.AppendOptions{})
		require.NoError(t, err)
	}
	require.NoError(t, s.Seal(ctx))
	var cold []dump.Segment
	require.Eventually(t, func() bool {
		d, err := n.View()
		require.NoError(t, err)
		cold = cold[:0]
		for _, g := range d.Streams[0].Segments {
			if g.Tier2 && !g.Tier0 && !g.Tier1 {
				cold = append(cold, g)
			}
		}
		return len(cold) >= 3
	}, time.Minute, 20*time.Millisecond, "three segments only in tier 2")
	gone := cold[1]
	require.NoError(t, os.Remove(fsObjectPath(filepath.Join(dir, "tier2"), gone.Tier2Key)))

	srv, err := server.New(n, server.Options{})
	require.NoError(t, err)
	web := httptest.NewServer(srv.Handler())
	defer web.Close()
	read := func(seg uint64) (int, []byte) {
		url := web.URL + "/v1/streams/9/records?limit=1&from=" + wire.FormatRecordID(core.MakeRecordID(core.SegmentID(seg), 64))
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		require.NoError(t, err)
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		return resp.StatusCode, body
	}
	for attempt := range 2 { // the first read finds the object gone, the next the segment flagged
		code, body := read(gone.ID)
		require.Equal(t, http.StatusInternalServerError, code, "attempt %d: %s", attempt, body)
		var e struct{ Code string }
		require.NoError(t, json.Unmarshal(body, &e))
		require.Equal(t, "data_missing", e.Code, "attempt %d: %s", attempt, body)
	}
	for _, g := range []dump.Segment{cold[0], cold[2]} {
		code, body := read(g.ID)
		require.Equal(t, http.StatusOK, code, "segment %d: %s", g.ID, body)
	}
}
