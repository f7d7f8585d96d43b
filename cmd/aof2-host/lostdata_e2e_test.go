package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/aof2/aof2/client"
	"github.com/aof2/aof2/core"
)

// TestServeLostDataDirectory: with tier 2 outside the data directory,
// write to streams 42 and 41, stop, delete stream 42's directory, start
// again. The node must not take stream 42 up again at segment 1 (its ids
// already name records in tier 2): appends answer NEEDS_RESTORE (HTTP
// 409, gRPC FAILED_PRECONDITION) naming the stream and `aof2-host
// restore`, and other streams work. (A data directory that lost every
// stream does not start at all: TestDisasterRecoveryDrill.)
func TestServeLostDataDirectory(t *testing.T) {
	bin := hostBinaries(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	root := t.TempDir()
	data, objects := filepath.Join(root, "data"), filepath.Join(root, "objects")
	args := append(defaultHostArgs(data), "-tier2-settings", "root="+objects)

	h := startHost(t, bin, nil, args...)
	h.waitReady()
	c := h.dial(ctx)
	for i := 0; i < 4000; i += 100 {
		batch := make([][]byte, 100)
		for j := range batch {
			batch[j] = []byte(fmt.Sprintf("record %d %s", i+j, strings.Repeat("x", 300)))
		}
		_, err := c.Append(ctx, 42, batch...)
		require.NoError(t, err)
	}
	_, err := c.Seal(ctx, 42)
	require.NoError(t, err)
	_, err = c.Append(ctx, 41, []byte("a stream this node keeps"))
	require.NoError(t, err)
	stream := client.StreamID(42)
	require.Eventually(t, func() bool {
		rows, err := c.Segments(ctx, client.SegmentFilter{Stream: &stream, Tier: "tier2"})
		return err == nil && len(rows) >= 2
	}, time.Minute, 50*time.Millisecond, "both segments of stream 42 reach tier 2")
	h.stop()

	require.NoError(t, os.RemoveAll(filepath.Join(data, "streams", "42")))
	h = startHost(t, bin, nil, args...)
	h.waitReady()

	list, err := h.dial(ctx).Streams(ctx)
	require.NoError(t, err)
	require.Equal(t, []client.StreamID{41}, list.IDs)

	code, body, _ := httpDo(t, http.MethodPost, h.url("/v1/streams/42/records"), "", strings.NewReader("hello"))
	require.Equal(t, http.StatusConflict, code, body)
	var e struct {
		Code     string `json:"code"`
		Error    string `json:"error"`
		StreamID string `json:"stream_id"`
	}
	require.NoError(t, json.Unmarshal([]byte(body), &e))
	require.Equal(t, "needs_restore", e.Code)
	require.Equal(t, "42", e.StreamID)
	require.Contains(t, e.Error, "stream 42")
	require.Contains(t, e.Error, "aof2-host restore -stream 42")

	c = h.dial(ctx)
	_, err = c.Append(ctx, 42, []byte("hello"))
	require.ErrorIs(t, err, core.ErrNeedsRestore)
	var ce *client.Error
	require.ErrorAs(t, err, &ce)
	require.Equal(t, "NEEDS_RESTORE", ce.Reason)

	code, body, _ = httpDo(t, http.MethodPost, h.url("/v1/streams/43/records"), "", strings.NewReader("hello"))
	require.Equal(t, http.StatusOK, code, "a stream tier 2 does not hold: %s", body)
	h.stop()
}
