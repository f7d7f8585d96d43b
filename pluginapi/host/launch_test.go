package host_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/stretchr/testify/require"

	"github.com/aof2/aof2/conformance"
	"github.com/aof2/aof2/pluginapi"
	"github.com/aof2/aof2/pluginapi/host"
)

func quietLogger() hclog.Logger {
	return hclog.New(&hclog.LoggerOptions{Name: "host", Level: hclog.Error, Output: io.Discard})
}

func launch(t *testing.T, path string, args []string, mutate func(*host.LaunchConfig)) (*host.Plugin, error) {
	t.Helper()
	cfg := host.LaunchConfig{Path: path, Args: args, Logger: quietLogger(), StartTimeout: 5 * time.Second}
	if mutate != nil {
		mutate(&cfg)
	}
	p, err := host.Launch(t.Context(), cfg)
	if p != nil {
		t.Cleanup(p.Kill)
	}
	return p, err
}

func TestLaunchHandshakeAndRoundTrip(t *testing.T) {
	for _, mtls := range []bool{true, false} {
		t.Run(map[bool]string{true: "automtls", false: "plain"}[mtls], func(t *testing.T) {
			p, err := launch(t, bin(t, "testplugin"), []string{"ok"}, func(c *host.LaunchConfig) {
				c.DisableAutoMTLS = !mtls
				c.Configure.ChunkSize = pluginapi.MinChunkSize
			})
			require.NoError(t, err)
			require.Equal(t, "fake", p.Advertised.Name)
			require.EqualValues(t, pluginapi.ContractMajor, p.Advertised.ContractMajor)
			require.Equal(t, pluginapi.MinChunkSize, p.ChunkSize)
			data := bytes.Repeat([]byte("aof2"), 100000)
			_, err = p.Put(t.Context(), pluginapi.PutRequest{Key: "a/b", Size: uint64(len(data)), CRC64: pluginapi.CRC64(data)}, bytes.NewReader(data))
			require.NoError(t, err)
			_, rc, err := p.Get(t.Context(), pluginapi.GetRequest{Key: "a/b"})
			require.NoError(t, err)
			got, err := io.ReadAll(rc)
			require.NoError(t, err)
			require.Equal(t, data, got)
			p.Kill()
			require.True(t, p.Exited(), "Kill must wait for the process")
		})
	}
}

// Every way a plugin can fail to start is a clear, typed error, within the
// start timeout, naming the plugin.
func TestLaunchFailuresAreTyped(t *testing.T) {
	tp := bin(t, "testplugin")
	notExec := filepath.Join(t.TempDir(), "not-executable")
	require.NoError(t, os.WriteFile(notExec, []byte("#!/bin/sh\n"), 0o644))
	cases := []struct {
		name   string
		path   string
		args   []string
		mutate func(*host.LaunchConfig)
		want   error
		detail string
	}{
		{"stdout before Serve", tp, []string{"stdout"}, nil, host.ErrBadHandshake, "starting up"},
		{"wrong cookie", tp, []string{"cookie"}, nil, host.ErrCookieMismatch, ""},
		{"unknown contract major", tp, []string{"v2"}, nil, host.ErrIncompatibleVersion, "Plugin version: 2"},
		{"hangs at start", tp, []string{"hang"}, func(c *host.LaunchConfig) { c.StartTimeout = time.Second }, host.ErrStartTimeout, ""},
		{"exits at start", tp, []string{"exit"}, nil, host.ErrExitedAtStart, "giving up at start"},
		{"not a plugin", tp, []string{"notplugin"}, nil, host.ErrBadHandshake, "usage"},
		{"missing binary", filepath.Join(t.TempDir(), "nope"), nil, nil, host.ErrLaunch, ""},
		{"not executable", notExec, nil, nil, host.ErrLaunch, ""},
		{"sha256 pin mismatch", tp, []string{"ok"}, func(c *host.LaunchConfig) { c.SHA256 = strings.Repeat("ab", 32) }, host.ErrBinaryChecksum, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			start := time.Now()
			_, err := launch(t, c.path, c.args, c.mutate)
			elapsed := time.Since(start)
			require.ErrorIs(t, err, c.want)
			var se *host.StartError
			require.ErrorAs(t, err, &se)
			require.Contains(t, err.Error(), filepath.Base(c.path))
			if c.detail != "" {
				require.Contains(t, err.Error(), c.detail)
			}
			limit := 5 * time.Second
			if c.mutate != nil && c.name == "hangs at start" {
				limit = time.Second
			}
			require.Less(t, elapsed, limit+3*time.Second, "took %v", elapsed)
		})
	}
}

func TestLaunchContractChecks(t *testing.T) {
	tp := bin(t, "testplugin")
	_, err := launch(t, tp, []string{"badinfo"}, nil)
	require.ErrorIs(t, err, pluginapi.ErrContractViolation)
	_, err = launch(t, tp, []string{"authfail"}, nil)
	require.ErrorIs(t, err, pluginapi.ErrAuth)
	require.Contains(t, err.Error(), "Probe")
	_, err = launch(t, tp, []string{"ok"}, func(c *host.LaunchConfig) {
		c.Configure.Config = map[string]string{"no_such_setting": "x"}
	})
	require.ErrorIs(t, err, pluginapi.ErrInvalidConfig)
	require.Contains(t, err.Error(), "no_such_setting")
}

func TestLaunchSHA256PinAccepted(t *testing.T) {
	tp := bin(t, "testplugin")
	data, err := os.ReadFile(tp)
	require.NoError(t, err)
	sum := sha256.Sum256(data)
	_, err = launch(t, tp, []string{"ok"}, func(c *host.LaunchConfig) { c.SHA256 = hex.EncodeToString(sum[:]) })
	require.NoError(t, err)
}

func TestLaunchPassesOnlyAllowListedEnvironment(t *testing.T) {
	t.Setenv("AOF2_TEST_SECRET", "must-not-leak")
	p, err := launch(t, bin(t, "testplugin"), []string{"env"}, func(c *host.LaunchConfig) {
		c.Env = []string{"AOF2_EXPLICIT=1"}
	})
	require.NoError(t, err)
	names := strings.Split(p.Advertised.Version, ",")
	require.Contains(t, names, "AOF2_EXPLICIT")
	require.Contains(t, names, "PATH")
	require.NotContains(t, names, "AOF2_TEST_SECRET")
	for _, n := range names {
		allowed := n == "AOF2_EXPLICIT" || strings.HasPrefix(n, "PLUGIN_") || n == pluginapi.Handshake.MagicCookieKey
		for _, a := range host.DefaultEnvAllowList {
			allowed = allowed || n == a
		}
		require.True(t, allowed, "the plugin inherited %s", n)
	}
}

func TestStartErrorMessage(t *testing.T) {
	err := error(&host.StartError{Plugin: "p", Kind: host.ErrStartTimeout, Detail: "d", Stderr: "s"})
	require.True(t, errors.Is(err, host.ErrStartTimeout))
	require.Equal(t, `plugin "p": plugin did not complete the handshake within the start timeout: d; plugin stderr: s`, err.Error())
}

// The suite's binary harness flags a plugin that ignores the host's
// shutdown (go-plugin has to SIGKILL it), and passes one that exits.
func TestConformanceChecksShutdown(t *testing.T) {
	for mode, fails := range map[string]bool{"ok": false, "stubborn": true} {
		h := &conformance.Binary{Path: bin(t, "testplugin"), Launch: host.LaunchConfig{Args: []string{mode}, Logger: quietLogger()}}
		rep := conformance.Certify(t.Context(), h, conformance.Options{Run: "^Info$"})
		require.Equal(t, !fails, rep.OK(), "%s: %+v", mode, rep.Cases)
		if fails {
			last := rep.Cases[len(rep.Cases)-1]
			require.Equal(t, "Shutdown", last.Name)
			require.Equal(t, []string{"EXIT"}, last.Rules)
		}
	}
}
