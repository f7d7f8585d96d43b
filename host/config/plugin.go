package config

import (
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/aof2/aof2/core/tier2"
	"github.com/aof2/aof2/pluginapi"
	pluginhost "github.com/aof2/aof2/pluginapi/host"
)

// PluginPrefix starts every backend plugin binary's name.
const PluginPrefix = "aof2-plugin-"

// errNoTier2 is the cause when a plugin is asked of a config without one.
var errNoTier2 = errors.New("no tier 2 is configured (tier2.enabled = false or tier2.plugin = \"\")")

// PluginPath finds the binary of tier2.plugin: aof2-plugin-<name> in
// plugin_dir, or, when that is empty, in the directory of the host
// binary. $PATH is never searched, so what runs is what the operator
// installed beside the host. A missing binary is an error naming
// tier2.plugin and the paths tried.
func (c *Config) PluginPath() (string, error) {
	if !c.Tier2Enabled() {
		return "", c.keyError("tier2.plugin", c.Tier2.Plugin, "cannot resolve a plugin", errNoTier2)
	}
	if c.pluginPath != "" {
		return c.pluginPath, nil
	}
	dir, err := c.pluginDir()
	if err != nil {
		return "", err
	}
	path := filepath.Join(dir, PluginPrefix+c.Tier2.Plugin)
	fi, err := os.Stat(path)
	switch {
	case err != nil:
		return "", c.keyError("tier2.plugin", c.Tier2.Plugin, fmt.Sprintf("no plugin binary: tried %s", path), err)
	case !fi.Mode().IsRegular() || fi.Mode().Perm()&0o111 == 0:
		return "", c.keyError("tier2.plugin", c.Tier2.Plugin, fmt.Sprintf("%s is not an executable file", path), nil)
	}
	c.pluginPath = path
	return path, nil
}

func (c *Config) pluginDir() (string, error) {
	if c.PluginDir != "" {
		return c.PluginDir, nil // absolute since Load
	}
	exe := c.opts.executable
	if exe == nil {
		exe = os.Executable
	}
	path, err := exe()
	if err != nil {
		return "", c.keyError("plugin_dir", "", "is empty and the host binary's directory is unknown; set plugin_dir", err)
	}
	return filepath.Dir(path), nil
}

// PluginLaunch says how to start and configure the tier-2 plugin. The
// plugin inherits pluginhost.DefaultEnvAllowList plus tier2.env_allow,
// receives tier2.settings, and may read and write files only under
// data_dir (ConfigureRequest.StagingDir), because the host hands it
// segment files by path. The host still fills in Logger.
func (c *Config) PluginLaunch() (pluginhost.LaunchConfig, error) {
	path, err := c.PluginPath()
	if err != nil {
		return pluginhost.LaunchConfig{}, err
	}
	// Load made data_dir and the fs root absolute: the plugin refuses
	// relative paths.
	settings := maps.Clone(c.Tier2.Settings)
	allow := slices.Clone(pluginhost.DefaultEnvAllowList)
	for _, n := range c.Tier2.EnvAllow {
		if !slices.Contains(allow, n) {
			allow = append(allow, n)
		}
	}
	return pluginhost.LaunchConfig{
		Name:            c.Tier2.Plugin,
		Path:            path,
		SHA256:          strings.ToLower(c.Tier2.SHA256),
		DisableAutoMTLS: c.Tier2.DisableAutoMTLS,
		StartTimeout:    c.Tier2.StartTimeout,
		EnvAllowList:    allow,
		Configure:       pluginapi.ConfigureRequest{Config: settings, StagingDir: c.DataDir},
	}, nil
}

// ProbeKey is the key of the scratch object `plugins check -write` writes,
// reads back and deletes: "<tier2.prefix>/_aof2-probe/<nonce>", inside the
// prefix like every object the host writes, so credentials scoped to the
// prefix pass the check exactly when they let serve work.
func (c *Config) ProbeKey(nonce uint64) string {
	l, _ := tier2.NewLayout(c.Tier2.Prefix) // the prefix was checked at load
	return l.Prefix() + "_aof2-probe/" + strconv.FormatUint(nonce, 10)
}
