package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/aof2/aof2/client"
	"github.com/aof2/aof2/core"
	"github.com/aof2/aof2/core/segment"
)

// TestServeDamageTable is the independent tester's corruption table for
// the active segment, against the real binaries: 3,000 records, SIGTERM,
// damage the segment file, restart. Each case must report the damage
// (appends answer STREAM_DAMAGED naming the stream), keep every intact
// record readable by id, and after `repair -accept-loss` take appends in a
// new segment without reusing an id.
func TestServeDamageTable(t *testing.T) {
	bin := hostBinaries(t)
	const n = 3000
	payload := func(i int) []byte { return []byte(fmt.Sprintf("record %04d %s", i, strings.Repeat("p", 280))) }
	for _, tc := range []struct {
		name   string
		damage func(t *testing.T, path string, ids []client.RecordID)
		lost   func(ids []client.RecordID) (first, end int) // records [first, end) are gone
	}{
		{"payload flip in record 2400", func(t *testing.T, path string, ids []client.RecordID) {
			editFile(t, path, func(b []byte) []byte { b[int(ids[2400].Offset())+segment.RecordHeaderSize+100] ^= 0x04; return b })
		}, func([]client.RecordID) (int, int) { return 2400, 2401 }},
		{"record header flip in record 10", func(t *testing.T, path string, ids []client.RecordID) {
			editFile(t, path, func(b []byte) []byte { b[int(ids[10].Offset())+1] ^= 0x10; return b })
		}, func([]client.RecordID) (int, int) { return 10, 11 }},
		{"sector zeroed in the middle", func(t *testing.T, path string, ids []client.RecordID) {
			off := int(ids[1500].Offset())/512*512 + 512
			editFile(t, path, func(b []byte) []byte { clear(b[off : off+512]); return b })
		}, func(ids []client.RecordID) (int, int) {
			off := uint32(ids[1500].Offset())/512*512 + 512
			first, end := -1, 0
			for i, id := range ids {
				if id.Offset()+uint32(segment.RecordSpan(len(payload(i)))) > off && id.Offset() < off+512 {
					if first < 0 {
						first = i
					}
					end = i + 1
				}
			}
			return first, end
		}},
		{"truncated inside record 2000", func(t *testing.T, path string, ids []client.RecordID) {
			require.NoError(t, os.Truncate(path, int64(ids[2000].Offset())+50))
		}, func([]client.RecordID) (int, int) { return 2000, n }},
		{"active file deleted", func(t *testing.T, path string, _ []client.RecordID) {
			require.NoError(t, os.Remove(path))
		}, func([]client.RecordID) (int, int) { return 0, n }},
		{"segment header flip (the file unreadable: a lost segment)", func(t *testing.T, path string, _ []client.RecordID) {
			editFile(t, path, func(b []byte) []byte { b[20] ^= 0x40; return b })
		}, func([]client.RecordID) (int, int) { return 0, n }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			data := filepath.Join(t.TempDir(), "data")
			args := []string{"-data-dir", data, "-listen-grpc", "127.0.0.1:0", "-listen-http", "127.0.0.1:0",
				"-segment-size", "4MiB", "-segment-initial-size", "4MiB", "-log-level", "warn"}
			h := startHost(t, bin, nil, args...)
			h.waitReady()
			c := h.dial(ctx)
			var ids []client.RecordID
			for i := 0; i < n; i += 100 {
				batch := make([][]byte, 100)
				for j := range batch {
					batch[j] = payload(i + j)
				}
				got, err := c.Append(ctx, 1, batch...)
				require.NoError(t, err)
				ids = append(ids, got...)
			}
			seg := ids[0].Segment()
			require.Equal(t, seg, ids[n-1].Segment(), "one active segment")
			h.stop()

			path := segmentFile(t, data, 1, seg)
			code, out, _ := runVerify(t, ctx, bin, "-data-dir", data, "-skip-tier2")
			require.Equal(t, 0, code, "before the damage: %s", out)
			tc.damage(t, path, ids)
			first, end := tc.lost(ids)
			code, out, _ = runVerify(t, ctx, bin, "-data-dir", data, "-skip-tier2")
			require.Equal(t, 4, code, "manifest verify finds the damage offline: %s", out)
			require.Regexp(t, "segment_(damaged|truncated|missing|unreadable)", out)

			h = startHost(t, bin, nil, args...)
			h.waitReady()
			c = h.dial(ctx)
			code, body, _ := httpDo(t, http.MethodPost, h.url("/v1/streams/1/records"), "", strings.NewReader("refused"))
			require.Equal(t, http.StatusConflict, code, body)
			var e struct {
				Code     string `json:"code"`
				Error    string `json:"error"`
				StreamID string `json:"stream_id"`
			}
			require.NoError(t, json.Unmarshal([]byte(body), &e))
			require.Equal(t, "stream_damaged", e.Code)
			require.Equal(t, "1", e.StreamID)
			require.Contains(t, e.Error, "repair --accept-loss")
			_, err := c.Append(ctx, 1, []byte("refused"))
			require.ErrorIs(t, err, core.ErrDamaged)
			require.Contains(t, h.stderr.String(), "stream damaged", "an error-level event names the damage")

			checkIntact := func() {
				for i, id := range ids {
					if i >= first && i < end {
						continue
					}
					res, err := c.Read(ctx, 1, client.AtID(id), 1)
					require.NoError(t, err, "intact record %d (%s)", i, id)
					require.Len(t, res.Records, 1)
					require.Equal(t, payload(i), res.Records[0].Payload, "record %d", i)
				}
			}
			checkIntact()

			rout, err := exec.CommandContext(ctx, filepath.Join(bin, "aof2-host"), "repair", "-addr", h.grpc, "-stream", "1", "-accept-loss").CombinedOutput()
			require.NoError(t, err, "%s", rout)
			require.Contains(t, string(rout), "loss accepted")
			next, err := c.Append(ctx, 1, []byte("after the repair"))
			require.NoError(t, err)
			require.Greater(t, next[0].Segment(), seg, "appends go on in a new segment")
			checkIntact()
			h.stop()
			code, out, _ = runVerify(t, ctx, bin, "-data-dir", data, "-skip-tier2")
			require.Equal(t, 0, code, "after the accepted loss: %s", out)

			// The decision survives a restart: no damage reported again.
			h = startHost(t, bin, nil, args...)
			h.waitReady()
			c = h.dial(ctx)
			more, err := c.Append(ctx, 1, []byte("after a restart"))
			require.NoError(t, err)
			for _, id := range ids {
				require.NotEqual(t, id, more[0])
			}
			checkIntact()
			h.stop()
		})
	}
}

// segmentFile is the path of segment seg of stream in data.
func segmentFile(t *testing.T, data string, stream uint64, seg client.SegmentID) string {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(data, "streams", fmt.Sprint(stream), "segments", fmt.Sprintf("%020d_*.seg", seg)))
	require.NoError(t, err)
	require.Len(t, m, 1)
	return m[0]
}

func editFile(t *testing.T, path string, f func([]byte) []byte) {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(path, f(b), 0o600))
}

// TestServeHealsSealedSegments is the tester's table for a sealed segment
// that tiers 1 and 2 hold: damage to its tier-0 file while the host is
// down (payload, record header, segment header, footer) never breaks the
// stream: every record reads back through the HTTP API, healed from the
// other tiers, and appends go on.
func TestServeHealsSealedSegments(t *testing.T) {
	bin := hostBinaries(t)
	const n = 4000
	payload := func(i int) []byte { return []byte(fmt.Sprintf("record %04d %s", i, strings.Repeat("s", 300))) }
	for _, tc := range []struct {
		name string
		off  func(ids []client.RecordID, first int) int64
	}{
		{"payload flip", func(ids []client.RecordID, first int) int64 {
			return int64(ids[first+100].Offset()) + segment.RecordHeaderSize + 50
		}},
		{"record header flip", func(ids []client.RecordID, first int) int64 { return int64(ids[first+100].Offset()) + 2 }},
		{"segment header flip", func([]client.RecordID, int) int64 { return 20 }},
		{"footer crc flip", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			data, args, ids := tieredStream(t, ctx, bin, n, payload)

			path := segmentFile(t, data, 5, ids[0].Segment())
			off := int64(0)
			if tc.off == nil { // the footer's segment_crc64
				fi, err := os.Stat(path)
				require.NoError(t, err)
				off = segment.DataEnd(fi.Size()) + 72
			} else {
				off = tc.off(ids, 0)
			}
			flipAt(t, path, off)
			code, out, _ := runVerify(t, ctx, bin, "-data-dir", data, "-skip-tier2")
			require.Equal(t, 4, code, "manifest verify finds the damaged copy offline: %s", out)
			require.Contains(t, out, "another tier holds the segment")

			h := startHost(t, bin, nil, args...)
			h.waitReady()
			c := h.dial(ctx)
			pos, i := client.AtStart(), 0
			for i < n {
				res, err := c.Read(ctx, 5, pos, 500)
				require.NoError(t, err, "read at record %d", i)
				require.NotEmpty(t, res.Records)
				for _, rec := range res.Records {
					require.Equal(t, ids[i], rec.ID)
					require.Equal(t, payload(i), rec.Payload, "record %d", i)
					i++
				}
				pos = res.Next
			}
			_, err := c.Append(ctx, 5, []byte("after"))
			require.NoError(t, err)
			m, err := filepath.Glob(path + core.DamagedSuffix + "-*")
			require.NoError(t, err)
			require.NotEmpty(t, m, "the damaged copy is kept for inspection")
			h.stop()
			code, out, _ = runVerify(t, ctx, bin, "-data-dir", data, "-skip-tier2")
			require.Equal(t, 0, code, "healed: %s", out)
		})
	}
}

func flipAt(t *testing.T, path string, off int64) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	require.NoError(t, err)
	defer f.Close()
	b := make([]byte, 1)
	_, err = f.ReadAt(b, off)
	require.NoError(t, err)
	b[0] ^= 0x40
	_, err = f.WriteAt(b, off)
	require.NoError(t, err)
}

// tieredStream runs a host on the default arguments over a new data
// directory, writes stream 5 with writeTiered and stops the host.
func tieredStream(t *testing.T, ctx context.Context, bin string, n int, payload func(int) []byte) (data string, args []string, ids []client.RecordID) {
	t.Helper()
	data = filepath.Join(t.TempDir(), "data")
	args = defaultHostArgs(data)
	h := startHost(t, bin, nil, args...)
	h.waitReady()
	ids = writeTiered(t, ctx, h.dial(ctx), 5, n, payload)
	h.stop()
	return data, args, ids
}

// writeTiered appends n records (payload(i)) to stream in batches of 100,
// seals it and waits until every segment is in tiers 1 and 2.
func writeTiered(t *testing.T, ctx context.Context, c *client.Client, stream client.StreamID, n int, payload func(int) []byte) []client.RecordID {
	t.Helper()
	var ids []client.RecordID
	for i := 0; i < n; i += 100 {
		batch := make([][]byte, min(100, n-i))
		for j := range batch {
			batch[j] = payload(i + j)
		}
		got, err := c.Append(ctx, stream, batch...)
		require.NoError(t, err)
		ids = append(ids, got...)
	}
	_, err := c.Seal(ctx, stream)
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		rows, err := c.Segments(ctx, client.SegmentFilter{Stream: &stream})
		if err != nil || len(rows) < 2 {
			return false
		}
		for _, r := range rows {
			if !r.Tier1 || !r.Tier2 {
				return false
			}
		}
		return true
	}, time.Minute, 50*time.Millisecond, "every segment in tiers 1 and 2")
	return ids
}

// TestServeNodeWALAcceptLoss: a host running with the node WAL, killed
// (SIGKILL) and its WAL damaged, refuses appends on every stream and says
// why; `repair -node-wal -accept-loss` (offline, refused online) settles
// it: every record the segments hold stays readable at its id, appends go
// on at ids never handed out, the WAL's files are kept, and a second repair
// finds nothing to accept.
func TestServeNodeWALAcceptLoss(t *testing.T) {
	bin := hostBinaries(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	data := filepath.Join(t.TempDir(), "data")
	env := []string{"AOF2_SEGMENT_NODE_WAL=true"}
	args := []string{"-data-dir", data, "-listen-grpc", "127.0.0.1:0", "-listen-http", "127.0.0.1:0", "-log-level", "warn"}
	payload := func(stream client.StreamID, i int) []byte {
		return []byte(fmt.Sprintf("stream %d record %04d %s", stream, i, strings.Repeat("w", 200)))
	}
	h := startHost(t, bin, env, args...)
	h.waitReady()
	c := h.dial(ctx)
	ids := map[client.StreamID][]client.RecordID{}
	for i := 0; i < 200; i++ {
		for _, s := range []client.StreamID{1, 2} {
			got, err := c.Append(ctx, s, payload(s, i))
			require.NoError(t, err)
			ids[s] = append(ids[s], got...)
		}
	}
	h.kill()
	wal, err := filepath.Glob(filepath.Join(data, "wal", "segments", "*.seg"))
	require.NoError(t, err)
	require.NotEmpty(t, wal, "a killed host leaves its WAL")
	slices.Sort(wal)
	editFile(t, wal[0], func(b []byte) []byte { b[segment.HeaderSize+segment.RecordHeaderSize+8] ^= 0x20; return b })

	h = startHost(t, bin, env, args...)
	h.waitReady()
	c = h.dial(ctx)
	for _, s := range []client.StreamID{1, 2} {
		_, err := c.Append(ctx, s, []byte("refused"))
		require.ErrorIs(t, err, core.ErrDamaged, "stream %d", s)
		require.Contains(t, err.Error(), "node WAL")
	}
	repair := func(extra ...string) (string, error) {
		cmd := exec.CommandContext(ctx, filepath.Join(bin, "aof2-host"), append([]string{"repair", "-node-wal", "-accept-loss"}, extra...)...)
		cmd.Env = append(os.Environ(), env...)
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	out, err := repair("-addr", h.grpc)
	require.Error(t, err, "online: %s", out)
	require.Contains(t, out, "works offline")
	h.stop()

	out, err = repair("-data-dir", data)
	require.NoError(t, err, out)
	require.Contains(t, out, "node WAL loss accepted")
	require.Contains(t, out, "stream 1: 200 records")
	require.Contains(t, out, "stream 2: 200 records")
	kept, err := filepath.Glob(filepath.Join(data, "wal.lost-*", "segments", "*.seg"))
	require.NoError(t, err)
	require.Len(t, kept, len(wal), "the WAL's files are kept")

	h = startHost(t, bin, env, args...)
	h.waitReady()
	c = h.dial(ctx)
	for _, s := range []client.StreamID{1, 2} {
		for i, id := range ids[s] {
			res, err := c.Read(ctx, s, client.AtID(id), 1)
			require.NoError(t, err, "stream %d record %d (%s)", s, i, id)
			require.Len(t, res.Records, 1)
			require.Equal(t, payload(s, i), res.Records[0].Payload)
		}
		next, err := c.Append(ctx, s, []byte("after the repair"))
		require.NoError(t, err)
		require.Greater(t, next[0].Segment(), ids[s][len(ids[s])-1].Segment(), "stream %d: appends go on in a new segment", s)
	}
	h.stop()
	out, err = repair("-data-dir", data)
	require.NoError(t, err, out)
	require.Contains(t, out, "no loss of the WAL to accept")
}
