package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil/promlint"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/aof2/aof2/client"
	"github.com/aof2/aof2/core"
	"github.com/aof2/aof2/host/dump"
	"github.com/aof2/aof2/internal/testwait"
)

// TestServeEndToEnd drives a real host through gRPC, HTTP and the admin
// commands: appends across many rollovers with a small tier 0 so segments
// move to tiers 1 and 2, reads everything back (cold segments included),
// tails, and stops it with SIGTERM while a tail is open.
func TestServeEndToEnd(t *testing.T) {
	bin := hostBinaries(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	dataDir := filepath.Join(t.TempDir(), "data")
	h := startHost(t, bin, nil, defaultHostArgs(dataDir)...)
	h.waitReady()
	c := h.dial(ctx)

	const n = 4000
	payload := func(i int) []byte { return fmt.Appendf(bytes.Repeat([]byte{'x'}, 3000), "record-%06d", i) }
	var ids []client.RecordID
	var tail *client.Tailer
	for i := 0; i < n; i += 50 {
		batch := make([][]byte, 50)
		for j := range batch {
			batch[j] = payload(i + j)
		}
		got, err := c.Append(ctx, 7, batch...)
		require.NoError(t, err)
		ids = append(ids, got...)
		if i == 0 {
			tail, err = c.Tail(ctx, 7, client.AtStart()) // the stream exists now
			require.NoError(t, err)
		}
	}
	require.Len(t, ids, n)
	for i := range 100 {
		rec, err := tail.Next(ctx)
		require.NoError(t, err)
		require.Equal(t, payload(i), rec.Payload, "tail record %d", i)
	}
	tail.Close()
	info, err := c.Seal(ctx, 7)
	require.NoError(t, err)
	require.Equal(t, uint64(n), info.Records)

	// Tiering: with 12 MiB written through a 6 MiB tier 0, sealed
	// segments reach tier 2 and the oldest leave tier 0.
	var d *dump.Dump
	require.Eventually(t, func() bool {
		var out, errOut bytes.Buffer
		code := run(ctx, []string{"dump", "-addr", h.grpc, "--json"}, &out, &errOut)
		require.Equal(t, exitOK, code, errOut.String())
		d = &dump.Dump{}
		require.NoError(t, jsonUnmarshal(out.Bytes(), d))
		return d.Tiers[2].Segments == len(d.Streams[0].Segments) && d.Tiers[0].Segments < len(d.Streams[0].Segments) &&
			d.Streams[0].Segments[0].Residency == "uploaded_to_tier2"
	}, time.Minute, 50*time.Millisecond, "segments reach tier 2 and leave tiers 0 and 1")
	var out, errOut bytes.Buffer
	require.Equal(t, exitOK, run(ctx, []string{"segments", "list", "-addr", h.grpc, "-stream", "7", "-tier", "2"}, &out, &errOut), errOut.String())
	require.Regexp(t, `(?m)^7\s+1\s+0\s+\d+\s+\d+\s+true\s+-\s+-\s+yes\s+uploaded_to_tier2$`, out.String(),
		"the first segment left tiers 0 and 1 and is in tier 2")

	// Read everything back through gRPC: cold segments hydrate.
	pos, got := client.AtStart(), 0
	for {
		res, err := c.Read(ctx, 7, pos, 500)
		require.NoError(t, err)
		for _, r := range res.Records {
			require.Equal(t, payload(got), r.Payload)
			require.Equal(t, ids[got], r.ID)
			got++
		}
		if res.End {
			break
		}
		pos = res.Next
	}
	require.Equal(t, n, got)

	// HTTP: append and read like curl would.
	code, body, _ := httpDo(t, http.MethodPost, h.url("/v1/streams/8/records"), "", strings.NewReader("hello over http"))
	require.Equal(t, http.StatusOK, code, body)
	code, body, _ = httpDo(t, http.MethodGet, h.url("/v1/streams/8/records?text=1"), "", nil)
	require.Equal(t, http.StatusOK, code, body)
	require.Contains(t, body, "hello over http")
	code, body, _ = httpDo(t, http.MethodGet, h.url("/v1/streams/8"), "", nil)
	require.Equal(t, http.StatusOK, code, body)
	code, body, _ = httpDo(t, http.MethodGet, h.url("/metrics"), "", nil)
	require.Equal(t, http.StatusOK, code)
	for _, m := range []string{"aof_append_records_total", "aof_tier2_requests_total", "aof_manifest_replay_chunk_lag_seconds", "aof_plugin_restarts_total", "aof2_build_info{goversion=\"go"} {
		require.Contains(t, body, m)
	}

	// Admin commands against the running host.
	out.Reset()
	require.Equal(t, exitOK, run(ctx, []string{"hydrate", "-addr", h.grpc, "-stream", "7"}, &out, &errOut), errOut.String())
	require.Contains(t, out.String(), "segments in tier 0")
	require.Equal(t, exitOK, run(ctx, []string{"flush", "-addr", h.grpc, "-stream", "8"}, &out, &errOut), errOut.String())
	require.Equal(t, exitNotFound, run(ctx, []string{"seal", "-addr", h.grpc, "-stream", "999"}, &out, &errOut))
	require.Equal(t, exitOK, run(ctx, []string{"bench", "-addr", h.grpc, "-clients", "4", "-records", "400", "-stream", "9"}, &out, &errOut), errOut.String())
	require.Contains(t, out.String(), "400 records in")
	for _, mode := range [][]string{{"-mode", "stream", "-per-call", "10", "-batch", "2"}, {"-mode", "http", "-http-addr", h.http}, {"-mode", "http", "-http-addr", h.http, "-batch", "3"}, {"-conns", "1"}, {"-mode", "idempotent", "-batch", "2"}} {
		out.Reset()
		args := append([]string{"bench", "-addr", h.grpc, "-clients", "2", "-records", "120", "-stream", "9"}, mode...)
		require.Equal(t, exitOK, run(ctx, args, &out, &errOut), "%v: %s", mode, errOut.String())
		require.Contains(t, out.String(), "120 records in", mode)
	}
	// The scrape of a host that moved data through every tier passes
	// promtool's metric lint (client_golang's promlint, what `promtool
	// check metrics` runs), but for the seed's mandated names.
	code, body, _ = httpDo(t, http.MethodGet, h.url("/metrics"), "", nil)
	require.Equal(t, http.StatusOK, code)
	requireMetricLint(t, body)
	c9, err := c.Info(ctx, 9)
	require.NoError(t, err)
	require.Equal(t, uint64(400+5*120), c9.Records, "every record a bench call acknowledged is in the stream")
	out.Reset()
	require.Equal(t, exitOK, run(ctx, []string{"bench", "-addr", h.grpc, "-clients", "4", "-records", "200", "-stream", "10", "-streams", "2"}, &out, &errOut), errOut.String())
	require.Contains(t, out.String(), "streams 10-11")
	c10, err := c.Info(ctx, 10)
	require.NoError(t, err)
	c11, err := c.Info(ctx, 11)
	require.NoError(t, err)
	require.Equal(t, uint64(200), c10.Records+c11.Records, "-streams spreads the clients")
	require.Positive(t, c10.Records)
	require.Positive(t, c11.Records)

	// SIGTERM with a tail open: the tail ends, the host exits cleanly.
	tail, err = c.Tail(ctx, 8, client.AtStart())
	require.NoError(t, err)
	_, err = tail.Next(ctx)
	require.NoError(t, err)
	h.stop()
	_, err = tail.Next(ctx)
	require.Error(t, err)

	// Offline admin commands on the stopped host's data directory.
	out.Reset()
	require.Equal(t, exitOK, run(ctx, []string{"manifest", "verify", "-data-dir", dataDir, "-plugin-dir", bin}, &out, &errOut), "%s%s", out.String(), errOut.String())
	require.Equal(t, exitOK, run(ctx, []string{"manifest", "parity", "-data-dir", dataDir, "-stream", "7"}, &out, &errOut), "%s%s", out.String(), errOut.String())
	out.Reset()
	require.Equal(t, exitOK, run(ctx, []string{"manifest", "inspect", "-data-dir", dataDir, "-stream", "7"}, &out, &errOut), errOut.String())
	require.Contains(t, out.String(), "stream 7 manifest")
	out.Reset()
	require.Equal(t, exitOK, run(ctx, []string{"dump", "-data-dir", dataDir}, &out, &errOut), errOut.String())
	require.Contains(t, out.String(), "AOF2 dump (offline)")
}

// TestServeBadInput: every kind of bad request gets its status, and the
// host stays up; with a token configured, requests without it are refused.
func TestServeBadInput(t *testing.T) {
	bin := hostBinaries(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	const token = "s3cret-token"
	h := startHost(t, bin, []string{"AOF2_LISTEN_AUTH_TOKEN=" + token}, defaultHostArgs(filepath.Join(t.TempDir(), "data"))...)
	h.waitReady()
	code, body, _ := httpDo(t, http.MethodPost, h.url("/v1/streams/1/records"), token, strings.NewReader("first"))
	require.Equal(t, http.StatusOK, code, body)

	big := strings.Repeat("x", 2<<20) // over a 1 MiB segment's maximum record
	for _, tc := range []struct {
		name, method, path, token, body string
		want                            int
	}{
		{"no token", http.MethodPost, "/v1/streams/1/records", "", "x", http.StatusUnauthorized},
		{"bad token", http.MethodGet, "/v1/streams/1", "wrong", "", http.StatusUnauthorized},
		{"oversized record", http.MethodPost, "/v1/streams/1/records", token, big, http.StatusRequestEntityTooLarge},
		{"empty record", http.MethodPost, "/v1/streams/1/records", token, "", http.StatusBadRequest},
		{"unknown stream on read", http.MethodGet, "/v1/streams/424242/records", token, "", http.StatusNotFound},
		{"malformed id", http.MethodGet, "/v1/streams/1/records?from=abc", token, "", http.StatusBadRequest},
		{"id mid-record", http.MethodGet, "/v1/streams/1/records?from=1:65", token, "", http.StatusBadRequest},
		{"malformed stream id", http.MethodGet, "/v1/streams/-3", token, "", http.StatusBadRequest},
		{"bad JSON", http.MethodPost, "/v1/streams/1/records", token, `{"records": [`, http.StatusBadRequest},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, err := http.NewRequest(tc.method, h.url(tc.path), strings.NewReader(tc.body))
			require.NoError(t, err)
			if tc.token != "" {
				req.Header.Set("Authorization", "Bearer "+tc.token)
			}
			if strings.HasPrefix(tc.body, "{") {
				req.Header.Set("Content-Type", "application/json")
			}
			resp, err := httpClient.Do(req)
			require.NoError(t, err)
			resp.Body.Close()
			require.Equal(t, tc.want, resp.StatusCode)
			code, _, _ := httpDo(t, http.MethodGet, h.url("/healthz"), "", nil)
			require.Equal(t, http.StatusOK, code, "the host stays up")
		})
	}

	// gRPC: no token, wrong token, then the right one.
	_, err := h.dial(ctx).Info(ctx, 1)
	require.ErrorIs(t, err, client.ErrUnauthenticated)
	var out, errOut bytes.Buffer
	require.Equal(t, exitAuth, run(ctx, []string{"dump", "-addr", h.grpc, "-token", "wrong"}, &out, &errOut))
	c := h.dial(ctx, client.WithToken(token))
	_, err = c.Append(ctx, 1, []byte(big))
	require.ErrorIs(t, err, core.ErrRecordTooLarge)
	_, err = c.Read(ctx, 5555, client.AtStart(), 1)
	require.ErrorIs(t, err, core.ErrUnknownStream)
	info, err := c.Info(ctx, 1)
	require.NoError(t, err)
	require.Equal(t, uint64(1), info.Records)
	h.stop()
}

// TestServeReadyzDuringRecovery: /healthz answers and /readyz says 503
// while the node starts (here: a plugin that takes a second to start),
// then 200.
func TestServeReadyzDuringRecovery(t *testing.T) {
	bin := hostBinaries(t)
	slow := t.TempDir()
	script := fmt.Sprintf("#!/bin/sh\nsleep 1\nexec %s \"$@\"\n", filepath.Join(bin, "aof2-plugin-fs"))
	require.NoError(t, os.WriteFile(filepath.Join(slow, "aof2-plugin-fs"), []byte(script), 0o755))
	h := startHost(t, bin, nil, append(defaultHostArgs(filepath.Join(t.TempDir(), "data")), "-plugin-dir", slow)...)
	code, _, _ := httpDo(t, http.MethodGet, h.url("/healthz"), "", nil)
	require.Equal(t, http.StatusOK, code)
	code, _, _ = httpDo(t, http.MethodGet, h.url("/readyz"), "", nil)
	require.Equal(t, http.StatusServiceUnavailable, code, "not ready while recovering")
	code, _, _ = httpDo(t, http.MethodPost, h.url("/v1/streams/1/records"), "", strings.NewReader("early"))
	require.Equal(t, http.StatusServiceUnavailable, code, "appends wait for recovery")
	h.waitReady()
	code, _, _ = httpDo(t, http.MethodGet, h.url("/readyz"), "", nil)
	require.Equal(t, http.StatusOK, code)
	h.stop()
}

func jsonUnmarshal(b []byte, v any) error {
	if err := json.Unmarshal(b, v); err != nil {
		return errors.Join(err, fmt.Errorf("in %q", b))
	}
	return nil
}

// TestServeCtrlC: a terminal's Ctrl-C sends SIGINT to the whole foreground
// process group, the plugin included. The plugin ignores it (go-plugin's
// server does) and the host drains, flushes and stops the plugin itself:
// a clean exit with no warning or error logged.
func TestServeCtrlC(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	bin := hostBinaries(t)
	h := startHost(t, bin, nil, defaultHostArgs(filepath.Join(t.TempDir(), "data"))...)
	h.waitReady()
	c := h.dial(ctx)
	for i := range 50 {
		_, err := c.Append(ctx, 1, []byte(fmt.Sprintf("record %d", i)))
		require.NoError(t, err)
	}
	require.NoError(t, syscall.Kill(-h.cmd.Process.Pid, syscall.SIGINT))
	select {
	case <-h.exited:
	case <-time.After(60 * time.Second):
		t.Fatalf("host did not stop within 60s after SIGINT to its group\n%s", h.stderr)
	}
	require.NoError(t, h.exitErr, "clean exit after Ctrl-C\n%s", h.stderr)
	for _, level := range []string{`"@level":"warn"`, `"@level":"error"`} {
		assert.NotContains(t, h.stderr.String(), level)
	}
}

// TestServeAdminListener: listen.admin serves Go's runtime profiles on its
// own listener, behind the token; the client API's HTTP listener never
// serves them, and without listen.admin nothing does.
func TestServeAdminListener(t *testing.T) {
	bin := hostBinaries(t)
	h := startHost(t, bin, nil, append(defaultHostArgs(filepath.Join(t.TempDir(), "data")),
		"-listen-admin", "127.0.0.1:0", "-listen-auth-token", "s3cret")...)
	h.waitReady()
	require.NotEmpty(t, h.admin, "the banner names the admin address")
	code, _, _ := httpDo(t, http.MethodGet, "http://"+h.admin+"/debug/pprof/", "", nil)
	require.Equal(t, http.StatusUnauthorized, code, "behind the token")
	code, body, _ := httpDo(t, http.MethodGet, "http://"+h.admin+"/debug/pprof/", "s3cret", nil)
	require.Equal(t, http.StatusOK, code, body)
	require.Contains(t, body, "goroutine")
	code, body, _ = httpDo(t, http.MethodGet, "http://"+h.admin+"/debug/pprof/heap?debug=1", "s3cret", nil)
	require.Equal(t, http.StatusOK, code)
	require.Contains(t, body, "heap profile")
	code, _, _ = httpDo(t, http.MethodGet, h.url("/debug/pprof/"), "s3cret", nil)
	require.Equal(t, http.StatusNotFound, code, "not on the client API's listener")
}

// TestServeSIGHUPReloads: SIGHUP rereads the configuration and applies
// what may change on a running host — the log level, the tier-0 and
// tier-1 budgets, a rotated token file — and names the keys that need a
// restart; a configuration that does not load is refused whole and the
// host goes on. Before, SIGHUP ended the process.
func TestServeSIGHUPReloads(t *testing.T) {
	bin := hostBinaries(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	dir := t.TempDir()
	tokenFile := filepath.Join(dir, "token")
	require.NoError(t, os.WriteFile(tokenFile, []byte("old-token\n"), 0o600))
	cfgFile := filepath.Join(dir, "aof2.hcl")
	writeCfg := func(level, tier0, segSize string) {
		src := fmt.Sprintf("data_dir = %q\nlog_level = %q\nlisten {\n  grpc = \"127.0.0.1:0\"\n  http = \"127.0.0.1:0\"\n  auth_token_file = %q\n}\n"+
			"segment {\n  size = %q\n}\ntier0 {\n  max_bytes = %q\n}\n", filepath.Join(dir, "data"), level, tokenFile, segSize, tier0)
		require.NoError(t, os.WriteFile(cfgFile, []byte(src), 0o600))
	}
	writeCfg("warn", "64MiB", "1MiB")
	h := startHost(t, bin, nil, "-config", cfgFile)
	h.waitReady()
	tier0Max := func(tok string) int64 {
		var out, errOut bytes.Buffer
		require.Equal(t, exitOK, run(ctx, []string{"dump", "-addr", h.grpc, "-token", tok, "--json"}, &out, &errOut), errOut.String())
		var d dump.Dump
		require.NoError(t, jsonUnmarshal(out.Bytes(), &d))
		return d.Tiers[0].MaxBytes
	}
	require.Equal(t, int64(64<<20), tier0Max("old-token"))

	writeCfg("debug", "32MiB", "2MiB")
	require.NoError(t, os.WriteFile(tokenFile, []byte("new-token\n"), 0o600))
	require.NoError(t, h.cmd.Process.Signal(syscall.SIGHUP))
	testwait.Until(t, time.Minute, 20*time.Millisecond, func() bool { return strings.Contains(h.stderr.String(), "configuration reloaded") },
		"the reload to be logged")
	log := h.stderr.String()
	require.Contains(t, log, `"applied":["log_level","tier0.max_bytes","listen.auth_token_file (content)"]`)
	require.Contains(t, log, `"needs_restart":["segment.size"]`)
	require.Equal(t, int64(32<<20), tier0Max("new-token"))
	var out, errOut bytes.Buffer
	require.Equal(t, exitAuth, run(ctx, []string{"dump", "-addr", h.grpc, "-token", "old-token"}, &out, &errOut), "the rotated token is the only one")

	// Not a valid configuration: refused whole, the host goes on.
	require.NoError(t, os.WriteFile(cfgFile, []byte("segment {\n  sise = 1\n}\n"), 0o600))
	require.NoError(t, h.cmd.Process.Signal(syscall.SIGHUP))
	testwait.Until(t, time.Minute, 20*time.Millisecond, func() bool { return strings.Contains(h.stderr.String(), "configuration reload refused") },
		"the refusal to be logged")
	require.Equal(t, int64(32<<20), tier0Max("new-token"), "still serving, with the last applied values")
	h.stop()
}

// metricLintExceptions are names the original AOF2 documentation mandates
// (deploy/README.md, "Metrics this depends on"), kept though promtool's
// lint would name them otherwise.
var metricLintExceptions = map[string]bool{
	"aof_manifest_replay_corruption_events": true,
	"aof_manifest_replay_chunk_count":       true,
}

// requireMetricLint fails on every promlint problem of a scrape outside
// metricLintExceptions.
func requireMetricLint(t *testing.T, scrape string) {
	t.Helper()
	problems, err := promlint.New(strings.NewReader(scrape)).Lint()
	require.NoError(t, err)
	var bad []string
	for _, p := range problems {
		if !metricLintExceptions[p.Metric] {
			bad = append(bad, p.Metric+": "+p.Text)
		}
	}
	require.Empty(t, bad, "promtool check metrics would report these")
}

// TestServeNotifiesSystemd: under systemd (Type=notify, $NOTIFY_SOCKET)
// the host says READY=1 once it serves, RELOADING=1 and READY=1 around a
// SIGHUP reload, and STOPPING=1 on SIGTERM (deploy/systemd/aof2.service).
func TestServeNotifiesSystemd(t *testing.T) {
	bin := hostBinaries(t)
	sock := filepath.Join(t.TempDir(), "notify")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	require.NoError(t, err)
	defer conn.Close()
	msgs := make(chan string, 16)
	go func() {
		buf := make([]byte, 4096)
		for {
			n, _, err := conn.ReadFromUnix(buf)
			if err != nil {
				close(msgs)
				return
			}
			msgs <- string(buf[:n])
		}
	}()
	h := startHost(t, bin, []string{"NOTIFY_SOCKET=" + sock}, defaultHostArgs(filepath.Join(t.TempDir(), "data"))...)
	require.Equal(t, "READY=1\nSTATUS=serving", testwait.Recv(t, msgs, testwait.Default, "READY=1"))
	require.NoError(t, h.cmd.Process.Signal(syscall.SIGHUP))
	require.Regexp(t, `^RELOADING=1\nMONOTONIC_USEC=\d+$`, testwait.Recv(t, msgs, testwait.Default, "RELOADING=1"))
	require.Equal(t, "READY=1\nSTATUS=serving", testwait.Recv(t, msgs, testwait.Default, "READY=1 after the reload"))
	h.stop()
	require.Equal(t, "STOPPING=1", testwait.Recv(t, msgs, testwait.Default, "STOPPING=1"))
}

// TestServeUploadsPause: `uploads pause` holds a running host's segment
// uploads back (the gauge says so, a sealed segment stays out of tier 2),
// `uploads resume` lets them go on; both need -addr.
func TestServeUploadsPause(t *testing.T) {
	bin := hostBinaries(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	h := startHost(t, bin, nil, defaultHostArgs(filepath.Join(t.TempDir(), "data"))...)
	h.waitReady()
	var out, errOut bytes.Buffer
	require.Equal(t, exitUsage, run(ctx, []string{"uploads", "pause"}, &out, &errOut), "offline: refused")
	require.Equal(t, exitOK, run(ctx, []string{"uploads", "pause", "-addr", h.grpc}, &out, &errOut), errOut.String())
	require.Contains(t, out.String(), "segment uploads paused")
	_, body, _ := httpDo(t, http.MethodGet, h.url("/metrics"), "", nil)
	require.Contains(t, body, "aof_tier2_uploads_paused 1")

	c := h.dial(ctx)
	appendAndSeal(t, ctx, c, 5, 100)
	tier2Segments := func() int {
		var out, errOut bytes.Buffer
		require.Equal(t, exitOK, run(ctx, []string{"dump", "-addr", h.grpc, "--json"}, &out, &errOut), errOut.String())
		var d dump.Dump
		require.NoError(t, jsonUnmarshal(out.Bytes(), &d))
		return d.Tiers[2].Segments
	}
	time.Sleep(50 * 20 * time.Millisecond) // fifty scans
	require.Zero(t, tier2Segments(), "nothing uploaded while paused")

	require.Equal(t, exitOK, run(ctx, []string{"uploads", "resume", "-addr", h.grpc}, &out, &errOut), errOut.String())
	testwait.Until(t, time.Minute, 20*time.Millisecond, func() bool { return tier2Segments() > 0 }, "the upload once resumed")
	_, body, _ = httpDo(t, http.MethodGet, h.url("/metrics"), "", nil)
	require.Contains(t, body, "aof_tier2_uploads_paused 0")
}

// TestServeSegmentsRetire: `segments retire` deletes a stream's oldest
// segments through the running host's retention, and refuses a range
// past the newest segment.
func TestServeSegmentsRetire(t *testing.T) {
	bin := hostBinaries(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	h := startHost(t, bin, nil, defaultHostArgs(filepath.Join(t.TempDir(), "data"))...)
	h.waitReady()
	c := h.dial(ctx)
	for range 3 {
		appendAndSeal(t, ctx, c, 6, 50)
	}
	var out, errOut bytes.Buffer
	require.Equal(t, exitUsage, run(ctx, []string{"segments", "retire", "-addr", h.grpc, "-stream", "6", "-below", "99"}, &out, &errOut))
	require.Contains(t, errOut.String(), "past its newest")
	require.Equal(t, exitUsage, run(ctx, []string{"segments", "retire", "-stream", "6", "-below", "2"}, &out, &errOut), "offline: refused")
	out.Reset()
	require.Equal(t, exitOK, run(ctx, []string{"segments", "retire", "-addr", h.grpc, "-stream", "6", "-below", "3"}, &out, &errOut), errOut.String())
	require.Contains(t, out.String(), "stream 6: 2 segments below 3 to retire")
	// The first 50 records filled segments 1 (the stream's small first
	// segment) and 2: retiring below 3 drops records 0 to 49.
	var info client.StreamInfo
	testwait.Until(t, time.Minute, 20*time.Millisecond, func() bool {
		var err error
		info, err = c.Info(ctx, 6)
		require.NoError(t, err)
		return info.FirstOrdinal == 50
	}, "segments 1 and 2 retired: %+v\n%s", lazyInfo{&info}, h.stderr)
	_, err := c.Read(ctx, 6, client.AtOrdinal(0), 1)
	require.Error(t, err, "records below the first kept one are gone")
	res, err := c.Read(ctx, 6, client.AtStart(), 1)
	require.NoError(t, err)
	require.Equal(t, uint64(50), res.Records[0].Ordinal)
}

// lazyInfo prints the stream info it points at when formatted.
type lazyInfo struct{ info *client.StreamInfo }

func (l lazyInfo) String() string { return fmt.Sprintf("%+v", *l.info) }
