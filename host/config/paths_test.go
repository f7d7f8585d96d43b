package config

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/aof2/aof2/core/types"
	"github.com/aof2/aof2/internal/testcert"
)

// TestRelativePathsBecomeAbsolute: every path key written relative (file,
// environment or flag) is absolute after Load, from the working directory,
// so the plugin (which refuses relative local paths) and the core packages
// see one spelling. Before, data_dir stayed "./data" and every upload
// failed with `local path "data/streams/…": must be absolute`.
func TestRelativePathsBecomeAbsolute(t *testing.T) {
	t.Chdir(t.TempDir())
	cert, key := testcert.Files(t, ".")
	writeFile(t, ".", "token", "s3cret\n")
	c := mustLoad(t, `
data_dir   = "var/aof2"
plugin_dir = "./bin/../bin"
listen {
  auth_token_file = "token"
  tls {
    cert_file      = "`+filepath.Base(cert)+`"
    key_file       = "`+filepath.Base(key)+`"
    client_ca_file = "`+filepath.Base(cert)+`"
  }
}
`, nil)
	require.Equal(t, inWD(t, "var", "aof2"), c.DataDir)
	require.Equal(t, inWD(t, "bin"), c.PluginDir)
	require.Equal(t, inWD(t, "token"), c.Listen.AuthTokenFile)
	require.Equal(t, inWD(t, "cert.pem"), c.Listen.TLS.CertFile)
	require.Equal(t, inWD(t, "key.pem"), c.Listen.TLS.KeyFile)
	require.Equal(t, inWD(t, "cert.pem"), c.Listen.TLS.ClientCAFile)
	require.Equal(t, "s3cret", c.Token())
	require.Equal(t, inWD(t, "var", "aof2", "tier2"), c.Tier2.Settings["root"], "the fs root follows the absolute data_dir")
	require.Equal(t, c.DataDir, c.CoordinatorConfig().DataDir)

	c = mustLoad(t, "", map[string]string{"AOF2_DATA_DIR": "./d"}, "-tier2-settings", "root=objects")
	require.Equal(t, inWD(t, "d"), c.DataDir, "from the environment")
	require.Equal(t, inWD(t, "objects"), c.Tier2.Settings["root"], "an fs root given relative")

	c = mustLoad(t, "", nil, "-tier2-plugin", "gcs", "-tier2-settings", "credentials_file=sa.json", "-tier2-settings", "bucket=rel/name")
	require.Equal(t, inWD(t, "sa.json"), c.Tier2.Settings["credentials_file"])
	require.Equal(t, "rel/name", c.Tier2.Settings["bucket"], "settings that are not paths are left alone")

	c = mustLoad(t, "", nil, "-data-dir", "/srv//aof2/")
	require.Equal(t, "/srv/aof2", c.DataDir, "absolute paths are only cleaned")
}

// TestRelativePathWithoutWorkingDirectory: when the working directory is
// gone a relative path cannot be resolved; the error names the key.
func TestRelativePathWithoutWorkingDirectory(t *testing.T) {
	gone := filepath.Join(t.TempDir(), "gone")
	require.NoError(t, os.Mkdir(gone, 0o755))
	t.Chdir(gone)
	require.NoError(t, os.Remove(gone))

	_, err := load(t, "", nil, "-data-dir", "data", "-listen-auth-token-file", "token")
	require.ErrorIs(t, err, types.ErrInvalidConfig)
	var ce *Error
	require.ErrorAs(t, err, &ce)
	require.Equal(t, "data_dir", ce.Key)
	require.Contains(t, err.Error(), `data_dir = "data": cannot make the relative path absolute`)
	require.Contains(t, err.Error(), `listen.auth_token_file = "token"`, "every key is reported at once")

	_, err = load(t, "", nil, "-data-dir", "/abs/data", "-tier2-settings", "root=objects")
	require.ErrorContains(t, err, `tier2.settings.root = "objects": cannot make the relative path absolute`)
}

// TestPluginPathSettingsExist: the settings made absolute are settings the
// plugins know.
func TestPluginPathSettingsExist(t *testing.T) {
	for backend, names := range pluginPathSettings {
		known := pluginConfigKeys(t, backend)
		for _, n := range names {
			require.Contains(t, known, n, "%s setting %q", backend, n)
		}
	}
}
