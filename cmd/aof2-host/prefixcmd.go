package main

import (
	"errors"

	"github.com/aof2/aof2/host/config"
	"github.com/aof2/aof2/host/node"
)

// lockForPrefix is the start the offline commands that act on the tier-2
// prefix share (takeover, restore, promote): the configuration, which
// must name a tier-2 plugin, and the data directory's lock, held until
// release. noTier2 and busy complete the usage errors: why the command
// needs a tier 2, and what to stop first.
func lockForPrefix(cfgPath, dataDir, pluginDir, noTier2, busy string) (cfg *config.Config, release func() error, err error) {
	cfg, err = loadVerifyConfig(cfgPath, dataDir, pluginDir)
	if err != nil {
		return nil, nil, err
	}
	if !cfg.Tier2Enabled() {
		return nil, nil, usagef("%s, and no tier-2 plugin is configured (tier2.enabled = false or tier2.plugin = \"\")", noTier2)
	}
	release, err = node.Lock(cfg.DataDir)
	if errors.Is(err, node.ErrLocked) {
		return nil, nil, usagef("%v: %s", err, busy)
	}
	if err != nil {
		return nil, nil, err
	}
	return cfg, release, nil
}
