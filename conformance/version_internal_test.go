package conformance

import (
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/aof2/aof2/pluginapi"
)

func TestPluginOfNamesTheCertifiedExecutable(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "aof2-plugin-x")
	require.NoError(t, os.WriteFile(bin, []byte("not really a plugin"), 0o700))
	sum := sha256.Sum256([]byte("not really a plugin"))

	p, err := pluginOf(&Binary{Path: bin})
	require.NoError(t, err)
	require.Equal(t, &PluginBinary{Path: bin, SHA256: hex.EncodeToString(sum[:]), Size: 19}, p)

	_, err = pluginOf(&Binary{Path: filepath.Join(t.TempDir(), "missing")})
	require.Error(t, err)

	p, err = pluginOf(&InProcess{})
	require.NoError(t, err)
	require.Nil(t, p)

	p, err = pluginOf(&Reattach{Addr: pluginapi.Reattach{}})
	require.NoError(t, err)
	require.Nil(t, p, "a reattach address without a pid names no executable")

	if runtime.GOOS == "linux" {
		self, err := os.Executable()
		require.NoError(t, err)
		p, err = pluginOf(&Reattach{Addr: pluginapi.Reattach{Pid: os.Getpid()}})
		require.NoError(t, err)
		require.NotNil(t, p)
		want, err := hashPlugin(self)
		require.NoError(t, err)
		require.Equal(t, want.SHA256, p.SHA256)
	}
}
