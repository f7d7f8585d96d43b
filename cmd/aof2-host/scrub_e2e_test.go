package main

import (
	"context"
	"fmt"
	"os"
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

// TestServeScrub is the tester's table for the copies nobody reads: a
// payload byte flipped in a sealed tier-0 segment while the host is down,
// a byte flipped in its warm artifact or its tier-2 object, or the object
// deleted, while it runs (a warm artifact damaged while the host is down is found and
// rebuilt when it starts, before any scrub), is
// found by `aof2-host scrub -addr` before any read and repaired from a
// verified copy (a damaged tier-0 file kept beside its replacement, the
// object uploaded again); a second pass finds nothing, and every record
// reads back.
func TestServeScrub(t *testing.T) {
	bin := hostBinaries(t)
	const n = 4000
	payload := func(i int) []byte { return []byte(fmt.Sprintf("record %04d %s", i, strings.Repeat("s", 300))) }
	artifact := func(data string, seg client.SegmentID) string {
		return filepath.Join(data, "streams", "5", "warm", fmt.Sprintf("%020d.seg.zst", seg))
	}
	object := func(data string, seg client.SegmentID) string {
		return filepath.Join(data, "tier2", "objects", "streams.d", "5.d", "segments.d", fmt.Sprintf("%020d.seg.zst.o", seg)) // the fs plugin's layout
	}
	for _, tc := range []struct {
		name string
		// stopped damages the copies while the host is down, running
		// while it runs.
		stopped, running func(t *testing.T, data string, ids []client.RecordID)
		found            string // the scrub's line for the repaired copy
	}{
		{"tier-0 payload flip", func(t *testing.T, data string, ids []client.RecordID) {
			flipAt(t, segmentFile(t, data, 5, ids[0].Segment()), int64(ids[100].Offset())+segment.RecordHeaderSize+50)
		}, nil, "tier0 checksum"},
		{"warm artifact flip", nil, func(t *testing.T, data string, ids []client.RecordID) {
			path := artifact(data, ids[0].Segment())
			fi, err := os.Stat(path)
			require.NoError(t, err)
			flipAt(t, path, fi.Size()/2)
		}, "tier1 checksum"},
		{"tier-2 object deleted", nil, func(t *testing.T, data string, ids []client.RecordID) {
			require.NoError(t, os.Remove(object(data, ids[0].Segment())))
		}, "tier2 missing"},
		{"tier-2 object rotten", nil, func(t *testing.T, data string, ids []client.RecordID) {
			path := object(data, ids[0].Segment())
			fi, err := os.Stat(path)
			require.NoError(t, err)
			flipAt(t, path, fi.Size()/2)
		}, "tier2 checksum"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			data, args, ids := tieredStream(t, ctx, bin, n, payload)
			if tc.stopped != nil {
				tc.stopped(t, data, ids)
			}
			h := startHost(t, bin, nil, args...)
			h.waitReady()
			if tc.running != nil {
				tc.running(t, data, ids)
			}
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
			require.Contains(t, out, fmt.Sprintf("REPAIRED stream 5 segment %d %s", ids[0].Segment(), tc.found))
			require.Contains(t, out, "1 findings, 0 unrepaired")
			kept, err := filepath.Glob(segmentFile(t, data, 5, ids[0].Segment()) + core.DamagedSuffix + "-*")
			require.NoError(t, err)
			require.Equal(t, strings.HasPrefix(tc.found, "tier0"), len(kept) > 0, "a replaced tier-0 file is kept for inspection")
			_, err = os.Stat(object(data, ids[0].Segment()))
			require.NoError(t, err, "the tier-2 object is there")

			code, out = scrub()
			require.Equal(t, 0, code, out)
			require.Contains(t, out, "0 findings, 0 unrepaired")

			c := h.dial(ctx)
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
		})
	}
}
