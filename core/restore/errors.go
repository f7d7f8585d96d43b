package restore

import "errors"

// Errors a restore returns, wrapped with the stream and the objects
// concerned; callers branch with errors.Is.
var (
	// ErrHistoryGap: the stream's tier-2 manifest misses a chunk between
	// its start (a snapshot's position, or chunk 0) and a later chunk, so
	// the history cannot be replayed past it.
	ErrHistoryGap = errors.New("restore: the stream's tier-2 manifest has a gap")
	// ErrCorruptHistory: no snapshot and chunk sequence of the stream's
	// tier-2 manifest verifies.
	ErrCorruptHistory = errors.New("restore: the stream's tier-2 manifest does not verify")
	// ErrSegmentMismatch: a tier-2 segment object disagrees with the
	// manifest history or with its neighbours (another stream's object,
	// another checksum, overlapping offsets).
	ErrSegmentMismatch = errors.New("restore: a tier-2 segment does not match the stream's history")
	// ErrStreamExists: a stream asked for by id is already in the data
	// directory.
	ErrStreamExists = errors.New("restore: the stream is already in the data directory")
	// ErrIncomplete: a restore of this data directory did not finish
	// (serve refuses to start until it is rerun).
	ErrIncomplete = errors.New("restore: a restore of this data directory did not finish; rerun `aof2-host restore`")
	// ErrOldestNotInTier2: a cluster member's rejoin needs a stream's
	// oldest segment (retention dropped the ones before it) from tier 2,
	// and tier 2 does not hold it (yet): its upload is not done, or a
	// newer drop removed it. Asking the cluster again and retrying heals
	// both.
	ErrOldestNotInTier2 = errors.New("restore: tier 2 does not hold the stream's oldest segment")
	// ErrImplausibleID: a tier-2 key (a segment object, a lost record or
	// a reservation) names a segment id so far past everything else the
	// stream holds that no writer can have made it: restoring every id up
	// to it as lost would cost that many objects and entries.
	ErrImplausibleID = errors.New("restore: a tier-2 key names an implausible segment id")
)
