package types

import (
	"errors"
	"fmt"
	"time"
)

// Sentinels. Callers branch on them with errors.Is; the errors returned
// carry context and wrap one of these.
var (
	// ErrWouldBlock: the operation cannot proceed now; retry later or use
	// the context-taking variant. The error carries a Kind (see WouldBlock).
	ErrWouldBlock = errors.New("aof2: would block")
	// ErrEmptyRecord: a record must carry at least one byte.
	ErrEmptyRecord = errors.New("aof2: empty record")
	// ErrRecordTooLarge: the payload exceeds the segment's maximum record size.
	ErrRecordTooLarge = errors.New("aof2: record too large")
	// ErrUnknownStream: no such stream.
	ErrUnknownStream = errors.New("aof2: unknown stream")
	// ErrNotFound: the RecordID or ordinal lies past the end of the stream or
	// names a segment that does not exist.
	ErrNotFound = errors.New("aof2: record not found")
	// ErrInvalidRecordID: the RecordID does not point at a record boundary.
	ErrInvalidRecordID = errors.New("aof2: invalid record id")
	// ErrCorrupt: stored bytes fail their checksum or structural checks.
	ErrCorrupt = errors.New("aof2: corrupt data")
	// ErrNoSpace: the file system is out of space; raised when a segment is
	// allocated, never in the middle of a write.
	ErrNoSpace = errors.New("aof2: no space left")
	// ErrStreamFailed: an earlier durability failure stopped the stream
	// (fail-stop); reopen the store to recover from disk.
	ErrStreamFailed = errors.New("aof2: stream failed")
	// ErrClosed: the store or stream is closed.
	ErrClosed = errors.New("aof2: closed")
	// ErrInvalidConfig: a configuration value is out of range.
	ErrInvalidConfig = errors.New("aof2: invalid config")
	// ErrSegmentIDExhausted: the stream has used every 32-bit segment id.
	ErrSegmentIDExhausted = errors.New("aof2: segment ids exhausted")
	// ErrNeedsRestore: tier 2 holds more of the stream than this node
	// (the local data is gone or older): appending here would hand out
	// ids that already name records. The error is a *NeedsRestoreError.
	ErrNeedsRestore = errors.New("aof2: stream needs a restore from tier 2")
	// ErrDamaged: recovery found durable bytes of the stream damaged (not
	// a torn last write). Nothing was dropped; appends are refused until
	// the damage is repaired from another copy or an operator accepts the
	// loss. The error is a *DamageError.
	ErrDamaged = errors.New("aof2: stream damaged")
	// ErrNotDamaged: a loss was accepted for a stream that has no damage.
	ErrNotDamaged = errors.New("aof2: stream is not damaged")
	// ErrFenced: another node claimed the tier-2 prefix this node wrote to
	// (a takeover): this node stopped writing to it for good; reads go on.
	// The error is a *FencedError naming the new writer.
	ErrFenced = errors.New("aof2: fenced: another node writes this tier-2 prefix")
	// ErrReplica: this node is a read replica of another writer (role
	// "replica"): it serves reads of what the writer uploaded and refuses
	// appends. The error is a *ReplicaError naming the writer.
	ErrReplica = errors.New("aof2: read replica: appends go to the writer")
	// ErrSequenceStale: an idempotent append names a sequence older than
	// its producer's last request, which cannot be answered any more.
	ErrSequenceStale = errors.New("aof2: producer sequence is older than the producer's last request")
	// ErrSequenceMismatch: an idempotent append reuses a sequence the
	// stream took with other records.
	ErrSequenceMismatch = errors.New("aof2: producer sequence was used for other records")
	// ErrBatchTooLarge: an idempotent append does not fit one segment.
	ErrBatchTooLarge = errors.New("aof2: idempotent batch too large")
	// ErrTooManyStreams: creating the stream would exceed the store's
	// stream limit (Config.MaxStreams). Existing streams are unaffected.
	ErrTooManyStreams = errors.New("aof2: too many streams")
)

// Kind says what a WouldBlock is waiting for.
type Kind uint8

// WouldBlock kinds.
const (
	// Admission: no local space (disk full or budget exhausted) to activate
	// a new segment.
	Admission Kind = iota + 1
	// Rollover: the next segment is not active yet (being prepared, or the
	// previous one is still sealing).
	Rollover
	// Hydration: the segment must be fetched back from a colder tier.
	Hydration
	// Flush: more acknowledged-but-not-durable bytes than allowed.
	Flush
	// Tail: no new durable record yet.
	Tail
)

func (k Kind) String() string {
	switch k {
	case Admission:
		return "admission"
	case Rollover:
		return "rollover"
	case Hydration:
		return "hydration"
	case Flush:
		return "flush"
	case Tail:
		return "tail"
	}
	return fmt.Sprintf("kind(%d)", uint8(k))
}

// WouldBlock is the error for backpressure. errors.Is(err, ErrWouldBlock)
// matches it; errors.As recovers the kind and, when known, a retry hint.
type WouldBlock struct {
	Kind       Kind
	RetryAfter time.Duration // zero when unknown
	Cause      error         // what caused it, if anything (e.g. ENOSPC)
}

func (w *WouldBlock) Error() string {
	msg := "aof2: would block (" + w.Kind.String() + ")"
	if w.Cause != nil {
		msg += ": " + w.Cause.Error()
	}
	return msg
}

// Is makes errors.Is(err, ErrWouldBlock) true.
func (w *WouldBlock) Is(target error) bool { return target == ErrWouldBlock }

// Unwrap exposes the cause.
func (w *WouldBlock) Unwrap() error { return w.Cause }

// KindOf returns the WouldBlock kind of err, or 0.
func KindOf(err error) Kind {
	var wb *WouldBlock
	if errors.As(err, &wb) {
		return wb.Kind
	}
	return 0
}

// ConfigError names the offending configuration key.
type ConfigError struct {
	Key    string
	Reason string
}

func (e *ConfigError) Error() string {
	return fmt.Sprintf("aof2: invalid config %q: %s", e.Key, e.Reason)
}

// Is makes errors.Is(err, ErrInvalidConfig) true.
func (e *ConfigError) Is(target error) bool { return target == ErrInvalidConfig }

// CorruptError describes detected corruption: where and what.
type CorruptError struct {
	Path   string
	Offset int64
	Reason string
}

func (e *CorruptError) Error() string {
	return fmt.Sprintf("aof2: corrupt data in %s at offset %d: %s", e.Path, e.Offset, e.Reason)
}

// Is makes errors.Is(err, ErrCorrupt) true.
func (e *CorruptError) Is(target error) bool { return target == ErrCorrupt }

// NeedsRestoreError refuses appends to a stream whose records tier 2 holds
// beyond what this node has (ErrNeedsRestore).
type NeedsRestoreError struct {
	Stream StreamID
	// Reason says what tier 2 holds that the node does not.
	Reason string
}

func (e *NeedsRestoreError) Error() string {
	return fmt.Sprintf("aof2: stream %d needs a restore from tier 2: %s; appending here would reuse record ids. "+
		"Rebuild it from tier 2 with `aof2-host restore -stream %d` (docs/adr-restore.md), or bring the node's data for it back, before writing to it", e.Stream, e.Reason, e.Stream)
}

// Is makes errors.Is(err, ErrNeedsRestore) true.
func (e *NeedsRestoreError) Is(target error) bool { return target == ErrNeedsRestore }

// DamageError names damage recovery found in a stream (ErrDamaged).
type DamageError struct {
	Stream  StreamID
	Segment SegmentID
	// Offset is where the intact records end in the segment.
	Offset int64
	Reason string
	// Replicated: the stream is a cluster member's, whose records come
	// back from its Raft log and its peers; accepting their loss would
	// make it differ from the other members, so the remedy named is not
	// repair -accept-loss.
	Replicated bool
	// Accepted: an operator accepted the loss; the stream takes appends,
	// only the lost records stay unreadable.
	Accepted bool
}

func (e *DamageError) Error() string {
	if e.Accepted {
		return fmt.Sprintf("aof2: stream %d: the records of segment %d from offset %d are lost: %s (docs/tiering.md#damage)",
			e.Stream, e.Segment, e.Offset, e.Reason)
	}
	if e.Replicated {
		return fmt.Sprintf("aof2: stream %d is damaged at segment %d offset %d: %s; appends are refused: a cluster member rewinds a damaged tail "+
			"at start and takes the records back from its log and its peers, otherwise wipe the member and restart it to rejoin "+
			"(docs/adr-replication.md#a-damaged-member)", e.Stream, e.Segment, e.Offset, e.Reason)
	}
	return fmt.Sprintf("aof2: stream %d is damaged at segment %d offset %d: %s; appends are refused until the damage is repaired "+
		"or the loss is accepted (aof2-host repair --accept-loss -stream %d, docs/tiering.md#damage)", e.Stream, e.Segment, e.Offset, e.Reason, e.Stream)
}

// Is makes errors.Is(err, ErrDamaged) true.
func (e *DamageError) Is(target error) bool { return target == ErrDamaged }

// FencedError is ErrFenced with the writer that holds the prefix now.
type FencedError struct {
	// Holder names the node that claimed the prefix (node id and host);
	// Epoch is its claim's.
	Holder string
	Epoch  uint64
}

func (e *FencedError) Error() string {
	return fmt.Sprintf("aof2: this node is fenced: %s claimed the tier-2 prefix at epoch %d; appends go to it (docs/adr-fencing.md)", e.Holder, e.Epoch)
}

// Is makes errors.Is(err, ErrFenced) true.
func (e *FencedError) Is(target error) bool { return target == ErrFenced }

// ReplicaError is ErrReplica with the writer appends go to.
type ReplicaError struct {
	// Writer names the prefix's writer (node id and host) and Epoch its
	// claim's, as the replica last read them; empty when unknown.
	Writer string
	Epoch  uint64
}

func (e *ReplicaError) Error() string {
	w := e.Writer
	if w == "" {
		w = "the prefix's writer"
	}
	return fmt.Sprintf("aof2: this node is a read replica: appends go to %s (epoch %d); docs/tiering.md#read-replicas", w, e.Epoch)
}

// Is makes errors.Is(err, ErrReplica) true.
func (e *ReplicaError) Is(target error) bool { return target == ErrReplica }
