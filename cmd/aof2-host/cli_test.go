package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/aof2/aof2/internal/testbin"
	"github.com/aof2/aof2/pluginapi"
)

// TestEveryCommandHasHelp: `-h` on every command exits 0 and prints its
// synopsis and an example; `help <command>` does the same.
func TestEveryCommandHasHelp(t *testing.T) {
	for _, c := range commands {
		t.Run(c.name, func(t *testing.T) {
			for _, args := range [][]string{append(strings.Fields(c.name), "-h"), append([]string{"help"}, strings.Fields(c.name)...)} {
				var out, errOut bytes.Buffer
				require.Equal(t, exitOK, run(context.Background(), args, &out, &errOut), "%v", args)
				help := errOut.String()
				require.Contains(t, help, "usage: aof2-host "+c.name)
				require.Contains(t, help, "example:\n  aof2-host ")
			}
		})
	}
}

// TestExitCodes covers the admin commands' usage and not-found paths
// offline (the e2e tests cover auth and the online paths).
func TestExitCodes(t *testing.T) {
	missing := t.TempDir() + "/nope"
	for _, tc := range []struct {
		args []string
		code int
	}{
		{[]string{"segments"}, exitUsage},
		{[]string{"manifest", "inspect"}, exitUsage},
		{[]string{"manifest", "inspect", "-stream", "x"}, exitUsage},
		{[]string{"manifest", "inspect", "-stream", "1", "-data-dir", missing}, exitNotFound},
		{[]string{"manifest", "verify", "-data-dir", missing}, exitNotFound},
		{[]string{"manifest", "verify", "-addr", "127.0.0.1:1"}, exitUsage},
		{[]string{"manifest", "inspect", "-stream", "1", "-addr", "127.0.0.1:1"}, exitUsage},
		{[]string{"manifest", "parity", "-addr", "127.0.0.1:1"}, exitUsage},
		{[]string{"dump", "-data-dir", missing}, exitNotFound},
		{[]string{"segments", "list", "-tier", "7", "-data-dir", missing}, exitUsage},
		{[]string{"seal"}, exitUsage},
		{[]string{"hydrate", "-stream", "1", "-from", "5", "-to", "2"}, exitUsage},
		{[]string{"bench"}, exitUsage},
		{[]string{"bench", "-addr", "127.0.0.1:1", "-mode", "carrier-pigeon"}, exitUsage},
		{[]string{"bench", "-mode", "http"}, exitUsage},
		{[]string{"bench", "-addr", "127.0.0.1:1", "-mode", "stream", "-per-call", "0"}, exitUsage},
		{[]string{"bench", "-addr", "127.0.0.1:1", "-clients", "2", "-conns", "3"}, exitUsage},
		{[]string{"bench", "-addr", "127.0.0.1:1", "-clients", "2", "-streams", "3"}, exitUsage},
		{[]string{"bench", "-mode", "http", "-http-addr", "127.0.0.1:1", "-conns", "1"}, exitUsage},
		{[]string{"dump", "extra"}, exitUsage},
		{[]string{"serve", "-segment-size", "12345"}, exitUsage},
		{[]string{"serve", "-no-such-flag"}, exitUsage},
	} {
		var out, errOut bytes.Buffer
		require.Equal(t, tc.code, run(context.Background(), tc.args, &out, &errOut), "%v: %s", tc.args, errOut.String())
	}
}

// TestUnreachableHostIsAnError: a command against an address nobody
// listens on fails after -connect-timeout instead of waiting for ever.
func TestUnreachableHostIsAnError(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close())
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for _, args := range [][]string{
		{"bench", "-addr", addr, "-connect-timeout", "200ms", "-duration", "1s"},
		{"cluster", "status", "-addr", addr, "-connect-timeout", "200ms"},
	} {
		var out, errOut bytes.Buffer
		require.Equal(t, exitIO, run(ctx, args, &out, &errOut), "%v: %s", args, errOut.String())
		require.Contains(t, errOut.String(), "-connect-timeout", "%v", args)
		require.NoError(t, ctx.Err(), "%v waited for the test's own deadline", args)
	}
}

// TestVersion: `version`, -version and --version print the build and the
// contract versions; --json has every field.
func TestVersion(t *testing.T) {
	ctx := context.Background()
	for _, args := range [][]string{{"version"}, {"-version"}, {"--version"}} {
		var out, errOut bytes.Buffer
		require.Equal(t, exitOK, run(ctx, args, &out, &errOut), errOut.String())
		require.Regexp(t, `^aof2-host \S+ \(revision \S+, built \S+, go\S+ \w+/\w+\)\nclient API: v1\nplugin contract: v1\.\d+\n$`, out.String(), "%v", args)
	}
	var out, errOut bytes.Buffer
	require.Equal(t, exitOK, run(ctx, []string{"--version", "--json"}, &out, &errOut), errOut.String())
	var v map[string]string
	require.NoError(t, json.Unmarshal(out.Bytes(), &v), out.String())
	for _, k := range []string{"version", "revision", "build_date", "go_version", "platform", "client_api", "plugin_contract"} {
		require.NotEmpty(t, v[k], k)
	}
	require.Equal(t, fmt.Sprintf("v%d.%d", pluginapi.ContractMajor, pluginapi.ContractMinor), v["plugin_contract"])
	require.Equal(t, exitUsage, run(ctx, []string{"version", "extra"}, &out, &errOut))
}

// TestPluginVersion: every plugin binary answers -version with its build
// and the contract version, without the host handshake.
func TestPluginVersion(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the plugin binaries")
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	plugins := []string{"aof2-plugin-fs", "aof2-plugin-s3", "aof2-plugin-gcs", "aof2-plugin-azure"}
	dir := testbin.Dir(t, plugins...)
	for _, name := range plugins {
		out, err := exec.CommandContext(ctx, filepath.Join(dir, name), "-version").CombinedOutput()
		require.NoError(t, err, "%s: %s", name, out)
		require.Regexp(t, `^`+name+` \S+ \(revision \S+, built \S+, go\S+ \w+/\w+\)\nplugin contract: v1\.\d+\n$`, string(out))
	}
}

// TestConfigCommands: `config reference` prints every key (text and the
// Markdown of docs/config.md); `config validate` accepts what serve would
// and refuses what serve would, naming the file, line and key, with
// serve's flags; -check-plugin launches and probes the plugin (the real
// binaries: the fs plugin next to the host).
func TestConfigCommands(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var out, errOut bytes.Buffer
	require.Equal(t, exitOK, run(ctx, []string{"config", "reference"}, &out, &errOut), errOut.String())
	require.Contains(t, out.String(), "segment.size  (size, default 64MiB)\n    env AOF2_SEGMENT_SIZE, flag -segment-size\n")
	out.Reset()
	require.Equal(t, exitOK, run(ctx, []string{"config", "reference", "-format", "markdown"}, &out, &errOut), errOut.String())
	require.Contains(t, out.String(), "| `segment.size` | size | `64MiB` | `AOF2_SEGMENT_SIZE` | `-segment-size` |")
	require.Equal(t, exitUsage, run(ctx, []string{"config", "reference", "-format", "yaml"}, &out, &errOut))

	dir := t.TempDir()
	good := filepath.Join(dir, "good.hcl")
	require.NoError(t, os.WriteFile(good, []byte("data_dir = \""+filepath.Join(dir, "data")+"\"\ntier2 {\n  enabled = false\n}\n"), 0o600))
	out.Reset()
	require.Equal(t, exitOK, run(ctx, []string{"config", "validate", "-config", good}, &out, &errOut), errOut.String())
	require.Contains(t, out.String(), "config ok: "+good+"\n")
	require.Contains(t, out.String(), "tier2     none\n")
	out.Reset()
	errOut.Reset()
	require.Equal(t, exitUsage, run(ctx, []string{"config", "validate", "-config", good, "-segment-size", "3MiB"}, &out, &errOut), "serve's flags are checked too")
	require.Contains(t, errOut.String(), "segment.size")
	bad := filepath.Join(dir, "bad.hcl")
	require.NoError(t, os.WriteFile(bad, []byte("tier2 {\n  enabled = false\n}\nsegment {\n  sise = \"1MiB\"\n}\n"), 0o600))
	errOut.Reset()
	require.Equal(t, exitUsage, run(ctx, []string{"config", "validate", "-config", bad}, &out, &errOut))
	require.Contains(t, errOut.String(), "bad.hcl:5")
	require.Contains(t, errOut.String(), "sise")

	if testing.Short() {
		return
	}
	bin := hostBinaries(t)
	code, stdout, stderr := runHostCmd(t, ctx, bin, nil, "config", "validate", "-data-dir", filepath.Join(dir, "data"), "-check-plugin")
	require.Equal(t, exitOK, code, stderr)
	require.Regexp(t, `tier2     plugin fs \(\S+aof2-plugin-fs\), prefix ""\n`, stdout)
	require.Regexp(t, `probe\s+read-only probe ok`, stdout)
}

// TestOfflineCommandsRefuseAClusterMember: an offline command on a cluster
// member's data directory would change its store outside the Raft log
// (seal its tail, fill a damaged range, upload to tier 2): refused, with
// the member named by its configuration or by the Raft directory it holds.
func TestOfflineCommandsRefuseAClusterMember(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, os.MkdirAll(filepath.Join(dir, "raft"), 0o755))
	for _, args := range [][]string{
		{"repair", "-stream", "1", "-accept-loss", "-data-dir", dir},
		{"seal", "-stream", "1", "-data-dir", dir},
		{"scrub", "-data-dir", dir},
	} {
		var out, errOut bytes.Buffer
		require.Equal(t, exitUsage, run(context.Background(), args, &out, &errOut), "%v: %s", args, errOut.String())
		require.Contains(t, errOut.String(), "is a cluster member's data directory (it holds the Raft directory "+filepath.Join(dir, "raft")+")", "%v", args)
		require.NoDirExists(t, filepath.Join(dir, "streams"), "nothing opened")
	}
	env := filepath.Join(t.TempDir(), "member.hcl")
	require.NoError(t, os.WriteFile(env, []byte("cluster {\n  node_id = \"n1\"\n  raft_addr = \"127.0.0.1:7500\"\n}\n"), 0o644))
	data := t.TempDir()
	var out, errOut bytes.Buffer
	require.Equal(t, exitUsage, run(context.Background(), []string{"repair", "-stream", "1", "-accept-loss", "-config", env, "-data-dir", data}, &out, &errOut), errOut.String())
	require.Contains(t, errOut.String(), "(cluster.node_id is set)")
}
