package main

import (
	"context"
	"fmt"

	"github.com/hashicorp/go-hclog"

	"github.com/aof2/aof2/core/coordinator"
)

// runTakeover makes this node the writer of the configured prefix
// (docs/adr-fencing.md): the writer record's epoch + 1 with this data
// directory's node id, written on condition that the record did not
// change since it was read.
func runTakeover(ctx context.Context, e *cmdEnv) error {
	cfgPath := e.flags.String("config", "", "host config file to take data_dir and the plugin from")
	dataDir := e.flags.String("data-dir", "", "data directory of the node taking over (default: the config's data_dir, else ./data)")
	pluginDir := e.flags.String("plugin-dir", "", "directory of the aof2-plugin-<name> binaries (default: the config's plugin_dir, else this binary's directory)")
	if _, err := e.parse(0, 0); err != nil {
		return err
	}
	cfg, release, err := lockForPrefix(*cfgPath, *dataDir, *pluginDir, "takeover claims a tier-2 prefix", "stop this node's host before taking over")
	if err != nil {
		return err
	}
	defer func() { _ = release() }()
	sess, err := openTier2(ctx, cfg, hclog.New(&hclog.LoggerOptions{Name: "aof2", Level: hclog.Warn, Output: e.stderr}))
	if err != nil {
		return err
	}
	defer sess.close()
	rec, err := coordinator.Takeover(ctx, nil, cfg.DataDir, sess.store)
	if err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "node %s (%s) is the writer of %s at epoch %d; the previous writer is fenced at its next tier-2 write\n",
		rec.NodeID, rec.Host, sess.desc, rec.Epoch)
	return nil
}
