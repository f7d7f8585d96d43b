package manifest

import (
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/trace"
)

// Chunk capacity bounds (docs/formats.md#manifest-chunk).
const (
	MinChunkCapacity     = 16 << 10
	MaxChunkCapacity     = 1 << 20
	DefaultChunkCapacity = 256 << 10
	// DefaultRotationPeriod bounds how long appended records may stay
	// uncommitted before the background rotation commits and seals them.
	DefaultRotationPeriod = 250 * time.Millisecond
	// DefaultSnapshotEveryChunks is Options.SnapshotEveryChunks' default.
	DefaultSnapshotEveryChunks = 64
	// DefaultViewInterval is Options.ViewInterval's default.
	DefaultViewInterval = time.Second
	// maxRotationPeriod keeps a typo (250s for 250ms) from disabling rotation.
	maxRotationPeriod = time.Hour
	// maxViewInterval keeps a typo from leaving the view an hour behind.
	maxViewInterval = time.Hour
)

// Configuration keys and environment variables, as an operator writes them.
// A ConfigError names one of these.
const (
	ConfigKeyChunkCapacity      = "manifest_chunk_capacity_bytes"
	ConfigKeyRotationPeriod     = "manifest_rotation_period"
	ConfigKeySnapshotEveryBytes = "manifest_snapshot_every_bytes"
	ConfigKeySnapshotEveryChunk = "manifest_snapshot_every_chunks"
	ConfigKeyLogOnly            = "tier1_manifest_log_only"
	ConfigKeyViewInterval       = "manifest_view_interval"
	EnvLogOnly                  = "AOF2_MANIFEST_LOG_ONLY"
)

// Options configure a Log. The zero value is valid and gives the defaults.
type Options struct {
	// ChunkCapacity is the preallocated size of a chunk file in bytes: a
	// multiple of 4 KiB in [16 KiB, 1 MiB]. Zero means 256 KiB.
	ChunkCapacity int64
	// RotationPeriod: records appended but not committed are committed,
	// and their chunk sealed, by the background goroutine one period after
	// the first of them was appended (unless a commit comes first); a
	// chunk holding committed records is sealed one to two periods after
	// the first of them was committed, so that every committed record
	// reaches a sealed chunk — the unit tier 2 receives — in bounded time.
	// The timer runs only while such records wait. Zero means 250 ms;
	// negative disables the timer (chunks then seal only when full).
	RotationPeriod time.Duration
	// SnapshotEveryBytes: after a chunk is sealed, a snapshot is taken in
	// the background once this many committed log bytes have accumulated
	// since the last one. Zero means 4 × ChunkCapacity; negative disables
	// automatic snapshots (Snapshot can still be called).
	SnapshotEveryBytes int64
	// SnapshotEveryChunks: a snapshot is also taken once this many chunks
	// were sealed since the last one. The rotation timer seals small
	// chunks, each of them a tier-2 object until a snapshot covers it, so
	// this bounds a stream's tier-2 manifest as the byte count cannot.
	// Zero means DefaultSnapshotEveryChunks; negative disables the rule
	// (a negative SnapshotEveryBytes disables both).
	SnapshotEveryChunks int
	// LogOnly is the tier1_manifest_log_only flag. Off (false): the tier-1
	// JSON view warm/manifest.json is also persisted, behind the log (see
	// ViewInterval), and checked for parity at boot. On: no JSON is read or
	// written; boot replays snapshot + log only.
	LogOnly bool
	// ViewInterval is the least time between two writes of the JSON view
	// (flag off): it is rewritten whole, so this bounds what a stream
	// with many segments writes while commits keep coming. A commit after
	// a quiet interval is written at once. Zero means DefaultViewInterval;
	// negative, no pause between writes.
	ViewInterval time.Duration

	// Registerer receives the package's metrics. Nil registers nothing;
	// the global default registry is never used implicitly.
	Registerer prometheus.Registerer
	// Logger receives structured events. Nil discards them.
	Logger hclog.Logger
	// TracerProvider creates the replay span Open starts. Nil: the global
	// provider (a no-op until the host installs one).
	TracerProvider trace.TracerProvider
	// Clock drives rotation ticks and replay timings. Nil is the system clock.
	Clock Clock
	// GroundTruth, when set, is used by Open to rebuild residency when
	// replay finds corruption (see Log.Repair).
	GroundTruth GroundTruth
	// OnChunkSealed is called after a chunk is sealed and durable, from
	// the goroutine that sealed it (a committer or the rotation timer)
	// once it holds no lock, so it may call back into the Log. It should
	// not block for long: hand the chunk to an uploader and return.
	OnChunkSealed func(SealedChunk)

	// afterTick, in tests, runs after each rotation tick is handled.
	afterTick func()
}

// Clock is the time source of a Log. Tests inject a manual one.
type Clock interface {
	Now() time.Time
	NewTicker(d time.Duration) Ticker
}

// Ticker delivers ticks on C until stopped.
type Ticker interface {
	C() <-chan time.Time
	Stop()
}

// SystemClock is the real clock.
var SystemClock Clock = systemClock{}

type systemClock struct{}

func (systemClock) Now() time.Time { return time.Now() }
func (systemClock) NewTicker(d time.Duration) Ticker {
	return sysTicker{time.NewTicker(d)}
}

type sysTicker struct{ t *time.Ticker }

func (t sysTicker) C() <-chan time.Time { return t.t.C }
func (t sysTicker) Stop()               { t.t.Stop() }

// Validate checks o, returning a *ConfigError naming the offending key.
func (o Options) Validate() error {
	if c := o.ChunkCapacity; c != 0 && (c < MinChunkCapacity || c > MaxChunkCapacity || c%4096 != 0) {
		return &ConfigError{Key: ConfigKeyChunkCapacity, Value: c, Reason: "want a multiple of 4096 in [16384, 1048576] (16 KiB to 1 MiB)"}
	}
	if p := o.RotationPeriod; p > maxRotationPeriod || (p > 0 && p < time.Millisecond) {
		return &ConfigError{Key: ConfigKeyRotationPeriod, Value: p, Reason: "want 1ms to 1h, 0 for the 250ms default, or negative to disable"}
	}
	if v := o.ViewInterval; v > maxViewInterval {
		return &ConfigError{Key: ConfigKeyViewInterval, Value: v, Reason: "want up to 1h, 0 for the 1s default, or negative for no pause"}
	}
	if s := o.SnapshotEveryBytes; s > 0 && s < MinChunkCapacity {
		return &ConfigError{Key: ConfigKeySnapshotEveryBytes, Value: s, Reason: "want at least 16384, 0 for the default, or negative to disable"}
	}
	return nil
}

// withDefaults returns o with zero values replaced by defaults.
func (o Options) withDefaults() Options {
	if o.ChunkCapacity == 0 {
		o.ChunkCapacity = DefaultChunkCapacity
	}
	if o.RotationPeriod == 0 {
		o.RotationPeriod = DefaultRotationPeriod
	}
	if o.SnapshotEveryBytes == 0 {
		o.SnapshotEveryBytes = 4 * o.ChunkCapacity
	}
	if o.SnapshotEveryChunks == 0 {
		o.SnapshotEveryChunks = DefaultSnapshotEveryChunks
	}
	if o.ViewInterval == 0 {
		o.ViewInterval = DefaultViewInterval
	}
	if o.Logger == nil {
		o.Logger = hclog.NewNullLogger()
	}
	if o.Clock == nil {
		o.Clock = SystemClock
	}
	return o
}

// ApplyEnv overrides options from the environment: AOF2_MANIFEST_LOG_ONLY
// ("1"/"true" on, "0"/"false"/"" off). lookup is os.LookupEnv in
// production. A malformed value is a *ConfigError naming the variable.
// The environment overrides the configuration file, as for every AOF2_*
// variable.
func (o *Options) ApplyEnv(lookup func(string) (string, bool)) error {
	v, ok := lookup(EnvLogOnly)
	if !ok {
		return nil
	}
	on, err := parseBool(v)
	if err != nil {
		return &ConfigError{Key: EnvLogOnly, Value: strconv.Quote(v), Reason: "want 1, 0, true or false"}
	}
	o.LogOnly = on
	return nil
}

func parseBool(v string) (bool, error) {
	switch strings.ToLower(strings.TrimSpace(v)) {
	case "1", "true", "yes", "on":
		return true, nil
	case "0", "false", "no", "off", "":
		return false, nil
	}
	return false, strconv.ErrSyntax
}
