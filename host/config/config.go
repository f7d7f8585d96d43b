package config

import "time"

// Config is the host's whole configuration after defaults, the file, the
// environment and the flags have been applied and validated. Enumerations
// are kept as the names an operator writes; the conversion methods turn
// them into the core packages' types.
type Config struct {
	// DataDir holds segments, manifests, the warm cache and, by default,
	// the fs backend's objects.
	DataDir   string
	LogLevel  string // trace, debug, info, warn or error
	LogFormat string // auto, json or text
	// Role is "writer" (the default) or "replica": a read replica that
	// follows the prefix's writer from tier 2 (core/replica).
	Role    string
	Replica Replica
	// PluginDir is where backend plugin binaries live; "" means the
	// directory of the host binary. $PATH is never searched.
	PluginDir string

	Listen      Listen
	Segment     Segment
	Manifest    Manifest
	Tier0       Tier0
	Tier1       Tier1
	Tier2       Tier2
	Retention   Retention
	Coordinator Coordinator
	Scrub       Scrub
	Limits      Limits
	Tracing     Tracing
	Cluster     Cluster

	// File is the configuration file that was read ("" when none was).
	File string

	// origins records where each key's value came from (see origin).
	origins map[string]string
	// token is the bearer token after auth_token_file was read.
	token string
	// pluginPath is the resolved plugin binary ("" until resolved).
	pluginPath string
	opts       options
}

// Listen configures the client API's listeners and their protection.
type Listen struct {
	GRPC, HTTP          string // host:port; "" disables the listener
	Admin               string // pprof listener (host:port); "" is off
	AuthToken           string
	AuthTokenFile       string
	AllowInsecureRemote bool
	MetricsAuth         bool // /metrics needs the token too
	MetricsMaxStreams   int  // streams /metrics names (host/streamlabels); 0 all, -1 none
	TLS                 TLS
}

// TLS names the PEM files of the client API's TLS. A client CA makes the
// listeners require and verify client certificates.
type TLS struct {
	CertFile, KeyFile, ClientCAFile string
}

// Segment configures tier-0 segment files and the write path (core.Config).
// Replica configures role = "replica".
type Replica struct {
	PollInterval time.Duration // replica.Config.Interval
	ListInterval time.Duration // replica.Config.ListInterval
}

// IsReplica reports whether the host runs as a read replica.
func (c *Config) IsReplica() bool { return c.Role == "replica" }

type Segment struct {
	Size              int64
	InitialSize       int64
	TargetBytes       int64
	MaxAge            time.Duration // coordinator.Config.SegmentMaxAge; 0 is off
	Sync              string        // always, interval or none
	FlushInterval     time.Duration
	FlushBytes        int64
	MaxUnflushedBytes int64 // -1 disables the bound
	// NodeWAL and WALCheckpointBytes are core.Config's.
	NodeWAL            bool
	WALCheckpointBytes int64
	WriteMode          string
	Preparation        string
}

// Manifest configures each stream's manifest log (manifest.Options).
type Manifest struct {
	LogOnly            bool
	ChunkCapacity      int64
	RotationPeriod     time.Duration // negative disables the timer
	SnapshotEveryBytes int64         // 0: 4 × ChunkCapacity; negative disables
	// SnapshotEveryChunks is manifest.Options.SnapshotEveryChunks.
	SnapshotEveryChunks int
	// ViewInterval is manifest.Options.ViewInterval.
	ViewInterval time.Duration
}

// Tier0 configures the tier-0 byte budget (tier0.Config).
type Tier0 struct {
	MaxBytes       int64
	StreamMaxBytes int64
	Policy         string // auto, tier1 or tier2
	// Streams are per-stream overrides of StreamMaxBytes.
	Streams map[uint64]int64
	// DiskHighWatermark and DiskLowWatermark are percentages of the data
	// directory's file system (coordinator.Disk); 0 is off, and derived
	// for the low one.
	DiskHighWatermark float64
	DiskLowWatermark  float64
}

// Tier1 configures the warm cache (tier1.Config).
type Tier1 struct {
	MaxBytes        int64
	MinResidency    time.Duration
	FrameSize       int64
	Level           string
	CompressWorkers int
	HydrateWorkers  int
	QueueDepth      int
	Verify          string // quick or full
}

// Tier2 configures the remote store (tier2.Config) and the backend plugin
// that serves it (pluginapi/host.LaunchConfig).
type Tier2 struct {
	Enabled          bool
	Plugin           string
	SHA256           string
	Prefix           string
	MaxConcurrency   int
	ReserveSegments  int
	AttemptTimeout   time.Duration
	RetryAttempts    int
	RetryInitial     time.Duration
	RetryMax         time.Duration
	BreakerThreshold int
	BreakerCooldown  time.Duration
	DisableAutoMTLS  bool
	StartTimeout     time.Duration
	// EnvAllow names host variables the plugin inherits on top of
	// pluginapi/host.DefaultEnvAllowList (e.g. AWS_PROFILE).
	EnvAllow []string
	// Settings is handed to the plugin's Configure as is.
	Settings map[string]string
}

// Retention bounds what each stream keeps (coordinator.Retention).
type Retention struct {
	MaxAge   time.Duration
	MaxBytes int64
}

// Coordinator configures the tiering job runner (coordinator.Config).
type Coordinator struct {
	Workers      int
	ScanInterval time.Duration
	JobTimeout   time.Duration
}

// Scrub configures the scrubber (coordinator.Scrub).
type Scrub struct {
	Interval          time.Duration
	BytesPerSecond    int64
	Tier2Sample       float64 // percent
	Tier2FullGetBytes int64
}

// Limits bound what clients can make the node hold.
type Limits struct {
	// MaxStreams caps the streams of the store (core.Config.MaxStreams);
	// 0 is no limit.
	MaxStreams int
	// ReadDefaultBytes, ReadMaxBytes and ReadInflightBytes bound what
	// reads hold (server.Options.ReadDefaultBytes, ReadMaxBytes and
	// ReadBudgetBytes).
	ReadDefaultBytes  int64
	ReadMaxBytes      int64
	ReadInflightBytes int64
	// ReadStallTimeout is server.Options.ReadStallTimeout.
	ReadStallTimeout time.Duration
}

// Tracing configures span sampling (the exporter itself is configured by
// the standard OTEL_* variables).
type Tracing struct {
	AppendEvery int // negative: no append or flush spans
}

// Cluster configures the replicated mode (host/cluster).
type Cluster struct {
	NodeID   string // "" runs single-node
	RaftAddr string
	Peers    []string // id=host:port
	Join     string
	Data     string // "" is <data_dir>/raft
	LogStore string
	// ElectionTimeout is Raft's heartbeat and election timeout.
	ElectionTimeout time.Duration
	// SnapshotThreshold, SnapshotInterval and TrailingLogs tune Raft's
	// snapshots and log compaction.
	SnapshotThreshold int
	SnapshotInterval  time.Duration
	TrailingLogs      int
	// AdvertiseGRPC and AdvertiseHTTP default to the listeners.
	AdvertiseGRPC, AdvertiseHTTP string
}

// Clustered reports whether the host runs in a replicated cluster.
func (c *Config) Clustered() bool { return c.Cluster.NodeID != "" }

// Tier2Enabled reports whether a tier 2 is configured.
func (c *Config) Tier2Enabled() bool { return c.Tier2.Enabled && c.Tier2.Plugin != "" }

// Origin says where key's value came from: "default", a file position
// ("aof2.hcl:12:3"), "env AOF2_…" or "flag -…". Entries of map keys are
// named like "tier2.settings.root" or "tier0.stream.42.max_bytes".
func (c *Config) Origin(key string) string {
	if o, ok := c.origins[key]; ok {
		return o
	}
	return "default"
}
