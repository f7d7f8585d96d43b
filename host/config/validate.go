package config

import (
	"github.com/aof2/aof2/internal/bytesize"

	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/aof2/aof2/core/manifest"
	"github.com/aof2/aof2/core/segment"
)

// validate checks what single keys cannot: combinations, files the keys
// name, and the plugin binary. Ranges of single keys were checked as
// each value was parsed.
func (c *Config) validate() error {
	var errs errorList
	errs.add(c.validateListen())
	if maxTarget := segment.DataEnd(c.Segment.Size) - segment.HeaderSize; c.Segment.TargetBytes > maxTarget {
		errs.add(c.keyError("segment.target_bytes", bytesize.Format(c.Segment.TargetBytes),
			fmt.Sprintf("must not exceed what a segment of segment.size holds (%d bytes)", maxTarget), nil))
	}
	if c.Segment.InitialSize > c.Segment.Size {
		errs.add(c.keyError("segment.initial_size", bytesize.Format(c.Segment.InitialSize),
			"must not exceed segment.size ("+bytesize.Format(c.Segment.Size)+")", nil))
	}
	if c.Segment.NodeWAL {
		switch {
		case c.Segment.Sync != "always":
			errs.add(c.keyError("segment.node_wal", "true", "needs segment.sync = \"always\" (it is "+c.Segment.Sync+")", nil))
		case c.Clustered():
			errs.add(c.keyError("segment.node_wal", "true", "is not for a cluster member: its Raft log already makes records durable once for all streams", nil))
		case c.IsReplica():
			errs.add(c.keyError("segment.node_wal", "true", "is not for a replica: it takes no appends", nil))
		}
	}
	errs.add(c.validateManifest())
	if hi, lo := c.Tier0.DiskHighWatermark, c.Tier0.DiskLowWatermark; hi > 0 && lo >= hi {
		errs.add(c.keyError("tier0.disk_low_watermark", FormatPercent(lo), "must be below tier0.disk_high_watermark ("+FormatPercent(hi)+")", nil))
	}
	if !c.Tier2Enabled() {
		if c.IsReplica() {
			errs.add(c.keyError("role", c.Role, "a replica follows its writer from tier 2 and needs one configured (tier2.enabled and tier2.plugin)", nil))
		}
		if c.Tier0.Policy == "tier2" {
			errs.add(c.keyError("tier0.policy", c.Tier0.Policy, "needs a tier 2 (tier2.enabled and tier2.plugin)", nil))
		}
		const noTier2 = "retention deletes through tier 2 and needs one configured (tier2.enabled and tier2.plugin)"
		if c.Retention.MaxAge > 0 {
			errs.add(c.keyError("retention.max_age", formatDuration(c.Retention.MaxAge), noTier2, nil))
		}
		if c.Retention.MaxBytes > 0 {
			errs.add(c.keyError("retention.max_bytes", bytesize.Format(c.Retention.MaxBytes), noTier2, nil))
		}
	}
	errs.add(c.validateCluster())
	if c.Limits.ReadMaxBytes < c.Limits.ReadDefaultBytes {
		errs.add(c.keyError("limits.read_max_bytes", bytesize.Format(c.Limits.ReadMaxBytes), "must be at least limits.read_default_bytes ("+bytesize.Format(c.Limits.ReadDefaultBytes)+")", nil))
	}
	if c.Tier2.RetryMax < c.Tier2.RetryInitial {
		errs.add(c.keyError("tier2.retry_max", c.Tier2.RetryMax.String(), "must be at least tier2.retry_initial ("+c.Tier2.RetryInitial.String()+")", nil))
	}
	if c.Tier2Enabled() && !c.opts.skipPlugin {
		_, err := c.PluginPath()
		errs.add(err)
	}
	return errs.err()
}

// manifestKeys maps core/manifest's configuration keys to ours.
var manifestKeys = map[string]string{
	manifest.ConfigKeyChunkCapacity:      "manifest.chunk_capacity",
	manifest.ConfigKeyRotationPeriod:     "manifest.rotation_period",
	manifest.ConfigKeySnapshotEveryBytes: "manifest.snapshot_every_bytes",
	manifest.ConfigKeyLogOnly:            "manifest.log_only",
	manifest.ConfigKeyViewInterval:       "manifest.view_interval",
}

// validateManifest runs core/manifest's own validation, so a rule added
// there is enforced at load time too, reported under our key names.
func (c *Config) validateManifest() error {
	err := c.manifestOptions().Validate()
	var me *manifest.ConfigError
	if errors.As(err, &me) {
		k := manifestKeys[me.Key]
		if k == "" {
			k = me.Key
		}
		return &Error{Key: k, Value: fmt.Sprint(me.Value), Source: c.Origin(k), Reason: me.Reason, Err: err}
	}
	return err
}

// validateCluster checks the cluster block as a whole.
func (c *Config) validateCluster() error {
	cl := c.Cluster
	if !c.Clustered() {
		for _, k := range []struct{ key, v string }{{"cluster.raft_addr", cl.RaftAddr}, {"cluster.join", cl.Join}, {"cluster.peers", strings.Join(cl.Peers, ",")}} {
			if k.v != "" {
				return c.keyError(k.key, k.v, "needs cluster.node_id (without it the host runs single-node)", nil)
			}
		}
		return nil
	}
	var errs errorList
	if cl.RaftAddr == "" {
		errs.add(c.keyError("cluster.raft_addr", "", "required with cluster.node_id", nil))
	}
	if len(cl.Peers) > 0 && cl.Join != "" {
		errs.add(c.keyError("cluster.join", cl.Join, "set peers to bootstrap a new cluster or join to enter an existing one, not both", nil))
	}
	if len(cl.Peers) > 0 {
		self := cl.NodeID + "=" + cl.RaftAddr
		if !slices.Contains(cl.Peers, self) {
			errs.add(c.keyError("cluster.peers", strings.Join(cl.Peers, ","), "must list this node as "+self, nil))
		}
	}
	if c.IsReplica() {
		errs.add(c.keyError("role", c.Role, "a cluster node replicates through Raft; role = \"replica\" follows a single writer through tier 2", nil))
	}
	return errs.err()
}
