package main

import (
	"bufio"
	"bytes"
	"context"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestServeBanner: with JSON logs the banner ("serving" with the bound
// addresses, "ready") is JSON lines on stderr, even at log level error,
// and stdout stays empty; with text logs it is also printed plainly on
// stdout.
func TestServeBanner(t *testing.T) {
	bin := hostBinaries(t)
	for _, tc := range []struct {
		format    string
		stdoutHas []string
	}{
		{"json", nil},
		{"text", []string{"serving [grpc=127.0.0.1:", "aof2-host ready"}},
	} {
		t.Run(tc.format, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			args := append([]string{"serve"}, defaultHostArgs(filepath.Join(t.TempDir(), "data"))...)
			cmd := exec.CommandContext(ctx, filepath.Join(bin, "aof2-host"), append(args, "-log-format", tc.format, "-log-level", "error")...)
			var stdout bytes.Buffer
			cmd.Stdout = &stdout
			errR, err := cmd.StderrPipe()
			require.NoError(t, err)
			require.NoError(t, cmd.Start())
			var addrs [3]string
			served := false
			sc := bufio.NewScanner(errR)
			for sc.Scan() {
				line := sc.Text()
				if tc.format == "json" {
					if a, ok := bannerAddrs(line); ok {
						addrs, served = a, true
					}
				} else if bytes.Contains([]byte(line), []byte("aof2: serving: ")) && bytes.Contains([]byte(line), []byte(" grpc=127.0.0.1:")) {
					served = true
				}
				if bannerReady(line) || bytes.Contains([]byte(line), []byte("aof2: ready")) {
					break
				}
			}
			require.True(t, served, "a serving line on stderr")
			if tc.format == "json" {
				require.NotEmpty(t, addrs[0])
				require.NotEmpty(t, addrs[1])
			}
			require.NoError(t, cmd.Process.Signal(syscall.SIGTERM))
			go func() { _, _ = bufio.NewReader(errR).WriteTo(&bytes.Buffer{}) }()
			require.NoError(t, cmd.Wait())
			if tc.stdoutHas == nil {
				require.Empty(t, stdout.String(), "JSON logs: nothing plain on stdout")
			}
			for _, s := range tc.stdoutHas {
				require.Contains(t, stdout.String(), s)
			}
		})
	}
}
