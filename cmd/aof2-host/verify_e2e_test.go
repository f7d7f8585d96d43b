package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/aof2/aof2/client"
	"github.com/aof2/aof2/core/manifest"
	"github.com/aof2/aof2/core/tier2"
	"github.com/aof2/aof2/core/types"
	"github.com/aof2/aof2/core/vfs"
	"github.com/aof2/aof2/host/dump"
	"github.com/aof2/aof2/internal/testwait"
)

// fsObjectPath is where the fs plugin rooted at root keeps the object key
// (docs/formats.md#fs-backend-object-file: a/b/c → objects/a.d/b.d/c.o).
func fsObjectPath(root, key string) string {
	parts := strings.Split(key, "/")
	for i := range parts[:len(parts)-1] {
		parts[i] += ".d"
	}
	parts[len(parts)-1] += ".o"
	return filepath.Join(append([]string{root, "objects"}, parts...)...)
}

// runVerify runs the real `aof2-host manifest verify` binary (which finds
// aof2-plugin-fs next to itself, as an operator's install does).
func runVerify(t *testing.T, ctx context.Context, bin string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	return runHostCmd(t, ctx, bin, nil, append([]string{"manifest", "verify"}, args...)...)
}

// verifyResult is one row of `manifest verify --json`.
type verifyResult struct {
	Stream   uint64             `json:"stream_id"`
	Findings []manifest.Finding `json:"findings"`
	Tier2    tier2Report        `json:"tier2"`
}

// TestManifestVerifyTier2 writes, seals and uploads with a real host, stops
// it, and checks that `manifest verify` sees what happens to tier 2 behind
// the manifest's back: a deleted segment object, a deleted uploaded chunk
// object and a segment object overwritten with other bytes are reported
// with their keys (exit 4), and so is a damaged chunk object; -skip-tier2
// says ok with a note; a plugin that is missing or does not start is an
// error, never "ok". Before verify checked tier 2, it said "stream 3: ok"
// whatever tier 2 held.
func TestManifestVerifyTier2(t *testing.T) {
	bin := hostBinaries(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	dataDir := filepath.Join(t.TempDir(), "data")
	h := startHost(t, bin, nil, append(defaultHostArgs(dataDir), "-manifest-rotation-period", "10ms")...)
	h.waitReady()
	c := h.dial(ctx)
	const stream = 3
	appendAndSeal(t, ctx, c, stream, 1200) // 3.6 MB in 1 MiB segments: four segments

	// Every sealed segment reaches tier 2 and sealed manifest chunks are
	// uploaded and flagged so.
	streamDir := filepath.Join(dataDir, "streams", fmt.Sprint(stream))
	localChunks := func() []manifest.ChunkReport {
		in, err := manifest.NewInspector(vfs.OS, streamDir, stream).Inspect(ctx, manifest.InspectOptions{})
		require.NoError(t, err)
		return in.Chunks
	}
	uploadedChunks := func() []manifest.ChunkReport {
		var out []manifest.ChunkReport
		for _, ch := range localChunks() {
			if ch.Committed && ch.Header != nil && ch.Header.Flags.Uploaded() {
				out = append(out, ch)
			}
		}
		return out
	}
	chunkStates := func() []string {
		var out []string
		for _, ch := range localChunks() {
			st := fmt.Sprintf("%d committed=%v records=%d", ch.Index, ch.Committed, ch.RecordCount)
			if ch.Header != nil {
				st += fmt.Sprintf(" sealed=%v uploaded=%v", ch.Header.Flags.Sealed(), ch.Header.Flags.Uploaded())
			}
			out = append(out, st)
		}
		return out
	}
	deadline := time.Now().Add(time.Minute)
	for {
		var out, errOut bytes.Buffer
		require.Equal(t, exitOK, run(ctx, []string{"dump", "-addr", h.grpc, "--json"}, &out, &errOut), errOut.String())
		var d dump.Dump
		require.NoError(t, jsonUnmarshal(out.Bytes(), &d))
		if len(d.Streams) == 1 && len(d.Streams[0].Segments) >= 4 && d.Tiers[2].Segments == len(d.Streams[0].Segments) && len(uploadedChunks()) >= 3 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("segments and manifest chunks not in tier 2 within a minute: %+v, %d chunks uploaded %q\n%s", d.Tiers, len(uploadedChunks()), chunkStates(), h.stderr)
		}
		time.Sleep(50 * time.Millisecond)
	}
	h.stop()

	// Sound: every object present.
	code, out, errOut := runVerify(t, ctx, bin, "-data-dir", dataDir)
	require.Equal(t, exitOK, code, "%s%s", out, errOut)
	require.Regexp(t, `(?m)^tier 2: plugin fs \(fs .*aof2-plugin-fs\), prefix "", config: no config file$`, out)
	require.Regexp(t, `(?m)^stream 3: ok \([4-9] segment and \d+ manifest chunk objects present in tier 2\)$`, out)

	// Behind the manifest's back: segment 1's object deleted, segment 3's
	// replaced by segment 2's bytes (a valid object, just not this one),
	// an uploaded chunk's object deleted.
	root := filepath.Join(dataDir, "tier2")
	layout, err := tier2.NewLayout("")
	require.NoError(t, err)
	segKey := func(id uint32) string {
		return layout.SegmentObjectKey(types.SegmentKey{Stream: stream, Segment: types.SegmentID(id)})
	}
	require.NoError(t, os.Remove(fsObjectPath(root, segKey(1))))
	other, err := os.ReadFile(fsObjectPath(root, segKey(2)))
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(fsObjectPath(root, segKey(3)), other, 0o640))
	chunks := uploadedChunks()
	goneChunk := layout.ManifestChunkKey(stream, chunks[0].Index)
	require.NoError(t, os.Remove(fsObjectPath(root, goneChunk)))

	code, out, errOut = runVerify(t, ctx, bin, "-data-dir", dataDir)
	require.Equal(t, exitIO, code, "%s%s", out, errOut)
	lines := findingLines(out)
	require.Equal(t, []string{
		"stream 3: error tier2_missing " + segKey(1) + ": segment 1: the manifest records it in tier 2 but the object is not there; a copy remains in ",
		"stream 3: error tier2_mismatch " + segKey(3) + ": segment 3 is not the object the manifest recorded: ",
		"stream 3: error tier2_missing " + goneChunk + ": manifest chunk " + fmt.Sprint(chunks[0].Index) + " is flagged uploaded but is not in tier 2",
	}, trimAfter(lines, "recorded: ", "remains in "), "exactly the three objects:\n%s", out)
	require.Regexp(t, `a copy remains in tier 0( and tier 1)? \(the host uploads it again at its next start\)$`, lines[0])
	require.Contains(t, lines[1], "etag ", "an overwritten object has another etag")
	require.Contains(t, lines[1], "metadata segment 2, want 3")
	require.Contains(t, errOut, "3 findings")
	require.NotRegexp(t, `: ok \(`, out)

	// The same as JSON: code, key and severity per finding.
	code, out, errOut = runVerify(t, ctx, bin, "-data-dir", dataDir, "--json")
	require.Equal(t, exitIO, code, errOut)
	var res []verifyResult
	require.NoError(t, json.Unmarshal([]byte(out), &res), out)
	require.Len(t, res, 1)
	require.True(t, res[0].Tier2.Checked)
	var got []string
	for _, f := range res[0].Findings {
		got = append(got, fmt.Sprintf("%s %s %s", f.Severity, f.Code, f.Key))
	}
	require.Equal(t, []string{"error tier2_missing " + segKey(1), "error tier2_mismatch " + segKey(3), "error tier2_missing " + goneChunk}, got)

	// A damaged object (the backend's own checks fail) is a mismatch too.
	damaged := layout.ManifestChunkKey(stream, chunks[1].Index)
	require.NoError(t, os.WriteFile(fsObjectPath(root, damaged), []byte("not an object"), 0o640))
	code, out, errOut = runVerify(t, ctx, bin, "-data-dir", dataDir, "-stream", "3")
	require.Equal(t, exitIO, code, "%s%s", out, errOut)
	require.Len(t, findingLines(out), 4, out)
	require.Regexp(t, `(?m)^stream 3: error tier2_mismatch `+damaged+`: manifest chunk \d+: the backend reports the object damaged: `, out)

	// -skip-tier2: the local manifest is sound, and the output says tier 2
	// was not looked at.
	code, out, errOut = runVerify(t, ctx, bin, "-data-dir", dataDir, "-skip-tier2")
	require.Equal(t, exitOK, code, "%s%s", out, errOut)
	require.Equal(t, "note: tier 2 not checked (-skip-tier2): only the local manifests were verified\nstream 3: ok (local only: tier 2 not checked)\n", out)

	// Tier 2 unreachable: no plugin binary, or one that does not start.
	// An error (exit 4) naming what failed, and no "ok".
	empty := t.TempDir()
	code, out, errOut = runVerify(t, ctx, bin, "-data-dir", dataDir, "-plugin-dir", empty)
	require.Equal(t, exitIO, code, "%s%s", out, errOut)
	require.Empty(t, out)
	require.Contains(t, errOut, "tier 2 unreachable")
	require.Contains(t, errOut, filepath.Join(empty, "aof2-plugin-fs"))
	require.Contains(t, errOut, "-skip-tier2")
	broken := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(broken, "aof2-plugin-fs"), []byte("#!/bin/sh\necho 'cannot reach the bucket' >&2\nexit 1\n"), 0o755))
	code, out, errOut = runVerify(t, ctx, bin, "-data-dir", dataDir, "-plugin-dir", broken)
	require.Equal(t, exitIO, code, "%s%s", out, errOut)
	require.Empty(t, out)
	require.Contains(t, errOut, "tier 2 unreachable")
	require.Contains(t, errOut, "cannot reach the bucket")
}

// findingLines are the output lines that report a finding.
func findingLines(out string) []string {
	var l []string
	for _, line := range strings.Split(out, "\n") {
		if strings.HasPrefix(line, "stream ") && !strings.Contains(line, ": ok") {
			l = append(l, line)
		}
	}
	return l
}

// trimAfter cuts each line after the first of seps it contains.
func trimAfter(lines []string, seps ...string) []string {
	out := slices.Clone(lines)
	for i, l := range out {
		for _, sep := range seps {
			if j := strings.Index(l, sep); j >= 0 {
				out[i] = l[:j+len(sep)]
				break
			}
		}
	}
	return out
}

// TestManifestVerifyAfterTrim: a host whose manifest snapshots often
// trims the stream's tier-2 manifest to its last two snapshots and the
// chunks after the older one; `manifest verify` then says ok — the
// trimmed chunks are covered by the snapshots, not missing.
func TestManifestVerifyAfterTrim(t *testing.T) {
	bin := hostBinaries(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	dataDir := filepath.Join(t.TempDir(), "data")
	h := startHost(t, bin, nil, append(defaultHostArgs(dataDir), "-manifest-rotation-period", "5ms",
		"-manifest-chunk-capacity", "16KiB", "-manifest-snapshot-every-chunks", "2")...)
	h.waitReady()
	c := h.dial(ctx)
	const stream = 3
	appendAndSeal(t, ctx, c, stream, 2400)
	manifestDir := filepath.Join(dataDir, "tier2", "objects", "streams.d", "3.d", "manifest.d") // the fs plugin's layout
	testwait.Until(t, time.Minute, 20*time.Millisecond, func() bool {
		snaps, _ := filepath.Glob(filepath.Join(manifestDir, "*.snap.o"))
		first, _ := filepath.Glob(filepath.Join(manifestDir, "00000000000000000000.mlog.o"))
		return len(snaps) == 2 && len(first) == 0
	}, "the tier-2 manifest trimmed to two snapshots")
	h.stop()
	code, out, errOut := runVerify(t, ctx, bin, "-data-dir", dataDir)
	objs, _ := filepath.Glob(filepath.Join(manifestDir, "*"))
	local, _ := filepath.Glob(filepath.Join(dataDir, "streams", "3", "manifest", "*"))
	require.Equal(t, exitOK, code, "%s%s\ntier 2: %v\nlocal: %v", out, errOut, objs, local)
	require.Contains(t, out, "stream 3: ok")
}

// appendAndSeal appends n records of 3,000 bytes to stream in batches of
// 50 and seals it.
func appendAndSeal(t *testing.T, ctx context.Context, c *client.Client, stream client.StreamID, n int) {
	t.Helper()
	payload := bytes.Repeat([]byte{'v'}, 3000)
	for i := 0; i < n; i += 50 {
		batch := make([][]byte, 50)
		for j := range batch {
			batch[j] = fmt.Appendf(slices.Clone(payload), "record-%06d", i+j)
		}
		_, err := c.Append(ctx, stream, batch...)
		require.NoError(t, err)
	}
	_, err := c.Seal(ctx, stream)
	require.NoError(t, err)
}
