package host_test

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/aof2/aof2/pluginapi"
	"github.com/aof2/aof2/pluginapi/host"
)

// TestHelperHost is not a test: TestPluginExitsWhenHostDies runs the test
// binary as a host process that starts a plugin, prints the plugin's pid
// and waits to be killed.
func TestHelperHost(t *testing.T) {
	mode := os.Getenv("AOF2_HELPER_HOST")
	if mode == "" {
		t.Skip("helper process for TestPluginExitsWhenHostDies")
	}
	plugin := os.Getenv("AOF2_HELPER_PLUGIN")
	switch mode {
	case "launch": // the host path: Pdeathsig set by Launch
		p, err := host.Launch(context.Background(), host.LaunchConfig{Path: plugin, Args: []string{"ok"}, Logger: quietLogger()})
		if err != nil {
			fmt.Println("error:", err)
			os.Exit(1)
		}
		fmt.Println(p.Pid())
	case "raw": // no parent-death signal: only the plugin's parent watch helps
		cmd := exec.Command(plugin, "ok")
		cmd.Env = append(os.Environ(), pluginapi.Handshake.MagicCookieKey+"="+pluginapi.Handshake.MagicCookieValue, "PLUGIN_PROTOCOL_VERSIONS=1")
		out, _ := cmd.StdoutPipe()
		if err := cmd.Start(); err != nil {
			fmt.Println("error:", err)
			os.Exit(1)
		}
		_, _ = bufio.NewReader(out).ReadString('\n') // the handshake line
		fmt.Println(cmd.Process.Pid)
	}
	time.Sleep(time.Minute)
	os.Exit(0)
}

// alive reports whether pid is a live process (a zombie is not).
func alive(pid int) bool {
	stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return syscall.Kill(pid, 0) == nil
	}
	fields := strings.Fields(string(stat[strings.LastIndexByte(string(stat), ')')+1:]))
	return len(fields) > 0 && fields[0] != "Z"
}

// A host killed with SIGKILL leaves no orphan plugin: the parent-death
// signal ends it at once, and without one the plugin's own parent watch
// ends it within a couple of seconds.
func TestPluginExitsWhenHostDies(t *testing.T) {
	for _, mode := range []string{"launch", "raw"} {
		t.Run(mode, func(t *testing.T) {
			cmd := exec.Command(os.Args[0], "-test.run=^TestHelperHost$")
			cmd.Env = append(os.Environ(), "AOF2_HELPER_HOST="+mode, "AOF2_HELPER_PLUGIN="+bin(t, "testplugin"))
			out, err := cmd.StdoutPipe()
			require.NoError(t, err)
			require.NoError(t, cmd.Start())
			line, err := bufio.NewReader(out).ReadString('\n')
			require.NoError(t, err)
			pid, err := strconv.Atoi(strings.TrimSpace(line))
			require.NoError(t, err, "helper said %q", line)
			require.True(t, alive(pid))
			killed := time.Now()
			require.NoError(t, cmd.Process.Kill())
			_ = cmd.Wait()
			defer func() { t.Logf("plugin gone %v after its host", time.Since(killed)) }()
			require.Eventually(t, func() bool { return !alive(pid) }, 5*time.Second, 20*time.Millisecond,
				"plugin %d outlived its host (%s)", pid, mode)
		})
	}
}
