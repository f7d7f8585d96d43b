package core

import (
	"fmt"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/trace"

	"github.com/aof2/aof2/core/internal/tracing"
	"github.com/aof2/aof2/core/manifest"
	"github.com/aof2/aof2/core/segment"
	"github.com/aof2/aof2/core/types"
	"github.com/aof2/aof2/core/vfs"
)

// SyncPolicy says when appended records become durable without an
// explicit Flush.
type SyncPolicy uint8

const (
	// SyncAlways makes every append durable promptly: a background flusher
	// syncs whenever there are unsynced bytes, and concurrent waiters share
	// one sync (group commit).
	SyncAlways SyncPolicy = iota + 1
	// SyncInterval syncs every FlushInterval, or sooner once FlushBytes are
	// unsynced.
	SyncInterval
	// SyncNone syncs only on Flush, Seal and Close (benchmarks, bulk loads).
	SyncNone
)

func (p SyncPolicy) String() string {
	switch p {
	case SyncAlways:
		return "always"
	case SyncInterval:
		return "interval"
	case SyncNone:
		return "none"
	}
	return fmt.Sprintf("sync(%d)", uint8(p))
}

// ParseSyncPolicy parses "always", "interval" or "none".
func ParseSyncPolicy(s string) (SyncPolicy, error) {
	for _, p := range []SyncPolicy{SyncAlways, SyncInterval, SyncNone} {
		if p.String() == s {
			return p, nil
		}
	}
	return 0, &types.ConfigError{Key: "sync", Reason: fmt.Sprintf("%q is not one of always, interval, none", s)}
}

// Config configures a Store. The zero value of every field means its
// default.
type Config struct {
	// FS is the file system; default vfs.OS.
	FS vfs.FS
	// SegmentSize is the capacity segment files grow to: a power of two in
	// [1 MiB, 1 GiB]; default 64 MiB. It bounds the largest record.
	SegmentSize int64
	// InitialSegmentSize is the capacity of a stream's first segment file:
	// a power of two in [64 KiB, SegmentSize]; default 64 KiB. Each next
	// segment is twice the one it follows (or, after a seal or a restart
	// left no active segment, holds twice what the newest one holds), up
	// to SegmentSize, and always large enough for the record that opens
	// it: a stream's disk follows the bytes it holds (docs/adr-tier0.md,
	// "Per-stream cost"). Setting it to SegmentSize turns growth off.
	InitialSegmentSize int64
	// SegmentTargetBytes rolls a segment over once it holds this many bytes
	// of records, before it is full; default: only when full.
	SegmentTargetBytes int64
	// Sync is the sync policy; default SyncAlways.
	Sync SyncPolicy
	// FlushInterval and FlushBytes drive SyncInterval; defaults 10 ms and
	// 1 MiB.
	FlushInterval time.Duration
	FlushBytes    int64
	// MaxUnflushedBytes bounds appended-but-not-durable bytes per stream;
	// past it Append returns WouldBlock(Flush). Default 64 MiB; -1 disables.
	MaxUnflushedBytes int64
	// WriteMode is how records reach the page cache; default pwrite.
	WriteMode segment.WriteMode
	// Preparation is how new segment files are readied; default fallocate.
	Preparation segment.Preparation
	// Logger receives structured logs; default discards them.
	Logger hclog.Logger
	// Registerer receives the store's Prometheus metrics; default none.
	Registerer prometheus.Registerer
	// Now is the clock for record and segment timestamps; default time.Now,
	// except that record timestamps are then taken as the wall time at Open
	// plus the monotonic time since (one clock read per append instead of
	// two; they never go backwards within a process, and a wall-clock step
	// shows up at the next Open).
	Now func() time.Time
	// nowNanos is the record-timestamp clock derived from Now.
	nowNanos func() int64
	// syncLinger is how long a stream's syncer with nothing to do waits
	// for work before it exits; default defaultSyncLinger. Tests shorten
	// it to have syncers stop and start all the time.
	syncLinger time.Duration
	// fastFill: a segment filled within this time of its activation
	// counts as filled fast (nextCapacityLocked); default defaultFastFill,
	// negative never. Tests set it to pin the growth they check.
	fastFill time.Duration
	// Manifest configures each stream's manifest log (core/manifest); its
	// GroundTruth is always the stream itself, and Registerer and Logger
	// default to the store's.
	Manifest manifest.Options
	// Tiering is the colder tiers (core/coordinator): it budgets tier 0,
	// hears about seals and reads, and describes, reads and hydrates
	// segments whose tier-0 files were evicted. Nil: no tiering.
	Tiering Tiering
	// NoManifest runs without manifest logs (benchmarks of the bare write
	// path, embedders with no tiering).
	NoManifest bool
	// TailReplayed says the caller replays, from a log of its own, every
	// record a crash lost (a Raft state machine: host/cluster). After an
	// unclean shutdown the tail segment is then resumed after its intact
	// records instead of sealed, so that the replayed records get the ids
	// they had, on every node alike. Without it the tail is sealed and
	// appends go on in a new segment: ids handed out and lost are never
	// given to other payloads (docs/tiering.md#recovery). Seals then
	// stamp no time of this node's clock (Stream.sealedAt): the segments
	// of every node applying one log are byte-identical.
	TailReplayed bool
	// RequireExtID refuses every record without a log position
	// (AppendOptions.ExtID 0: ErrExtIDRequired). A Raft state machine's
	// store sets it: each record carries its entry's index, which is how a
	// replay tells what the store holds, and one without it can only have
	// been written outside the log (host/cluster).
	RequireExtID bool
	// NodeWAL makes durable appends durable through one write-ahead log
	// for every stream of the store (docs/adr-node-wal.md): one sync
	// acknowledges the records of all streams that appended since the
	// last, where each stream would sync its own segment file. It needs
	// Sync = SyncAlways, and neither TailReplayed nor Follower. A record
	// then holds up to 40 bytes less than without it.
	NodeWAL bool
	// WALCheckpointBytes is how many bytes of entries the node WAL takes
	// between checkpoints (every stream's segments synced, the WAL's older
	// segments dropped); default DefaultWALCheckpointBytes.
	WALCheckpointBytes int64
	// NodeWALAcceptLoss is the operator's decision (aof2-host repair
	// -node-wal -accept-loss) that what the node WAL holds and Open cannot
	// replay is lost: a WAL that is damaged, cannot be recovered, or holds
	// records a stream could not take. Open then seals every stream's tail
	// so that no id the WAL may have handed out is given again, records
	// the decision in each stream's manifest, moves the WAL's files aside
	// (kept, never deleted) and starts a new WAL (docs/adr-node-wal.md).
	// Without damage it changes nothing. Only with NodeWAL.
	NodeWALAcceptLoss bool
	// nodeWAL is set on the configuration user streams run with under
	// NodeWAL (walConfigs).
	nodeWAL bool
	// Follower, when set, opens the store as a read replica of another
	// writer (core/replica): no stream prepares a segment file or takes an
	// id, appends fail with the error Follower returns (a
	// *types.ReplicaError naming the writer), and segments arrive only
	// through Stream.Follow.
	Follower func() error
	// TracerProvider creates the store's OpenTelemetry spans: seals,
	// sampled durable appends and flushes, and (unless Manifest sets its
	// own) manifest replays. Default: the global provider, a no-op until
	// the host installs one (host/telemetry).
	TracerProvider trace.TracerProvider
	// DurableMarkInterval is how often, at most, a sync round refreshes a
	// stream's durable mark (how far it is proven durable; recovery treats
	// a bad record before the mark as damage, never as a torn write).
	// Default 1 s.
	DurableMarkInterval time.Duration
	// TraceAppendEvery gives one in this many AppendDurable calls of a
	// stream a span, and separately one in this many Flush/FlushAll calls;
	// default DefaultTraceAppendEvery, negative: none.
	TraceAppendEvery int
	// MaxStreams bounds how many streams the store holds (open or failed
	// to recover): creating one more fails with ErrTooManyStreams. Streams
	// already on disk always open. Default 0: no limit.
	MaxStreams int
}

// DefaultInitialSegmentSize is Config.InitialSegmentSize's default.
const DefaultInitialSegmentSize = segment.MinFileCapacity

// DefaultTraceAppendEvery is Config.TraceAppendEvery's default.
const DefaultTraceAppendEvery = tracing.DefaultSampleEvery

func (c Config) withDefaults() (Config, error) {
	if c.FS == nil {
		c.FS = vfs.OS
	}
	if c.SegmentSize == 0 {
		c.SegmentSize = segment.DefaultCapacity
	}
	if !segment.ValidSegmentSize(c.SegmentSize) {
		return c, &types.ConfigError{Key: "segment_size", Reason: fmt.Sprintf("%d is not a power of two in [1 MiB, 1 GiB]", c.SegmentSize)}
	}
	if c.InitialSegmentSize == 0 {
		c.InitialSegmentSize = DefaultInitialSegmentSize
	}
	if !segment.ValidCapacity(c.InitialSegmentSize) || c.InitialSegmentSize > c.SegmentSize {
		return c, &types.ConfigError{Key: "initial_segment_size", Reason: fmt.Sprintf("%d is not a power of two in [64 KiB, segment_size]", c.InitialSegmentSize)}
	}
	if c.SegmentTargetBytes < 0 || c.SegmentTargetBytes > segment.DataEnd(c.SegmentSize)-segment.HeaderSize {
		return c, &types.ConfigError{Key: "segment_target_bytes", Reason: fmt.Sprintf("%d is outside [0, segment_size - 160]", c.SegmentTargetBytes)}
	}
	if c.Sync == 0 {
		c.Sync = SyncAlways
	}
	if c.Sync > SyncNone {
		return c, &types.ConfigError{Key: "sync", Reason: fmt.Sprintf("unknown policy %d", c.Sync)}
	}
	if c.FlushInterval == 0 {
		c.FlushInterval = 10 * time.Millisecond
	}
	if c.FlushInterval < 0 {
		return c, &types.ConfigError{Key: "flush_interval", Reason: "must be positive"}
	}
	if c.FlushBytes == 0 {
		c.FlushBytes = 1 << 20
	}
	if c.FlushBytes < 0 {
		return c, &types.ConfigError{Key: "flush_bytes", Reason: "must be positive"}
	}
	if c.MaxUnflushedBytes == 0 {
		c.MaxUnflushedBytes = 64 << 20
	}
	if c.MaxUnflushedBytes < -1 {
		return c, &types.ConfigError{Key: "max_unflushed_bytes", Reason: "must be positive or -1"}
	}
	if c.WriteMode > segment.WriteMmap {
		return c, &types.ConfigError{Key: "write_mode", Reason: fmt.Sprintf("unknown mode %d", c.WriteMode)}
	}
	if c.Preparation == 0 {
		c.Preparation = segment.PrepareFallocate
	}
	if _, ok := segment.ParsePreparation(c.Preparation.String()); !ok {
		return c, &types.ConfigError{Key: "preparation", Reason: fmt.Sprintf("unknown preparation %d", c.Preparation)}
	}
	if c.Logger == nil {
		c.Logger = hclog.NewNullLogger()
	}
	if c.Now == nil {
		c.Now = time.Now
		base := time.Now()
		wall := base.UnixNano()
		c.nowNanos = func() int64 { return wall + int64(time.Since(base)) }
	} else if c.nowNanos == nil {
		now := c.Now
		c.nowNanos = func() int64 { return now().UnixNano() }
	}
	if c.TracerProvider == nil {
		c.TracerProvider = otel.GetTracerProvider()
	}
	if c.MaxStreams < 0 {
		return c, &types.ConfigError{Key: "max_streams", Reason: "must be 0 (no limit) or positive"}
	}
	if c.TraceAppendEvery == 0 {
		c.TraceAppendEvery = DefaultTraceAppendEvery
	}
	if c.DurableMarkInterval == 0 {
		c.DurableMarkInterval = time.Second
	}
	if c.DurableMarkInterval < 0 {
		return c, &types.ConfigError{Key: "durable_mark_interval", Reason: "must be positive"}
	}
	if c.syncLinger <= 0 {
		c.syncLinger = defaultSyncLinger
	}
	if c.fastFill == 0 {
		c.fastFill = defaultFastFill
	}
	if c.WALCheckpointBytes == 0 {
		c.WALCheckpointBytes = DefaultWALCheckpointBytes
	}
	if c.WALCheckpointBytes < 0 {
		return c, &types.ConfigError{Key: "wal_checkpoint_bytes", Reason: "must be positive"}
	}
	if c.NodeWAL && (c.Sync != SyncAlways || c.TailReplayed || c.RequireExtID || c.Follower != nil) {
		return c, &types.ConfigError{Key: "node_wal", Reason: "needs sync = always, and is not for a cluster member's or a follower's store"}
	}
	if c.NodeWALAcceptLoss && !c.NodeWAL {
		return c, &types.ConfigError{Key: "node_wal", Reason: "accepting the node WAL's loss needs the node WAL on"}
	}
	return c, nil
}

// maxRecordSize is the largest payload a stream takes: what a segment
// holds, less the node WAL entry's header when there is one.
func (c *Config) maxRecordSize() int64 {
	n := segment.MaxRecordSize(c.SegmentSize)
	if c.NodeWAL || c.nodeWAL {
		n -= walEntryHeader
	}
	return n
}
