package main

import (
	"context"
	"fmt"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/aof2/aof2/core/vfs"
	"github.com/aof2/aof2/host/config"
	"github.com/aof2/aof2/host/node"
	"github.com/aof2/aof2/pluginapi"
	pluginhost "github.com/aof2/aof2/pluginapi/host"
)

// runPluginsCheck launches the configured tier-2 plugin the way serve
// does (binary lookup, sha256 pin, data_dir created, handshake, contract
// check, Configure, Probe), prints what it advertises, and stops it.
func runPluginsCheck(ctx context.Context, e *cmdEnv) error {
	cfgPath := e.flags.String("config", "", "host config file naming the plugin (default: $AOF2_CONFIG, else ./aof2.hcl, else the fs default)")
	write := e.flags.Bool("write", false, "make the probe write, read back and delete a scratch object (<tier2.prefix>/_aof2-probe/<n>)")
	if _, err := e.parse(0, 0); err != nil {
		return err
	}
	var args []string
	if *cfgPath != "" {
		args = []string{"-config", *cfgPath}
	}
	cfg, err := config.Load(args, os.Environ())
	if err != nil {
		return usageError{err}
	}
	if !cfg.Tier2Enabled() {
		return usagef("no tier-2 plugin is configured (tier2.plugin is empty or tier2.enabled is false)")
	}
	return checkPluginLaunch(ctx, e, cfg, *write)
}

// checkPluginLaunch launches cfg's plugin as serve does, prints what it
// advertises and the probe's outcome, and stops it.
func checkPluginLaunch(ctx context.Context, e *cmdEnv, cfg *config.Config, write bool) error {
	launch, err := cfg.PluginLaunch()
	if err != nil {
		return err
	}
	// The plugin checks every local path against data_dir (its staging
	// directory), which must exist: create it as serve does.
	if err := vfs.MkdirAllSync(vfs.OS, cfg.DataDir); err != nil {
		return fmt.Errorf("create data directory: %w", err)
	}
	if write {
		launch.ProbeWriteKey = cfg.ProbeKey(uint64(time.Now().UnixNano()))
	}
	t0 := time.Now()
	p, err := pluginhost.Launch(ctx, launch)
	if err != nil {
		return err
	}
	defer p.Kill()
	in := p.Advertised
	tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "plugin\t%s (%s)\n", launch.Name, launch.Path)
	fmt.Fprintf(tw, "backend\t%s %s\n", in.Name, in.Version)
	fmt.Fprintf(tw, "contract\tv%d.%d (host speaks v%d.%d)\n", in.ContractMajor, in.ContractMinor, pluginapi.ContractMajor, pluginapi.ContractMinor)
	c := in.Capabilities
	fmt.Fprintf(tw, "capabilities\trange_get=%v put_file=%v get_file=%v if_absent=%v if_match=%v list=%v\n",
		c.RangeGet, c.PutFile, c.GetFile, c.IfAbsent, c.IfMatch, c.List)
	if missing := node.MissingCapabilities(c, false); len(missing) > 0 {
		fmt.Fprintf(tw, "warning\ta writer host refuses this backend: it lacks %s (docs/plugin-contract.md#capabilities-the-host-uses)\n", strings.Join(missing, ", "))
	}
	l := in.Limits
	fmt.Fprintf(tw, "limits\tmax_object=%d max_streams=%d max_metadata=%d preferred_chunk=%d\n",
		l.MaxObjectSize, l.MaxConcurrentStreams, l.MaxMetadataBytes, l.PreferredChunkSize)
	fmt.Fprintf(tw, "chunk size\t%d (negotiated)\n", p.ChunkSize)
	probe := "read-only probe ok"
	if write {
		probe = "write probe ok (" + launch.ProbeWriteKey + ")"
	}
	fmt.Fprintf(tw, "probe\t%s in %v\n", probe, time.Since(t0).Round(time.Millisecond))
	return tw.Flush()
}
