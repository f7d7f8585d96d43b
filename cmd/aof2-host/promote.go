package main

import (
	"context"
	"fmt"
	"path/filepath"

	"github.com/hashicorp/go-hclog"

	"github.com/aof2/aof2/core/coordinator"
	"github.com/aof2/aof2/core/vfs"
	"github.com/aof2/aof2/host/node"
)

// replicaOld is where promote moves a replica's streams while the
// writer's history is restored in their place.
const replicaOld = "replica.old"

// runPromote turns a stopped read replica's data directory into the
// prefix's writer (docs/tiering.md#read-replicas): a takeover, then a
// restore of every stream in place of the replica's. A replica's local
// manifests describe what it followed, not the writer's history, so they
// are set aside and the history is installed from tier 2 as restore
// does; the warm cache stays and is adopted where it verifies.
// Interrupted, it is rerun to the same result.
func runPromote(ctx context.Context, e *cmdEnv) error {
	cfgPath := e.flags.String("config", "", "host config file to take data_dir and the plugin from")
	dataDir := e.flags.String("data-dir", "", "data directory of the replica (default: the config's data_dir, else ./data)")
	pluginDir := e.flags.String("plugin-dir", "", "directory of the aof2-plugin-<name> binaries (default: the config's plugin_dir, else this binary's directory)")
	asJSON := e.flags.Bool("json", false, "print the restore report as JSON")
	if _, err := e.parse(0, 0); err != nil {
		return err
	}
	cfg, release, err := lockForPrefix(*cfgPath, *dataDir, *pluginDir, "promote claims a tier-2 prefix", "stop the replica's host before promoting it")
	if err != nil {
		return err
	}
	defer func() { _ = release() }()
	if err := checkPromotable(cfg.DataDir); err != nil {
		return err
	}
	logger := hclog.New(&hclog.LoggerOptions{Name: "aof2", Level: hclog.Warn, Output: e.stderr})
	sess, err := openTier2(ctx, cfg, logger)
	if err != nil {
		return err
	}
	defer sess.close()
	rec, err := coordinator.Takeover(ctx, nil, cfg.DataDir, sess.store)
	if err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "node %s (%s) is the writer of %s at epoch %d\n", rec.NodeID, rec.Host, sess.desc, rec.Epoch)
	if err := setReplicaAside(cfg.DataDir); err != nil {
		return err
	}
	if err := restoreAndReport(ctx, e, cfg, sess, logger, nil, *asJSON); err != nil {
		return err
	}
	if err := vfs.RemoveAll(vfs.OS, filepath.Join(cfg.DataDir, replicaOld)); err != nil {
		return fmt.Errorf("remove the replica's streams: %w", err)
	}
	for _, m := range []string{node.ReplicaMarker, node.PromotePending} { // the pending marker last
		if err := vfs.OS.Remove(filepath.Join(cfg.DataDir, m)); err != nil && !vfs.IsNotExist(err) {
			return err
		}
	}
	if err := vfs.OS.SyncDir(cfg.DataDir); err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "promoted: start the host with role = \"writer\" (docs/tiering.md#read-replicas)\n")
	return nil
}

// checkPromotable refuses a data directory that is not a replica's (a
// writer's streams may hold records never uploaded: promote would replace
// them) unless a promote of it is under way, and marks the promote as
// under way: serve refuses the directory until it finished.
func checkPromotable(dataDir string) error {
	pending := filepath.Join(dataDir, node.PromotePending)
	if _, err := vfs.OS.Stat(pending); err == nil {
		return nil // an interrupted promote: finish it
	}
	if _, err := vfs.OS.Stat(filepath.Join(dataDir, node.ReplicaMarker)); vfs.IsNotExist(err) {
		return usagef("%s is not a read replica's data directory (no %s file), and promote would replace its streams: for a writer's, use aof2-host takeover or serve -takeover", dataDir, node.ReplicaMarker)
	} else if err != nil {
		return err
	}
	if err := vfs.WriteFileAtomic(vfs.OS, pending, []byte("aof2-host promote under way: rerun it\n")); err != nil {
		return err
	}
	return vfs.OS.SyncDir(dataDir)
}

// setReplicaAside moves the replica's streams directory to replicaOld,
// unless an earlier promote did (then streams/ holds what its restore
// finished, which the rerun keeps).
func setReplicaAside(dataDir string) error {
	old, streams := filepath.Join(dataDir, replicaOld), filepath.Join(dataDir, "streams")
	if _, err := vfs.OS.Stat(old); err == nil {
		return nil
	} else if !vfs.IsNotExist(err) {
		return err
	}
	if _, err := vfs.OS.Stat(streams); vfs.IsNotExist(err) {
		return nil
	} else if err != nil {
		return err
	}
	if err := vfs.OS.Rename(streams, old); err != nil {
		return fmt.Errorf("set the replica's streams aside: %w", err)
	}
	return vfs.OS.SyncDir(dataDir)
}
