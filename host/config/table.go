package config

import (
	"github.com/aof2/aof2/internal/bytesize"

	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/aof2/aof2/core"
	"github.com/aof2/aof2/core/manifest"
	"github.com/aof2/aof2/core/segment"
	"github.com/aof2/aof2/core/tier1"
	"github.com/aof2/aof2/core/tier2"
	"github.com/aof2/aof2/host/server"
)

// Allowed values of the enumerations. Tests check each against the core
// package that parses it.
var (
	logLevels    = []string{"trace", "debug", "info", "warn", "error"}
	logFormats   = []string{"auto", "json", "text"}
	syncPolicies = []string{"always", "interval", "none"}
	writeModes   = []string{"pwrite", "mmap"}
	preparations = []string{"fallocate", "small-pages", "large-folios"}
	tier0Policy  = []string{"auto", "tier1", "tier2"}
	tier1Levels  = []string{"fastest", "default", "better", "best"}
	tier1Verify  = []string{"quick", "full"}
	roles        = []string{"writer", "replica"}
	// raft-wal was measured and left out: docs/adr-replication.md#the-log-store.
	logStores = []string{"auto", "wal", "boltdb"}
)

// keys is every configuration key, in the order Reference and HCL list
// them. Nothing else declares a key.
var keys = []*key{
	stringKey("data_dir", "./data", "Directory of segments, manifests and the warm cache; the fs backend's objects go to <data_dir>/tier2 by default. A relative path (this one, plugin_dir, the listen files, the fs root) is taken from the working directory and made absolute at start.",
		func(c *Config) *string { return &c.DataDir }, checkPath),
	enumKey("log_level", "info", logLevels, "Lowest level logged.", func(c *Config) *string { return &c.LogLevel }),
	enumKey("log_format", "auto", logFormats, "Log encoding; auto is JSON unless stderr is a terminal.", func(c *Config) *string { return &c.LogFormat }),
	enumKey("role", "writer", roles, "writer appends and owns the tier-2 prefix (one per prefix, docs/adr-fencing.md); replica follows the prefix's writer from tier 2 alone, serves reads of everything uploaded and refuses appends (docs/tiering.md#read-replicas). Any number of replicas may follow one prefix.",
		func(c *Config) *string { return &c.Role }),
	durationKey("replica.poll_interval", time.Second, "How often a replica polls the next key of every stream (a HEAD per stream); its lag behind tier 2 is at most about this.",
		func(c *Config) *time.Duration { return &c.Replica.PollInterval }, false, positive),
	durationKey("replica.list_interval", time.Minute, "How often a replica lists the prefix: new streams appear on it within about this, and the writer's retention deletes are applied.",
		func(c *Config) *time.Duration { return &c.Replica.ListInterval }, false, positive),
	stringKey("plugin_dir", "", "Directory of the aof2-plugin-<name> binaries; empty means the host binary's directory. $PATH is never searched.",
		func(c *Config) *string { return &c.PluginDir }, checkOptionalPath),

	stringKey("listen.grpc", "127.0.0.1:7400", "gRPC client API address (host:port); empty disables it. Beyond loopback it needs auth_token, tls or allow_insecure_remote.",
		func(c *Config) *string { return &c.Listen.GRPC }, checkAddr),
	stringKey("listen.http", "127.0.0.1:7401", "HTTP API, /metrics and health address (host:port); empty disables it. Same rule beyond loopback.",
		func(c *Config) *string { return &c.Listen.HTTP }, checkAddr),
	stringKey("listen.admin", "", "Address (host:port) of the opt-in admin listener serving Go's runtime profiles at /debug/pprof/ (go tool pprof http://ADDR/debug/pprof/heap); empty, the default, serves none. Beyond loopback it needs auth_token (profiles can hold record bytes); behind the token whenever one is set.",
		func(c *Config) *string { return &c.Listen.Admin }, checkAddr),
	secret(stringKey("listen.auth_token", "", "Bearer token clients must present. Prefer auth_token_file or the environment over writing it in the file.",
		func(c *Config) *string { return &c.Listen.AuthToken }, nil)),
	stringKey("listen.auth_token_file", "", "File holding the bearer token (surrounding whitespace is trimmed).",
		func(c *Config) *string { return &c.Listen.AuthTokenFile }, checkOptionalPath),
	boolKey("listen.allow_insecure_remote", false, "Allow listening beyond loopback with neither a token nor TLS.",
		func(c *Config) *bool { return &c.Listen.AllowInsecureRemote }),
	boolKey("listen.metrics_auth", false, "Put /metrics behind the bearer token too (it names every stream and its byte counts); scrapers then send the token (Prometheus: authorization { credentials_file = ... }).",
		func(c *Config) *bool { return &c.Listen.MetricsAuth }),
	intKey("listen.metrics_max_streams", 0, "Most streams /metrics names by stream_id (about 60 series each); the series of streams past it are summed under stream_id=\"other\" (counters, gauges and histograms added, so totals and quantiles over all streams stay right). The first streams reported keep their label for the life of the process. 0, the default, names every stream; -1 names none.",
		func(c *Config) *int { return &c.Listen.MetricsMaxStreams }, func(v int) error {
			if v < -1 {
				return errors.New("want -1 (no stream named), 0 (every stream) or a positive count")
			}
			return nil
		}),
	stringKey("listen.tls.cert_file", "", "PEM certificate chain of the client API; with key_file it turns TLS on.",
		func(c *Config) *string { return &c.Listen.TLS.CertFile }, checkOptionalPath),
	stringKey("listen.tls.key_file", "", "PEM private key matching cert_file.",
		func(c *Config) *string { return &c.Listen.TLS.KeyFile }, checkOptionalPath),
	stringKey("listen.tls.client_ca_file", "", "PEM CA bundle; when set, clients must present a certificate it signed.",
		func(c *Config) *string { return &c.Listen.TLS.ClientCAFile }, checkOptionalPath),

	sizeKey("segment.size", segment.DefaultCapacity, "Largest segment file capacity, which bounds the largest record: a power of two from 1MiB to 1GiB. A stream's segments start at segment.initial_size and grow up to it (docs/adr-tier0.md).",
		func(c *Config) *int64 { return &c.Segment.Size }, false, checkSegmentSize),
	sizeKey("segment.initial_size", core.DefaultInitialSegmentSize, "Capacity of a stream's first segment file: a power of two from 64KiB to segment.size. Each next segment doubles (sixteen-fold for a stream that fills its segments within 100ms, except in cluster mode), so a stream's disk follows the bytes it holds; segment.size turns growth off.",
		func(c *Config) *int64 { return &c.Segment.InitialSize }, false, checkInitialSegmentSize),
	sizeKey("segment.target_bytes", 0, "Roll a segment over once it holds this many record bytes; 0 rolls over only when full.",
		func(c *Config) *int64 { return &c.Segment.TargetBytes }, false, nil),
	durationKey("segment.max_age", 5*time.Minute, "Seal a stream's active segment once its first record is this old, so that it is compressed and uploaded: records live on one disk at most about this long (the recovery point, docs/tiering.md#recovery-point). 0 is off: a slow stream's records stay on one disk until its segment fills.",
		func(c *Config) *time.Duration { return &c.Segment.MaxAge }, false, nil),
	enumKey("segment.sync", "always", syncPolicies, "When appends become durable without an explicit flush: always (group commit), interval, or none (only on flush, seal and close). A cluster member defaults to none: its records are durable in the Raft log first.",
		func(c *Config) *string { return &c.Segment.Sync }),
	durationKey("segment.flush_interval", 10*time.Millisecond, "Sync period of sync = \"interval\".",
		func(c *Config) *time.Duration { return &c.Segment.FlushInterval }, false, positive),
	sizeKey("segment.flush_bytes", 1<<20, "With sync = \"interval\", sync early once this many bytes are unsynced.",
		func(c *Config) *int64 { return &c.Segment.FlushBytes }, false, atLeast[int64](1, bytesize.Format)),
	sizeKey("segment.max_unflushed_bytes", 64<<20, "Appended but not yet durable bytes per stream before appends would block; -1 removes the bound.",
		func(c *Config) *int64 { return &c.Segment.MaxUnflushedBytes }, true, atLeast[int64](1, bytesize.Format)),
	boolKey("segment.node_wal", false, "Make durable appends durable through one write-ahead log for all streams (docs/adr-node-wal.md): one sync acknowledges the records of every stream that appended since the last, and segments are synced only at seal, checkpoint and max_unflushed_bytes. Needs sync = \"always\"; not for a cluster member (its Raft log is that log) or a replica. A store that crashed with it on opens only with it on until a clean close.",
		func(c *Config) *bool { return &c.Segment.NodeWAL }),
	sizeKey("segment.wal_checkpoint_bytes", core.DefaultWALCheckpointBytes, "With node_wal: bytes of WAL entries between checkpoints (every stream's segments synced, the WAL's older segments dropped); bounds the replay after a crash.",
		func(c *Config) *int64 { return &c.Segment.WALCheckpointBytes }, false, atLeast[int64](1, bytesize.Format)),
	enumKey("segment.write_mode", "pwrite", writeModes, "How records reach the page cache (docs/adr-write-path.md).",
		func(c *Config) *string { return &c.Segment.WriteMode }),
	enumKey("segment.preparation", "fallocate", preparations, "How new segment files are readied (docs/adr-write-path.md).",
		func(c *Config) *string { return &c.Segment.Preparation }),

	boolKey("manifest.log_only", false, "Boot from the manifest log alone and stop writing the warm/manifest.json view (the tier1_manifest_log_only flag; docs/formats.md#warmmanifestjson).",
		func(c *Config) *bool { return &c.Manifest.LogOnly }),
	sizeKey("manifest.chunk_capacity", manifest.DefaultChunkCapacity, "Size of each manifest chunk file: a multiple of 4KiB from 16KiB to 1MiB.",
		func(c *Config) *int64 { return &c.Manifest.ChunkCapacity }, false, checkChunkCapacity),
	durationKey("manifest.rotation_period", manifest.DefaultRotationPeriod, "Seal manifest records into a chunk (what tier 2 receives) within this period, or two for records already committed: 1ms to 1h, or negative to disable (chunks then seal when full).",
		func(c *Config) *time.Duration { return &c.Manifest.RotationPeriod }, true, checkRotation),
	sizeKey("manifest.snapshot_every_bytes", 0, "Snapshot after this many committed log bytes; 0 means 4 × chunk_capacity, -1 disables automatic snapshots.",
		func(c *Config) *int64 { return &c.Manifest.SnapshotEveryBytes }, true, checkSnapshotEvery),
	intKey("manifest.snapshot_every_chunks", manifest.DefaultSnapshotEveryChunks, "Also snapshot once this many manifest chunks were sealed since the last snapshot: each sealed chunk is a tier-2 object until two uploaded snapshots cover it, so this bounds a stream's tier-2 manifest (docs/tiering.md#the-tier-2-manifest); -1 disables the rule.",
		func(c *Config) *int { return &c.Manifest.SnapshotEveryChunks }, func(n int) error {
			if n == -1 || n >= 1 {
				return nil
			}
			return errors.New("want at least 1, or -1 to disable the rule")
		}),
	durationKey("manifest.view_interval", manifest.DefaultViewInterval, "Least time between two rewrites of the warm/manifest.json view while commits keep coming (it is rewritten whole, behind the log; a commit after a quiet interval is written at once): 1ms to 1h, or negative for no pause. Longer writes less for streams with many segments; the view is only ever behind, never wrong (docs/formats.md#warmmanifestjson).",
		func(c *Config) *time.Duration { return &c.Manifest.ViewInterval }, true, checkViewInterval),

	sizeKey("tier0.max_bytes", 0, "Bytes of segment files tier 0 may hold across all streams; 0 is unlimited.",
		func(c *Config) *int64 { return &c.Tier0.MaxBytes }, false, nil),
	sizeKey("tier0.stream_max_bytes", 0, "Cap of each stream without its own stream block; 0 is none.",
		func(c *Config) *int64 { return &c.Tier0.StreamMaxBytes }, false, nil),
	enumKey("tier0.policy", "auto", tier0Policy, "When a sealed segment may leave tier 0: once tier1 holds it, or once tier2 does; auto is tier2 when a tier 2 is configured.",
		func(c *Config) *string { return &c.Tier0.Policy }),
	streamLimitKey(),
	percentKey("tier0.disk_high_watermark", 0, "Share of the data directory's file system in use at which the segments another tier holds are evicted from tier 0, whatever max_bytes is (docs/tiering.md#disk-pressure); 0% is off. A segment preparation that meets a full disk (ENOSPC) evicts too, whatever this is.",
		func(c *Config) *float64 { return &c.Tier0.DiskHighWatermark }),
	percentKey("tier0.disk_low_watermark", 0, "Share of the file system that disk-pressure evictions bring usage down to; 0% means 5 points below disk_high_watermark. Set alone, it is the target when the disk is full.",
		func(c *Config) *float64 { return &c.Tier0.DiskLowWatermark }),

	sizeKey("tier1.max_bytes", 0, "Byte budget of the warm cache; 0 is unlimited.",
		func(c *Config) *int64 { return &c.Tier1.MaxBytes }, false, nil),
	durationKey("tier1.min_residency", 0, "Keep a warm artifact at least this long after it was admitted.",
		func(c *Config) *time.Duration { return &c.Tier1.MinResidency }, false, nil),
	sizeKey("tier1.frame_size", tier1.DefaultFrameSize, "Decompressed size of each zstd frame, the unit of random access: 64KiB to 16MiB.",
		func(c *Config) *int64 { return &c.Tier1.FrameSize }, false, inRange[int64](tier1.MinFrameSize, tier1.MaxFrameSize, bytesize.Format)),
	enumKey("tier1.level", "fastest", tier1Levels, "zstd compression level.", func(c *Config) *string { return &c.Tier1.Level }),
	intKey("tier1.compress_workers", 1, "Concurrent compressions.", func(c *Config) *int { return &c.Tier1.CompressWorkers }, inRange(1, 1024, strconv.Itoa)),
	intKey("tier1.hydrate_workers", 1, "Concurrent hydrations.", func(c *Config) *int { return &c.Tier1.HydrateWorkers }, inRange(1, 1024, strconv.Itoa)),
	intKey("tier1.queue_depth", tier1.DefaultQueueDepth, "Queued jobs per worker pool.", func(c *Config) *int { return &c.Tier1.QueueDepth }, inRange(1, 1024, strconv.Itoa)),
	enumKey("tier1.verify", "quick", tier1Verify, "How much of each warm artifact is checked at start: quick (seek table, header, footer) or full (every frame).",
		func(c *Config) *string { return &c.Tier1.Verify }),

	boolKey("tier2.enabled", true, "Use a tier 2; false (or plugin = \"\") keeps data in tiers 0 and 1 only.", func(c *Config) *bool { return &c.Tier2.Enabled }),
	stringKey("tier2.plugin", "fs", "Backend plugin name; the binary aof2-plugin-<name> is looked up in plugin_dir.",
		func(c *Config) *string { return &c.Tier2.Plugin }, checkPluginName),
	stringKey("tier2.sha256", "", "Pin the plugin binary: its SHA-256 in hex. A mismatch refuses to launch it.",
		func(c *Config) *string { return &c.Tier2.SHA256 }, checkSHA256),
	stringKey("tier2.prefix", "", "Object key prefix the host puts before streams/… (e.g. \"prod/aof2\").",
		func(c *Config) *string { return &c.Tier2.Prefix }, checkPrefix),
	intKey("tier2.max_concurrency", 8, "Backend requests in flight.", func(c *Config) *int { return &c.Tier2.MaxConcurrency }, inRange(1, 1024, strconv.Itoa)),
	durationKey("tier2.attempt_timeout", 0, "Bound on one backend request, so a hung backend costs an attempt; 0 is no bound beyond coordinator.job_timeout.",
		func(c *Config) *time.Duration { return &c.Tier2.AttemptTimeout }, false, nil),
	intKey("tier2.reserve_segments", 16, "Segment ids a stream reserves in tier 2 at a time, before it activates them, so that a restore from tier 2 alone never hands out an id the lost node used (docs/adr-restore.md). With tier 2 unreachable a stream opens at most this many new segments, then waits.",
		func(c *Config) *int { return &c.Tier2.ReserveSegments }, inRange(1, 1<<20, strconv.Itoa)),
	intKey("tier2.retry_attempts", 6, "Tries of one operation, the first included.", func(c *Config) *int { return &c.Tier2.RetryAttempts }, inRange(1, 100, strconv.Itoa)),
	durationKey("tier2.retry_initial", 50*time.Millisecond, "Cap of the first jittered retry wait.",
		func(c *Config) *time.Duration { return &c.Tier2.RetryInitial }, false, positive),
	durationKey("tier2.retry_max", 10*time.Second, "Cap of every jittered retry wait (at least retry_initial).",
		func(c *Config) *time.Duration { return &c.Tier2.RetryMax }, false, positive),
	intKey("tier2.breaker_threshold", 5, "Consecutive backend failures that open the circuit breaker.",
		func(c *Config) *int { return &c.Tier2.BreakerThreshold }, inRange(1, 1000, strconv.Itoa)),
	durationKey("tier2.breaker_cooldown", 10*time.Second, "How long an open breaker waits before a probe.",
		func(c *Config) *time.Duration { return &c.Tier2.BreakerCooldown }, false, positive),
	boolKey("tier2.disable_auto_mtls", false, "Turn off go-plugin's automatic mutual TLS on the plugin socket (faster; the socket is private to the user).",
		func(c *Config) *bool { return &c.Tier2.DisableAutoMTLS }),
	durationKey("tier2.start_timeout", 10*time.Second, "Bound on the plugin's start-up handshake.",
		func(c *Config) *time.Duration { return &c.Tier2.StartTimeout }, false, positive),
	listKey("tier2.env_allow", "Host environment variables the plugin inherits besides PATH, TMPDIR, TZ, LANG, LC_ALL and HOME (e.g. AWS_PROFILE).",
		func(c *Config) *[]string { return &c.Tier2.EnvAllow }, checkEnvName),
	settingsKey(),

	durationKey("retention.max_age", 0, "Delete sealed segments older than this from every tier; 0 keeps them. Needs a tier 2.",
		func(c *Config) *time.Duration { return &c.Retention.MaxAge }, false, nil),
	sizeKey("retention.max_bytes", 0, "Delete a stream's oldest sealed segments while it holds more record bytes than this; 0 keeps them. Needs a tier 2.",
		func(c *Config) *int64 { return &c.Retention.MaxBytes }, false, nil),

	intKey("coordinator.workers", 2, "Concurrent tiering jobs (compress, upload, evict).", func(c *Config) *int { return &c.Coordinator.Workers }, inRange(1, 1024, strconv.Itoa)),
	durationKey("coordinator.scan_interval", time.Second, "How often pending tiering work is re-derived.",
		func(c *Config) *time.Duration { return &c.Coordinator.ScanInterval }, false, positive),
	durationKey("coordinator.job_timeout", 5*time.Minute, "Bound on one tiering job.",
		func(c *Config) *time.Duration { return &c.Coordinator.JobTimeout }, false, positive),

	durationKey("scrub.interval", 24*time.Hour, "How often the scrubber checks every copy of every sealed segment against the manifest (tier-0 files, warm artifacts, tier-2 objects), repairing from verified copies (docs/tiering.md#healing); 0 disables the background pass (aof2-host scrub still runs one). The first pass starts at a random time within the interval after start.",
		func(c *Config) *time.Duration { return &c.Scrub.Interval }, false, nil),
	sizeKey("scrub.bytes_per_second", 32<<20, "Bytes per second a scrub pass reads (tier-0 files, warm artifacts, tier-2 full GETs); -1 is unpaced.",
		func(c *Config) *int64 { return &c.Scrub.BytesPerSecond }, true, atLeast[int64](1, bytesize.Format)),
	percentKey("scrub.tier2_sample", 100, "Share of the tier-2 objects a scrub pass checks with a HEAD (stored checksum and metadata against the manifest); 0% checks none.",
		func(c *Config) *float64 { return &c.Scrub.Tier2Sample }),
	sizeKey("scrub.tier2_full_get_bytes", 1<<30, "Object bytes a scrub pass downloads in full and verifies against the segment checksum, beyond the HEAD checks; 0 is none.",
		func(c *Config) *int64 { return &c.Scrub.Tier2FullGetBytes }, false, nil),

	intKey("limits.max_streams", 0, "Streams the node holds at most (broken ones included); creating one more is refused with TOO_MANY_STREAMS (gRPC RESOURCE_EXHAUSTED, HTTP 507). Streams already on disk always open. 0 is no limit.",
		func(c *Config) *int { return &c.Limits.MaxStreams }, atLeast(0, strconv.Itoa)),
	sizeKey("limits.read_default_bytes", server.DefaultReadBytes, "Payload bytes a read (gRPC Read, HTTP GET …/records) returns when it gives no max_bytes, and the most one Tail message carries. A single larger record is still returned, alone.",
		func(c *Config) *int64 { return &c.Limits.ReadDefaultBytes }, false, atLeast[int64](1, bytesize.Format)),
	sizeKey("limits.read_max_bytes", server.DefaultReadMaxBytes, "Most bytes one read response carries whatever max_bytes asks: a larger max_bytes is clamped (the response's next position continues the read), not refused. At least read_default_bytes.",
		func(c *Config) *int64 { return &c.Limits.ReadMaxBytes }, false, atLeast[int64](1, bytesize.Format)),
	sizeKey("limits.read_inflight_bytes", server.DefaultReadBudgetBytes, "Record bytes the client API holds for all readers at once, from the copy out of a segment until written to the network: a read that finds none free waits (within its deadline) rather than grow memory; a busy server answers with shorter responses. A record larger than this is still read, taking all of it.",
		func(c *Config) *int64 { return &c.Limits.ReadInflightBytes }, false, atLeast[int64](1, bytesize.Format)),
	durationKey("limits.read_stall_timeout", server.DefaultReadStallTimeout, "How long a read response's bytes stay in read_inflight_bytes while the client takes none of them: an HTTP write blocked that long fails and its connection is closed; a gRPC response not yet written out leaves the budget (the transport keeps it until the client reads or the connection ends). 0 is the default.",
		func(c *Config) *time.Duration { return &c.Limits.ReadStallTimeout }, false, nil),

	intKey("tracing.append_every", core.DefaultTraceAppendEvery, "With tracing on (OTEL_* variables), one in this many durable appends of a stream gets a span, and separately one in this many flushes; -1 traces none.",
		func(c *Config) *int { return &c.Tracing.AppendEvery }, checkSampleEvery),

	stringKey("cluster.node_id", "", "This node's name in a replicated cluster (docs/adr-replication.md); empty runs the single-node mode. It never changes once the node joined.",
		func(c *Config) *string { return &c.Cluster.NodeID }, checkNodeID),
	stringKey("cluster.raft_addr", "", "Address (host:port) Raft listens on and the other nodes dial.",
		func(c *Config) *string { return &c.Cluster.RaftAddr }, checkAddr),
	listKey("cluster.peers", "Every voter of a new cluster as id=host:port (Raft addresses), this node included, the same on every node. Used once, to bootstrap; later changes go through aof2-host cluster add and remove.",
		func(c *Config) *[]string { return &c.Cluster.Peers }, checkPeer),
	stringKey("cluster.join", "", "gRPC address (host:port) of a member of an existing cluster: a new node asks it (and through it the leader) to add this node as a voter, instead of bootstrapping with peers.",
		func(c *Config) *string { return &c.Cluster.Join }, checkAddr),
	stringKey("cluster.data", "", "Directory of Raft's log, stable store and snapshots; empty is <data_dir>/raft.",
		func(c *Config) *string { return &c.Cluster.Data }, checkOptionalPath),
	enumKey("cluster.log_store", "auto", logStores, "Raft log store: wal (hashicorp/raft-wal: one write and one sync per batch) or boltdb (hashicorp/raft-boltdb/v2). A node keeps the store it was created with; auto keeps it and gives a new node wal: docs/adr-replication.md#the-log-store.",
		func(c *Config) *string { return &c.Cluster.LogStore }),
	durationKey("cluster.election_timeout", 700*time.Millisecond, "How long a follower goes without hearing from the leader before it calls an election (Raft's heartbeat and election timeouts, each drawn from 1 to 2 times this; the leader's lease is half of it). Failover takes about 1.5 to 3 times this: docs/adr-replication.md, \"Failover time\".",
		func(c *Config) *time.Duration { return &c.Cluster.ElectionTimeout }, false, atLeast(10*time.Millisecond, formatDuration)),
	intKey("cluster.snapshot_threshold", 8192, "Raft entries applied since the last snapshot that make the next one due (checked every snapshot_interval). A snapshot holds positions, not data (docs/adr-replication.md).",
		func(c *Config) *int { return &c.Cluster.SnapshotThreshold }, atLeast(1, strconv.Itoa)),
	durationKey("cluster.snapshot_interval", 120*time.Second, "How often Raft checks whether a snapshot is due (randomly between this and twice this).",
		func(c *Config) *time.Duration { return &c.Cluster.SnapshotInterval }, false, atLeast(10*time.Millisecond, formatDuration)),
	intKey("cluster.trailing_logs", 10240, "Raft entries kept after a snapshot: a follower less far behind catches up from the log; one further behind (or a new or wiped node) gets the snapshot and copies what its store lacks from tier 2 and its peers.",
		func(c *Config) *int { return &c.Cluster.TrailingLogs }, atLeast(1, strconv.Itoa)),
	stringKey("cluster.advertise_grpc", "", "gRPC address followers send clients to when this node leads; empty is listen.grpc.",
		func(c *Config) *string { return &c.Cluster.AdvertiseGRPC }, checkAddr),
	stringKey("cluster.advertise_http", "", "HTTP address followers redirect clients to when this node leads; empty is listen.http.",
		func(c *Config) *string { return &c.Cluster.AdvertiseHTTP }, checkAddr),
}

var nodeIDPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$`)

func checkNodeID(id string) error {
	if id != "" && !nodeIDPattern.MatchString(id) {
		return errors.New("want 1 to 64 letters, digits, '.', '_' or '-', starting with a letter or digit")
	}
	return nil
}

// checkPeer accepts id=host:port.
func checkPeer(p string) error {
	id, addr, ok := strings.Cut(p, "=")
	if !ok || id == "" || addr == "" {
		return errors.New("want id=host:port")
	}
	if err := checkNodeID(id); err != nil {
		return fmt.Errorf("id %q: %w", id, err)
	}
	return checkAddr(addr)
}

// keyByPath indexes keys by HCL path.
var keyByPath = func() map[string]*key {
	m := make(map[string]*key, len(keys))
	for _, k := range keys {
		m[k.path] = k
	}
	return m
}()

func secret(k *key) *key { k.secret = true; return k }

// settingsKey is tier2.settings: the plugin's own settings, handed to its
// Configure untouched (see examples/ for each backend's names).
func settingsKey() *key {
	return &key{
		path: "tier2.settings", kind: kindEntries,
		doc: "The plugin's settings, passed to it as strings. fs defaults root to <data_dir>/tier2.",
		setEntry: func(c *Config, name, text string) error {
			if !settingName.MatchString(name) {
				return errors.New("setting names are lower-case letters, digits and _")
			}
			if c.Tier2.Settings == nil {
				c.Tier2.Settings = map[string]string{}
			}
			c.Tier2.Settings[name] = text
			return nil
		},
		entries: func(c *Config) map[string]string { return c.Tier2.Settings },
	}
}

var settingName = regexp.MustCompile(`^[a-z][a-z0-9_]*$`)

// streamLimitKey is tier0.stream "<id>" { max_bytes }: one stream's cap.
func streamLimitKey() *key {
	return &key{
		path: "tier0.stream.max_bytes", labelled: "tier0.stream", kind: kindSize,
		doc: "Per-stream override of stream_max_bytes, in a block labelled with the stream id; 0 removes the cap for that stream.",
		setEntry: func(c *Config, name, text string) error {
			id, err := strconv.ParseUint(name, 10, 64)
			if err != nil {
				return fmt.Errorf("stream id %q is not a decimal integer", name)
			}
			v, err := bytesize.Parse(text)
			if err != nil {
				return err
			}
			if c.Tier0.Streams == nil {
				c.Tier0.Streams = map[uint64]int64{}
			}
			c.Tier0.Streams[id] = v
			return nil
		},
		entries: func(c *Config) map[string]string {
			m := make(map[string]string, len(c.Tier0.Streams))
			for id, v := range c.Tier0.Streams {
				m[strconv.FormatUint(id, 10)] = bytesize.Format(v)
			}
			return m
		},
	}
}

func checkSampleEvery(n int) error {
	if n == -1 || n >= 1 {
		return nil
	}
	return errors.New("want -1 (none) or at least 1")
}

func positive(d time.Duration) error {
	if d <= 0 {
		return errors.New("must be positive")
	}
	return nil
}

func checkPath(p string) error {
	if p == "" {
		return errors.New("must not be empty")
	}
	return checkOptionalPath(p)
}

func checkOptionalPath(p string) error {
	if strings.IndexByte(p, 0) >= 0 {
		return errors.New("contains a NUL byte")
	}
	return nil
}

// checkAddr accepts "" (listener off) or host:port with a numeric port.
func checkAddr(a string) error {
	if a == "" {
		return nil
	}
	_, port, err := net.SplitHostPort(a)
	if err != nil {
		return errors.New(`want host:port, e.g. "127.0.0.1:7400" or "[::1]:7400"`)
	}
	if n, err := strconv.ParseUint(port, 10, 16); err != nil || (n == 0 && port != "0") {
		return errors.New("port must be a number from 0 to 65535")
	}
	return nil
}

func checkSegmentSize(n int64) error {
	if !segment.ValidSegmentSize(n) {
		return errors.New("want a power of two from 1MiB to 1GiB")
	}
	return nil
}

func checkInitialSegmentSize(n int64) error {
	if !segment.ValidCapacity(n) {
		return errors.New("want a power of two from 64KiB to 1GiB")
	}
	return nil
}

func checkChunkCapacity(n int64) error {
	if n < manifest.MinChunkCapacity || n > manifest.MaxChunkCapacity || n%4096 != 0 {
		return errors.New("want a multiple of 4KiB from 16KiB to 1MiB")
	}
	return nil
}

func checkRotation(d time.Duration) error {
	if d >= 0 && (d < time.Millisecond || d > time.Hour) {
		return errors.New("want 1ms to 1h, or negative to disable")
	}
	return nil
}

func checkViewInterval(d time.Duration) error {
	if d >= 0 && (d < time.Millisecond || d > time.Hour) {
		return errors.New("want 1ms to 1h, or negative for no pause")
	}
	return nil
}

func checkSnapshotEvery(n int64) error {
	if n != 0 && n < manifest.MinChunkCapacity {
		return errors.New("want at least 16KiB, 0 for 4 × chunk_capacity, or -1 to disable")
	}
	return nil
}

var pluginName = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]*$`)

func checkPluginName(n string) error {
	if n != "" && !pluginName.MatchString(n) {
		return errors.New("a plugin name is lower-case letters, digits, - and _ (the binary is aof2-plugin-<name>)")
	}
	return nil
}

func checkSHA256(s string) error {
	if s == "" {
		return nil
	}
	if b, err := hex.DecodeString(s); err != nil || len(b) != 32 {
		return errors.New("want 64 hex digits")
	}
	return nil
}

func checkPrefix(p string) error {
	if p == "" {
		return nil
	}
	_, err := tier2.NewLayout(p)
	return err
}

var envNameRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

func checkEnvName(n string) error {
	if !envNameRE.MatchString(n) {
		return errors.New("not an environment variable name")
	}
	return nil
}
