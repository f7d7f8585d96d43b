package deploy

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestSystemdUnit: `systemd-analyze verify` accepts deploy/systemd/
// aof2.service without a warning (an unknown or misspelt directive is only
// a warning to systemd, so any output fails), with ExecStart pointing at
// an executable that exists here. CI installs systemd-analyze; elsewhere
// the test skips without it.
func TestSystemdUnit(t *testing.T) {
	tool, err := exec.LookPath("systemd-analyze")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("systemd-analyze not installed (.ci/run installs Debian's systemd package)")
		}
		t.Skip("systemd-analyze not installed")
	}
	unit, err := os.ReadFile(filepath.Join("systemd", "aof2.service"))
	require.NoError(t, err)
	src := string(unit)
	for _, want := range []string{"Type=notify", "ExecReload=/bin/kill -HUP $MAINPID", "LimitNOFILE=", "NoNewPrivileges=yes", "ProtectSystem=strict", "StateDirectory=aof2"} {
		require.Contains(t, src, want)
	}
	self, err := os.Executable()
	require.NoError(t, err)
	path := filepath.Join(t.TempDir(), "aof2.service")
	require.NoError(t, os.WriteFile(path, []byte(strings.ReplaceAll(src, "/usr/local/bin/aof2-host", self)), 0o644))
	out, err := exec.Command(tool, "verify", path).CombinedOutput()
	require.NoError(t, err, "%s", out)
	require.Empty(t, strings.TrimSpace(string(out)), "systemd-analyze verify warned")
}
