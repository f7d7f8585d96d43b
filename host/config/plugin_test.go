package config

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/aof2/aof2/pluginapi"
	pluginhost "github.com/aof2/aof2/pluginapi/host"
)

func loadWithPlugins(t *testing.T, exe string, env map[string]string, args ...string) (*Config, error) {
	t.Helper()
	var environ []string
	for k, v := range env {
		environ = append(environ, k+"="+v)
	}
	return Load(args, environ, WithDefaultFile(""), WithExecutable(func() (string, error) { return exe, nil }))
}

func TestPluginResolution(t *testing.T) {
	binDir, pluginDir := t.TempDir(), t.TempDir()
	exe := filepath.Join(binDir, "aof2-host")
	next := fakePlugin(t, binDir, "fs")
	inDir := fakePlugin(t, pluginDir, "s3")
	require.NoError(t, os.WriteFile(filepath.Join(pluginDir, "aof2-plugin-noexec"), []byte("x"), 0o644))
	require.NoError(t, os.Mkdir(filepath.Join(pluginDir, "aof2-plugin-dir"), 0o755))

	t.Run("next to the host binary", func(t *testing.T) {
		c, err := loadWithPlugins(t, exe, nil)
		require.NoError(t, err)
		p, err := c.PluginPath()
		require.NoError(t, err)
		require.Equal(t, next, p)
	})
	t.Run("plugin_dir", func(t *testing.T) {
		c, err := loadWithPlugins(t, exe, map[string]string{"AOF2_PLUGIN_DIR": pluginDir, "AOF2_TIER2_PLUGIN": "s3"})
		require.NoError(t, err)
		p, err := c.PluginPath()
		require.NoError(t, err)
		require.Equal(t, inDir, p)
	})
	t.Run("plugin_dir is the only place looked at", func(t *testing.T) {
		_, err := loadWithPlugins(t, exe, nil, "-plugin-dir", pluginDir)
		require.ErrorContains(t, err, `tier2.plugin = "fs": no plugin binary: tried `+filepath.Join(pluginDir, "aof2-plugin-fs"))
	})
	t.Run("PATH is not searched", func(t *testing.T) {
		_, err := loadWithPlugins(t, exe, map[string]string{"PATH": pluginDir}, "-tier2-plugin", "s3")
		require.ErrorContains(t, err, "tier2.plugin")
		require.ErrorContains(t, err, filepath.Join(binDir, "aof2-plugin-s3"))
	})
	t.Run("not executable", func(t *testing.T) {
		_, err := loadWithPlugins(t, exe, nil, "-plugin-dir", pluginDir, "-tier2-plugin", "noexec")
		require.ErrorContains(t, err, "is not an executable file")
	})
	t.Run("directory", func(t *testing.T) {
		_, err := loadWithPlugins(t, exe, nil, "-plugin-dir", pluginDir, "-tier2-plugin", "dir")
		require.ErrorContains(t, err, "is not an executable file")
	})
	t.Run("no tier 2, no lookup", func(t *testing.T) {
		c, err := loadWithPlugins(t, exe, nil, "-plugin-dir", pluginDir, "-tier2-enabled=false")
		require.NoError(t, err)
		_, err = c.PluginLaunch()
		require.ErrorContains(t, err, "no tier 2 is configured")
	})
}

func TestPluginLaunch(t *testing.T) {
	dir := t.TempDir()
	fakePlugin(t, dir, "s3")
	fakePlugin(t, dir, "fs")
	sum := "ABCDEF0123456789abcdef0123456789abcdef0123456789abcdef0123456789"

	c, err := loadWithPlugins(t, "", nil, "-plugin-dir", dir, "-data-dir", "/srv/aof2", "-tier2-plugin", "s3",
		"-tier2-sha256", sum, "-tier2-disable-auto-mtls", "-tier2-start-timeout", "3s",
		"-tier2-env-allow", "AWS_PROFILE,HOME", "-tier2-settings", "bucket=b")
	require.NoError(t, err)
	l, err := c.PluginLaunch()
	require.NoError(t, err)
	require.Equal(t, "s3", l.Name)
	require.Equal(t, filepath.Join(dir, "aof2-plugin-s3"), l.Path)
	require.Equal(t, "abcdef0123456789abcdef0123456789abcdef0123456789abcdef0123456789", l.SHA256)
	require.True(t, l.DisableAutoMTLS)
	require.Equal(t, "3s", l.StartTimeout.String())
	require.Equal(t, append(append([]string{}, pluginhost.DefaultEnvAllowList...), "AWS_PROFILE"), l.EnvAllowList)
	require.Equal(t, map[string]string{"bucket": "b"}, l.Configure.Config)
	require.Equal(t, "/srv/aof2", l.Configure.StagingDir)

	// A relative fs root means the working directory, like data_dir: Load
	// makes both absolute (the plugin refuses relative paths).
	c, err = loadWithPlugins(t, "", nil, "-plugin-dir", dir, "-tier2-settings", "root=objects")
	require.NoError(t, err)
	l, err = c.PluginLaunch()
	require.NoError(t, err)
	wd, err := os.Getwd()
	require.NoError(t, err)
	require.Equal(t, filepath.Join(wd, "objects"), l.Configure.Config["root"])
	require.Equal(t, filepath.Join(wd, "objects"), c.Tier2.Settings["root"], "absolute in the Config too (dump and logs show it)")
	require.Equal(t, filepath.Join(wd, "data"), l.Configure.StagingDir)
}

// TestProbeKeyUnderPrefix: the write probe's object lies inside
// tier2.prefix (a policy scoped to bucket/prefix/* allows it); it used to
// be prefix + "_aof2-probe/…", beside the prefix.
func TestProbeKeyUnderPrefix(t *testing.T) {
	for prefix, want := range map[string]string{
		"":           "_aof2-probe/42",
		"prod/aof2":  "prod/aof2/_aof2-probe/42",
		"prod/aof2/": "prod/aof2/_aof2-probe/42",
	} {
		c := mustLoad(t, "", nil, "-tier2-prefix", prefix)
		key := c.ProbeKey(42)
		require.Equal(t, want, key, "prefix %q", prefix)
		require.NoError(t, pluginapi.ValidateKey(key))
	}
}
