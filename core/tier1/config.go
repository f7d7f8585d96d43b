package tier1

import (
	"fmt"
	"strings"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/klauspost/compress/zstd"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/aof2/aof2/core/types"
	"github.com/aof2/aof2/core/vfs"
)

// Level is a compression level, one of klauspost/compress/zstd's four.
type Level uint8

// Levels.
const (
	LevelFastest Level = iota + 1 // zstd level ~1
	LevelDefault                  // zstd level ~3
	LevelBetter                   // zstd level ~7
	LevelBest                     // zstd level ~11
)

var levelNames = map[Level]string{LevelFastest: "fastest", LevelDefault: "default", LevelBetter: "better", LevelBest: "best"}

func (l Level) String() string {
	if s, ok := levelNames[l]; ok {
		return s
	}
	return fmt.Sprintf("level(%d)", uint8(l))
}

// ParseLevel parses a level name ("fastest", "default", "better", "best").
func ParseLevel(s string) (Level, error) {
	for l, n := range levelNames {
		if strings.EqualFold(n, s) {
			return l, nil
		}
	}
	return 0, &types.ConfigError{Key: "tier1.level", Reason: fmt.Sprintf("unknown level %q", s)}
}

func (l Level) zstd() zstd.EncoderLevel {
	switch l {
	case LevelFastest:
		return zstd.SpeedFastest
	case LevelBetter:
		return zstd.SpeedBetterCompression
	case LevelBest:
		return zstd.SpeedBestCompression
	}
	return zstd.SpeedDefault
}

// Defaults, chosen by the measurements in docs/adr-tier1.md.
const (
	DefaultFrameSize  = 256 << 10
	DefaultLevel      = LevelFastest
	MinFrameSize      = 64 << 10
	DefaultQueueDepth = 64
)

// VerifyMode says how much of each artifact Open checks.
type VerifyMode uint8

const (
	// VerifyQuick reads the seek table and the frames holding the segment
	// header and footer, and compares them with the expectation: cost per
	// artifact is constant, so restart time does not grow with the bytes
	// cached. Hydration always verifies every byte anyway.
	VerifyQuick VerifyMode = iota
	// VerifyFull also decompresses every frame and recomputes
	// segment_crc64.
	VerifyFull
)

// Options shape how a segment is compressed.
type Options struct {
	// FrameSize is the decompressed size of each zstd frame (the unit of
	// random access), in [MinFrameSize, MaxFrameSize]. Default 256 KiB.
	FrameSize int
	// Level is the zstd level. Default LevelFastest.
	Level Level
}

func (o Options) withDefaults() (Options, error) {
	if o.FrameSize == 0 {
		o.FrameSize = DefaultFrameSize
	}
	if o.Level == 0 {
		o.Level = DefaultLevel
	}
	if o.FrameSize < MinFrameSize || o.FrameSize > MaxFrameSize {
		return o, &types.ConfigError{Key: "tier1.frame_size", Reason: fmt.Sprintf("%d outside [%d, %d]", o.FrameSize, MinFrameSize, MaxFrameSize)}
	}
	if _, ok := levelNames[o.Level]; !ok {
		return o, &types.ConfigError{Key: "tier1.level", Reason: fmt.Sprintf("unknown level %d", o.Level)}
	}
	return o, nil
}

// Config configures a Cache.
type Config struct {
	// FS is the file system; default vfs.OS.
	FS vfs.FS
	// DataDir is the store's data directory; artifacts live in
	// <DataDir>/streams/<stream_id>/warm/<segment_id:020>.seg.zst.
	DataDir string
	// Options are the compression options.
	Options Options
	// MaxBytes is the byte budget (sum of artifact sizes); 0 means
	// unlimited. Evict brings the cache back under it.
	MaxBytes int64
	// MinResidency keeps an artifact from eviction for this long after it
	// was admitted. Zero disables it.
	MinResidency time.Duration
	// Tier2 says a tier 2 is configured: an artifact is then evicted only
	// after MarkUploaded.
	Tier2 bool
	// CompressWorkers and HydrateWorkers size the two pools (default 1
	// each); QueueDepth bounds each pool's queue (default 64).
	CompressWorkers int
	HydrateWorkers  int
	QueueDepth      int
	// Expected lists the artifacts the caller believes are in the cache
	// (from the manifest). Open verifies each file found against it and
	// reports mismatches, unknown files and missing artifacts.
	Expected []Expected
	// AdoptAfterOpen says the caller has no expectations when it opens
	// the cache and adopts the artifacts it knows afterwards (Adopt), as
	// the coordinator does: it opens the cache before the store has
	// recovered the manifests that name them. Open then lists artifacts no
	// expectation names in Report.Unknown without logging or counting
	// them; the caller reports those it does not adopt (ReportUnknown).
	AdoptAfterOpen bool
	// Verify is how thoroughly Open checks artifacts. Default VerifyQuick.
	Verify VerifyMode
	// Registerer receives the metrics; nil registers nothing.
	Registerer prometheus.Registerer
	// Logger receives structured events; default a null logger.
	Logger hclog.Logger
	// Now is the clock (for LRU order and minimum residency); default
	// time.Now.
	Now func() time.Time
}

func (c Config) withDefaults() (Config, error) {
	if c.FS == nil {
		c.FS = vfs.OS
	}
	if c.DataDir == "" {
		return c, &types.ConfigError{Key: "data_dir", Reason: "empty"}
	}
	var err error
	if c.Options, err = c.Options.withDefaults(); err != nil {
		return c, err
	}
	if c.MaxBytes < 0 {
		return c, &types.ConfigError{Key: "tier1.max_bytes", Reason: "negative"}
	}
	if c.MinResidency < 0 {
		return c, &types.ConfigError{Key: "tier1.min_residency", Reason: "negative"}
	}
	for _, w := range []struct {
		key string
		v   *int
		def int
	}{
		{"tier1.compress_workers", &c.CompressWorkers, 1},
		{"tier1.hydrate_workers", &c.HydrateWorkers, 1},
		{"tier1.queue_depth", &c.QueueDepth, DefaultQueueDepth},
	} {
		if *w.v == 0 {
			*w.v = w.def
		}
		if *w.v < 0 || *w.v > 1024 {
			return c, &types.ConfigError{Key: w.key, Reason: fmt.Sprintf("%d outside [1, 1024]", *w.v)}
		}
	}
	if c.Logger == nil {
		c.Logger = hclog.NewNullLogger()
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return c, nil
}
