package config

import (
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"

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
		dir, err := filepath.Abs(c.PluginDir)
		if err != nil {
			return "", c.keyError("plugin_dir", c.PluginDir, "cannot make it absolute", err)
		}
		return dir, nil
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
	staging, err := filepath.Abs(c.DataDir)
	if err != nil {
		return pluginhost.LaunchConfig{}, c.keyError("data_dir", c.DataDir, "cannot make it absolute", err)
	}
	settings := maps.Clone(c.Tier2.Settings)
	if root := settings["root"]; c.Tier2.Plugin == "fs" && root != "" && !filepath.IsAbs(root) {
		// The fs backend wants an absolute root; a relative one means the
		// host's working directory, as data_dir does.
		if settings["root"], err = filepath.Abs(root); err != nil {
			return pluginhost.LaunchConfig{}, c.keyError("tier2.settings.root", root, "cannot make it absolute", err)
		}
	}
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
		Configure:       pluginapi.ConfigureRequest{Config: settings, StagingDir: staging},
	}, nil
}
