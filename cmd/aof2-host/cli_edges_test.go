package main

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestUnknownFlagIsUsage: an unknown flag, a flag without its value or a
// malformed value is a usage error (exit 1) on every command; before, the
// admin commands exited 4, which manifest verify, parity and scrub use for
// "findings".
func TestUnknownFlagIsUsage(t *testing.T) {
	for _, args := range [][]string{
		{"seal", "-bogus"}, {"dump", "-bogus"}, {"restore", "-bogus"}, {"takeover", "-bogus"},
		{"scrub", "-stream"},                      // a flag without its value
		{"hydrate", "-stream", "1", "-from", "x"}, // a malformed value
		{"manifest", "verify", "-skip-tire2"},     // a typo: exit 4 reads as "findings"
	} {
		var out, errOut bytes.Buffer
		code := run(context.Background(), args, &out, &errOut)
		if code != exitUsage {
			lines := strings.Split(strings.TrimSpace(errOut.String()), "\n")
			t.Errorf("%v: exit %d, want %d (usage): %s", args, code, exitUsage, lines[len(lines)-1])
		}
	}
}

// TestSIGTERMDuringStart: SIGTERM while the node starts (here: the plugin
// takes 3 s to come up)
// is a stop request like any other: the host stops, cleanly (exit 0, as
// after SIGTERM once ready), and leaves no plugin process behind.
func TestSIGTERMDuringStart(t *testing.T) {
	bin := hostBinaries(t)
	slow := t.TempDir()
	script := fmt.Sprintf("#!/bin/sh\nsleep 3\nexec %s \"$@\"\n", filepath.Join(bin, "aof2-plugin-fs"))
	require.NoError(t, os.WriteFile(filepath.Join(slow, "aof2-plugin-fs"), []byte(script), 0o755))
	h := startHost(t, bin, nil, append(defaultHostArgs(filepath.Join(t.TempDir(), "data")), "-plugin-dir", slow)...)
	code, _, _ := httpDo(t, http.MethodGet, h.url("/readyz"), "", nil)
	require.Equal(t, http.StatusServiceUnavailable, code, "still starting")
	require.NoError(t, h.cmd.Process.Signal(syscall.SIGTERM))
	select {
	case <-h.exited:
	case <-time.After(60 * time.Second):
		t.Fatalf("host did not stop within 60s after SIGTERM during start\n%s", h.stderr)
	}
	t.Logf("exit: %v\n%s", h.exitErr, h.stderr)
	assert.NoError(t, h.exitErr, "clean exit after SIGTERM during start")
	time.Sleep(4 * time.Second) // past the plugin's start
	assert.Error(t, syscall.Kill(-h.cmd.Process.Pid, 0), "a process of the host's group (the plugin) outlived it")
}
