package config

import (
	"github.com/hashicorp/go-hclog"

	"github.com/aof2/aof2/core"
	"github.com/aof2/aof2/core/budget"
	"github.com/aof2/aof2/core/coordinator"
	"github.com/aof2/aof2/core/manifest"
	"github.com/aof2/aof2/core/segment"
	"github.com/aof2/aof2/core/tier1"
	"github.com/aof2/aof2/core/tier2"
	"github.com/aof2/aof2/core/types"
	"github.com/aof2/aof2/host/server"
)

// The conversions below parse names that Load already validated; their
// parse errors cannot happen on a loaded Config and are ignored.

// CoreConfig is the store's configuration (core.Open(c.DataDir, …)). The
// host fills in Logger, Registerer and Cold. manifest.log_only is already
// merged with AOF2_MANIFEST_LOG_ONLY: do not call Manifest.ApplyEnv.
func (c *Config) CoreConfig() core.Config {
	sync, _ := core.ParseSyncPolicy(c.Segment.Sync)
	if c.Clustered() && c.Origin("segment.sync") == "default" {
		// A cluster member's records are durable in a majority's Raft
		// logs before they are applied; the engine's own syncs would be
		// a second fsync stream per node (docs/adr-replication.md).
		sync = core.SyncNone
	}
	mode, _ := segment.ParseWriteMode(c.Segment.WriteMode)
	prep, _ := segment.ParsePreparation(c.Segment.Preparation)
	return core.Config{
		SegmentSize:        c.Segment.Size,
		InitialSegmentSize: c.Segment.InitialSize,
		SegmentTargetBytes: c.Segment.TargetBytes,
		Sync:               sync,
		FlushInterval:      c.Segment.FlushInterval,
		FlushBytes:         c.Segment.FlushBytes,
		MaxUnflushedBytes:  c.Segment.MaxUnflushedBytes,
		NodeWAL:            c.Segment.NodeWAL,
		WALCheckpointBytes: c.Segment.WALCheckpointBytes,
		WriteMode:          mode,
		Preparation:        prep,
		Manifest:           c.manifestOptions(),
		TraceAppendEvery:   c.Tracing.AppendEvery,
		MaxStreams:         c.Limits.MaxStreams,
	}
}

func (c *Config) manifestOptions() manifest.Options {
	return manifest.Options{
		ChunkCapacity:       c.Manifest.ChunkCapacity,
		RotationPeriod:      c.Manifest.RotationPeriod,
		SnapshotEveryBytes:  c.Manifest.SnapshotEveryBytes,
		SnapshotEveryChunks: c.Manifest.SnapshotEveryChunks,
		LogOnly:             c.Manifest.LogOnly,
		ViewInterval:        c.Manifest.ViewInterval,
	}
}

// CoordinatorConfig is the coordinator's configuration. The host fills in
// Tier2 (the store over the launched plugin), Registerer and Logger. With
// tier0.policy = "auto" the policy is tier2 exactly when a tier 2 is
// configured, so Tier2 must be set whenever Tier2Enabled.
func (c *Config) CoordinatorConfig() coordinator.Config {
	level, _ := tier1.ParseLevel(c.Tier1.Level)
	verify := tier1.VerifyQuick
	if c.Tier1.Verify == "full" {
		verify = tier1.VerifyFull
	}
	var limits map[types.StreamID]int64
	if len(c.Tier0.Streams) > 0 {
		limits = make(map[types.StreamID]int64, len(c.Tier0.Streams))
		for id, v := range c.Tier0.Streams {
			limits[types.StreamID(id)] = v
		}
	}
	return coordinator.Config{
		DataDir: c.DataDir,
		Tier0: budget.Config{
			MaxBytes:       c.Tier0.MaxBytes,
			StreamMaxBytes: c.Tier0.StreamMaxBytes,
			StreamLimits:   limits,
			Policy:         c.tier0Policy(),
		},
		Tier1: tier1.Config{
			Options:         tier1.Options{FrameSize: int(c.Tier1.FrameSize), Level: level},
			MaxBytes:        c.Tier1.MaxBytes,
			MinResidency:    c.Tier1.MinResidency,
			CompressWorkers: c.Tier1.CompressWorkers,
			HydrateWorkers:  c.Tier1.HydrateWorkers,
			QueueDepth:      c.Tier1.QueueDepth,
			Verify:          verify,
		},
		Retention:       coordinator.Retention{MaxAge: c.Retention.MaxAge, MaxBytes: c.Retention.MaxBytes},
		SegmentMaxAge:   c.Segment.MaxAge,
		Disk:            coordinator.Disk{HighWatermark: c.Tier0.DiskHighWatermark / 100, LowWatermark: c.Tier0.DiskLowWatermark / 100},
		Workers:         c.Coordinator.Workers,
		ReserveSegments: c.Tier2.ReserveSegments,
		ScanInterval:    c.Coordinator.ScanInterval,
		JobTimeout:      c.Coordinator.JobTimeout,
		Scrub:           c.scrub(),
	}
}

// scrub converts the scrub keys: 0% sampled is no tier-2 checks (the
// coordinator's negative), -1 bytes/s unpaced, -1 full-GET bytes none.
func (c *Config) scrub() coordinator.Scrub {
	s := coordinator.Scrub{Interval: c.Scrub.Interval, BytesPerSecond: c.Scrub.BytesPerSecond,
		Tier2Sample: c.Scrub.Tier2Sample / 100, Tier2FullGetBytes: c.Scrub.Tier2FullGetBytes}
	if s.Tier2Sample == 0 {
		s.Tier2Sample = -1
	}
	if s.Tier2FullGetBytes == 0 {
		s.Tier2FullGetBytes = -1
	}
	return s
}

func (c *Config) tier0Policy() budget.Policy {
	switch {
	case c.Tier0.Policy == "tier1":
		return budget.PolicyTier1
	case c.Tier0.Policy == "tier2" || c.Tier2Enabled():
		return budget.PolicyTier2
	}
	return budget.PolicyTier1
}

// Tier2Config tunes the tier-2 store over the plugin. The host fills in
// Info, Registerer and Logger.
func (c *Config) Tier2Config() tier2.Config {
	return tier2.Config{
		Prefix:         c.Tier2.Prefix,
		MaxConcurrency: c.Tier2.MaxConcurrency,
		AttemptTimeout: c.Tier2.AttemptTimeout,
		Backoff: tier2.Backoff{
			Initial:  c.Tier2.RetryInitial,
			Max:      c.Tier2.RetryMax,
			Attempts: c.Tier2.RetryAttempts,
		},
		Breaker: tier2.BreakerConfig{Threshold: c.Tier2.BreakerThreshold, Cooldown: c.Tier2.BreakerCooldown},
	}
}

// ServerOptions configures the client API (server.New). The host fills in
// TLS (TLSConfig), Gatherer, Registerer, Logger and TracerProvider.
func (c *Config) ServerOptions() server.Options {
	return server.Options{
		Token:            c.Token(),
		MetricsAuth:      c.Listen.MetricsAuth,
		MaxRecordSize:    int(segment.MaxRecordSize(c.Segment.Size)),
		ReadDefaultBytes: c.Limits.ReadDefaultBytes,
		ReadMaxBytes:     c.Limits.ReadMaxBytes,
		ReadBudgetBytes:  c.Limits.ReadInflightBytes,
		ReadStallTimeout: c.Limits.ReadStallTimeout,
	}
}

// HCLogLevel is log_level as an hclog level.
func (c *Config) HCLogLevel() hclog.Level { return hclog.LevelFromString(c.LogLevel) }

// JSONLogs reports whether logs are JSON: log_format json, or auto when
// stderr is not a terminal.
func (c *Config) JSONLogs(stderrIsTerminal bool) bool {
	return c.LogFormat == "json" || (c.LogFormat == "auto" && !stderrIsTerminal)
}
