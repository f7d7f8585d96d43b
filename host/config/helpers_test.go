package config

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

// load writes src (when not empty) to a file and loads it with env and
// extra args, without looking for a plugin binary.
func load(t *testing.T, src string, env map[string]string, args ...string) (*Config, error) {
	t.Helper()
	if src != "" {
		path := writeFile(t, t.TempDir(), "aof2.hcl", src)
		args = append([]string{"-config", path}, args...)
	}
	var environ []string
	for k, v := range env {
		environ = append(environ, k+"="+v)
	}
	return Load(args, environ, WithDefaultFile(""), SkipPluginLookup())
}

func mustLoad(t *testing.T, src string, env map[string]string, args ...string) *Config {
	t.Helper()
	c, err := load(t, src, env, args...)
	require.NoError(t, err)
	return c
}

func writeFile(t *testing.T, dir, name, content string) string {
	t.Helper()
	path := filepath.Join(dir, name)
	require.NoError(t, os.WriteFile(path, []byte(content), 0o600))
	return path
}

// fakePlugin writes an executable aof2-plugin-<name> into dir.
func fakePlugin(t *testing.T, dir, name string) string {
	t.Helper()
	path := filepath.Join(dir, PluginPrefix+name)
	require.NoError(t, os.WriteFile(path, []byte("#!/bin/sh\nexit 1\n"), 0o755))
	return path
}

// inWD joins elem under the working directory: what Load makes of a
// relative path.
func inWD(t *testing.T, elem ...string) string {
	t.Helper()
	wd, err := os.Getwd()
	require.NoError(t, err)
	return filepath.Join(append([]string{wd}, elem...)...)
}
