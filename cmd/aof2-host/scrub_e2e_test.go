package main

import (
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/aof2/aof2/client"
	"github.com/aof2/aof2/core"
	"github.com/aof2/aof2/core/segment"
)

// TestServeScrub: a payload byte flipped in a sealed tier-0 segment while
// the host is down is found by `aof2-host scrub -addr` before any read,
// and repaired from the copy tiers 1 and 2 hold (the damaged file kept);
// a second pass finds nothing, and every record reads back.
func TestServeScrub(t *testing.T) {
	bin := hostBinaries(t)
	const n = 4000
	payload := func(i int) []byte { return []byte(fmt.Sprintf("record %04d %s", i, strings.Repeat("s", 300))) }
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	data := filepath.Join(t.TempDir(), "data")
	args := defaultHostArgs(data)
	h := startHost(t, bin, nil, args...)
	h.waitReady()
	c := h.dial(ctx)
	ids := writeTiered(t, ctx, c, 5, n, payload)
	h.stop()

	path := segmentFile(t, data, 5, ids[0].Segment())
	flipAt(t, path, int64(ids[100].Offset())+segment.RecordHeaderSize+50)
	h = startHost(t, bin, nil, args...)
	h.waitReady()
	scrub := func() (int, string) {
		cmd := exec.CommandContext(ctx, filepath.Join(bin, "aof2-host"), "scrub", "-addr", h.grpc, "-stream", "5")
		out, err := cmd.CombinedOutput()
		var ee *exec.ExitError
		if err != nil {
			require.ErrorAs(t, err, &ee, "%s", out)
			return ee.ExitCode(), string(out)
		}
		return 0, string(out)
	}
	code, out := scrub()
	require.Equal(t, 0, code, out)
	require.Contains(t, out, fmt.Sprintf("REPAIRED stream 5 segment %d tier0 checksum", ids[0].Segment()))
	require.Contains(t, out, "1 findings, 0 unrepaired")
	m, err := filepath.Glob(path + core.DamagedSuffix + "-*")
	require.NoError(t, err)
	require.NotEmpty(t, m, "the damaged copy is kept for inspection")

	code, out = scrub()
	require.Equal(t, 0, code, out)
	require.Contains(t, out, "0 findings, 0 unrepaired")

	c = h.dial(ctx)
	pos, i := client.AtStart(), 0
	for i < n {
		res, err := c.Read(ctx, 5, pos, 500)
		require.NoError(t, err, "read at record %d", i)
		require.NotEmpty(t, res.Records)
		for _, rec := range res.Records {
			require.Equal(t, payload(i), rec.Payload, "record %d", i)
			i++
		}
		pos = res.Next
	}
	h.stop()
}
