package coordinator

import (
	"fmt"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/trace"

	"github.com/aof2/aof2/core"
	"github.com/aof2/aof2/core/budget"
	"github.com/aof2/aof2/core/tier1"
	"github.com/aof2/aof2/core/tier2"
	"github.com/aof2/aof2/core/types"
	"github.com/aof2/aof2/core/vfs"
)

// Config configures a Coordinator.
type Config struct {
	// DataDir is the store's data directory (as given to core.Open).
	DataDir string
	// FS is the file system of the data directory; default vfs.OS. On the
	// OS file system (or a wrapper over it, vfs.OnOS) tier 2 moves files
	// through the plugin by path (PutFile/GetFile); on any other (the
	// crash-test MemFS) bytes go through memory.
	FS vfs.FS
	// Tier0 configures the tier-0 budget (MaxBytes 0: unlimited). Its
	// Registerer and Logger default to the coordinator's.
	Tier0 budget.Config
	// Tier1 configures the warm cache; DataDir, FS, Tier2, Registerer and
	// Logger are filled in.
	Tier1 tier1.Config
	// Tier2 is the remote store; nil means no tier 2 (then tier 1 is the
	// coldest copy and the tier-0 policy must be PolicyTier1).
	Tier2 *tier2.Store
	// Retention bounds what each stream keeps (needs a tier 2).
	Retention Retention
	// ReserveSegments is how many segment ids one reservation in tier 2
	// covers (reserve.go, docs/tiering.md#segment-id-reservations): a
	// segment id is activated only once tier 2 holds a reservation
	// through it, so that a restore from tier 2 alone never hands out an
	// id this node used. One small object per ReserveSegments segments of
	// a stream; the next reservation is made in the background once half
	// of the current one is used. Default 16; only with a tier 2.
	ReserveSegments int
	// Replica runs the coordinator of a read replica (core/replica): it
	// claims no writer and makes no tier-2 mutation — no upload, chunk,
	// snapshot, reservation, trim or retention delete — and keeps only
	// the node's own caches: hydration from tier 2, compression of
	// hydrated segments into tier 1, eviction under the budgets.
	Replica bool
	// Cluster, when set, runs the coordinator of a Raft cluster member
	// (cluster.go): only the leader uploads, and every node records an
	// upload when the log says so. Not with Replica or Retention.
	Cluster *Cluster
	// SealActive, when set, replaces Stream.SealActive for the seals the
	// coordinator decides (segment.max_age, tier-0 pressure): in a
	// cluster a seal is a Raft entry the leader proposes, so that every
	// node seals at the same record (host/cluster). It returns nil when
	// the seal is not this node's to make.
	SealActive func(s *core.Stream, id types.SegmentID) error
	// SegmentMaxAge seals an active segment once its first record is this
	// old (age.go), so that every record is on its way to the other tiers
	// within about this long (the recovery point); 0 is off.
	SegmentMaxAge time.Duration
	// Disk evicts what other tiers hold when the disk fills (pressure.go).
	Disk Disk
	// Scrub configures the scrubber (scrub.go): background verification
	// of every copy of every sealed segment.
	Scrub Scrub
	// Workers bounds concurrent jobs (compress, upload, evict); default 2.
	Workers int
	// ScanInterval is how often pending work is re-derived; default 1 s.
	ScanInterval time.Duration
	// JobTimeout bounds one job; default 5 min.
	JobTimeout time.Duration
	// HydrateRetries is how many times a hydration retries a transient
	// tier-2 fetch failure (default 3; -1: never), waiting HydrateRetryDelay
	// (default 100 ms, doubling, jittered) in between.
	HydrateRetries    int
	HydrateRetryDelay time.Duration
	Registerer        prometheus.Registerer
	Logger            hclog.Logger
	// LogClock is the clock of the rate-limited failure logs (when a
	// summary is due; docs/adr-host.md, "Logs while something stays
	// broken"); default time.Now. Tests inject one.
	LogClock func() time.Time
	// TracerProvider creates the spans of compressions, uploads,
	// evictions, hydrations, manifest chunk uploads and retention deletes.
	// Nil: the global provider (a no-op until the host installs one).
	TracerProvider trace.TracerProvider
}

func (c Config) withDefaults() (Config, error) {
	if c.DataDir == "" {
		return c, &types.ConfigError{Key: "data_dir", Reason: "required"}
	}
	if c.FS == nil {
		c.FS = vfs.OS
	}
	if c.Tier2 == nil && c.Tier0.Policy == budget.PolicyTier2 {
		return c, &types.ConfigError{Key: "tier0.policy", Reason: "tier2 policy without a tier 2"}
	}
	if c.Retention.enabled() && c.Tier2 == nil {
		return c, &types.ConfigError{Key: "retention", Reason: "retention deletes through tier 2 and needs one configured"}
	}
	if c.Cluster != nil {
		if err := c.Cluster.check(c.Retention.enabled()); err != nil {
			return c, err
		}
		if c.Replica {
			return c, &types.ConfigError{Key: "cluster", Reason: "a cluster member is no read replica"}
		}
	}
	if err := c.Disk.withDefaults(vfs.OnOS(c.FS), c.DataDir); err != nil {
		return c, err
	}
	var err error
	if c.Scrub, err = c.Scrub.withDefaults(); err != nil {
		return c, err
	}
	if c.Workers == 0 {
		c.Workers = 2
	}
	if c.Workers < 0 {
		return c, &types.ConfigError{Key: "coordinator.workers", Reason: fmt.Sprintf("%d is negative", c.Workers)}
	}
	switch {
	case c.ReserveSegments == 0:
		c.ReserveSegments = 16
	case c.ReserveSegments < 0:
		return c, &types.ConfigError{Key: "coordinator.reserve_segments", Reason: fmt.Sprintf("%d is negative", c.ReserveSegments)}
	}
	if c.SegmentMaxAge < 0 {
		return c, &types.ConfigError{Key: "segment.max_age", Reason: fmt.Sprintf("%s is negative", c.SegmentMaxAge)}
	}
	if c.ScanInterval == 0 {
		c.ScanInterval = time.Second
	}
	if c.JobTimeout == 0 {
		c.JobTimeout = 5 * time.Minute
	}
	switch {
	case c.HydrateRetries == 0:
		c.HydrateRetries = 3
	case c.HydrateRetries < 0:
		c.HydrateRetries = 0
	}
	if c.HydrateRetryDelay <= 0 {
		c.HydrateRetryDelay = 100 * time.Millisecond
	}
	if c.Logger == nil {
		c.Logger = hclog.NewNullLogger()
	}
	if c.LogClock == nil {
		c.LogClock = time.Now
	}
	if c.Tier0.Registerer == nil {
		c.Tier0.Registerer = c.Registerer
	}
	if c.Tier0.Logger == nil {
		c.Tier0.Logger = c.Logger.Named("tier0")
	}
	c.Tier1.DataDir, c.Tier1.FS, c.Tier1.Tier2 = c.DataDir, c.FS, c.Tier2 != nil
	// The manifests naming the warm artifacts are recovered after New
	// opens the cache: Start adopts them, then reports the rest.
	c.Tier1.AdoptAfterOpen = true
	if c.Tier1.Registerer == nil {
		c.Tier1.Registerer = c.Registerer
	}
	if c.Tier1.Logger == nil {
		c.Tier1.Logger = c.Logger.Named("tier1")
	}
	return c, nil
}
