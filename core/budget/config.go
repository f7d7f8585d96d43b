package budget

import (
	"errors"
	"fmt"

	"github.com/hashicorp/go-hclog"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/aof2/aof2/core/types"
)

// Sentinels. Errors returned by this package carry context and wrap one of
// these (or a types sentinel); callers branch with errors.Is.
var (
	// ErrUnknownSegment: the budget does not account for the segment. It
	// also matches types.ErrNotFound.
	ErrUnknownSegment error = unknownSegment{}
	// ErrExists: the segment is already accounted for (admitted or
	// registered twice).
	ErrExists = errors.New("tier0: segment already resident")
	// ErrActive: the operation needs a sealed segment (an active segment is
	// never evicted or removed; Seal it first).
	ErrActive = errors.New("tier0: segment is active")
	// ErrPinned: the segment is pinned by a reader and cannot be removed.
	ErrPinned = errors.New("tier0: segment pinned")
	// ErrEvicting: the segment was handed out as an eviction candidate; its
	// local copy is going away, so it can no longer be pinned or touched.
	// Read it from tier 1, or call Restore if the eviction was abandoned.
	ErrEvicting = errors.New("tier0: segment is being evicted")
	// ErrNotEvicting: Restore of a segment that was not an eviction
	// candidate.
	ErrNotEvicting = errors.New("tier0: segment is not being evicted")
	// ErrNotPinned: Unpin without a matching Pin.
	ErrNotPinned = errors.New("tier0: segment not pinned")
	// ErrExceedsBudget: the request is larger than the global budget or the
	// stream's cap, so waiting would never help. It is returned at once,
	// never as a WouldBlock.
	ErrExceedsBudget = errors.New("tier0: request exceeds the budget")
	// ErrBudgetExhausted is the Cause of a WouldBlock{Kind: Admission}:
	// the budget is full and what is resident cannot be evicted yet (active,
	// pinned, not yet safe in tier 1/tier 2, or already being evicted).
	ErrBudgetExhausted = errors.New("tier0: budget exhausted")
	// ErrClosed: the budget is closed. It is types.ErrClosed.
	ErrClosed = types.ErrClosed
)

// Policy says when a sealed segment's local copy is safe to evict.
type Policy uint8

const (
	// PolicyTier1 ("tier 1 is enough"): a sealed segment is safe to evict
	// once tier 1 holds it (MarkInTier1), or tier 2 does. Use it when no
	// tier 2 is configured, or when the warm cache is trusted as the copy
	// of record until the upload finishes.
	PolicyTier1 Policy = iota
	// PolicyTier2 ("require tier 2"): a sealed segment is safe to evict only
	// once tier 2 holds it (MarkInTier2). The default when a tier 2 is
	// configured: while tier 2 is down nothing that is not yet uploaded
	// leaves tier 0 (docs/tiering.md#tier-0-budget).
	PolicyTier2
)

func (p Policy) String() string {
	switch p {
	case PolicyTier1:
		return "tier1"
	case PolicyTier2:
		return "tier2"
	}
	return fmt.Sprintf("policy(%d)", uint8(p))
}

// Priority orders pending activations: higher first, FIFO within one.
type Priority uint8

const (
	// PriorityBackground: prefetch, retention checks, anything nobody waits
	// for.
	PriorityBackground Priority = iota
	// PriorityReadAhead: a sequential scan hydrating the next segment.
	PriorityReadAhead
	// PriorityForeground: a reader (or a writer's rollover) is waiting.
	PriorityForeground

	numPriorities = int(PriorityForeground) + 1
)

var priorityNames = [numPriorities]string{"background", "read_ahead", "foreground"}

func (p Priority) String() string {
	if int(p) < numPriorities {
		return priorityNames[p]
	}
	return fmt.Sprintf("priority(%d)", uint8(p))
}

// Config configures a Budget.
type Config struct {
	// MaxBytes is tier0.max_bytes: the bytes of segment files (capacity,
	// i.e. bytes on disk) tier 0 may hold across all streams. 0 means
	// unlimited.
	MaxBytes int64
	// StreamMaxBytes is the cap of each stream that has no override of its
	// own (SetStreamLimit). 0 means no per-stream cap.
	StreamMaxBytes int64
	// StreamLimits are per-stream overrides of StreamMaxBytes, applied at
	// New (SetStreamLimit changes them later). A value of 0 removes the cap
	// for that stream.
	StreamLimits map[types.StreamID]int64
	// Policy decides when a sealed segment is safe to evict.
	Policy Policy
	// Registerer receives the Prometheus metrics (prefix aof_tier0_); nil
	// means no registration.
	Registerer prometheus.Registerer
	// Logger receives the documented events (tiered_admit_segment,
	// tier0_eviction_scheduled, tier0_segment_dropped) at debug level; nil
	// means no logging.
	Logger hclog.Logger
}

func (c *Config) validate() error {
	if c.MaxBytes < 0 {
		return &types.ConfigError{Key: "tier0.max_bytes", Reason: fmt.Sprintf("negative (%d)", c.MaxBytes)}
	}
	if c.StreamMaxBytes < 0 {
		return &types.ConfigError{Key: "tier0.stream_max_bytes", Reason: fmt.Sprintf("negative (%d)", c.StreamMaxBytes)}
	}
	for id, v := range c.StreamLimits {
		if v < 0 {
			return &types.ConfigError{Key: fmt.Sprintf("tier0.streams.%d.max_bytes", id), Reason: fmt.Sprintf("negative (%d)", v)}
		}
	}
	if c.Policy > PolicyTier2 {
		return &types.ConfigError{Key: "tier0.policy", Reason: c.Policy.String() + " is not a policy"}
	}
	return nil
}

// Request asks for a segment to be activated in tier 0.
type Request struct {
	Key types.SegmentKey
	// Bytes is the segment file's capacity (what it occupies on disk).
	Bytes int64
	// Active: a new writer segment (never evicted until Seal). Otherwise a
	// sealed segment being hydrated back from tier 1/tier 2.
	Active bool
	// InTier1 and InTier2 say where copies of a hydrated segment already
	// live (normally both or one is true, since it came from there).
	InTier1, InTier2 bool
	// Pin admits the segment with one pin held (the reader that asked for
	// the hydration), so it cannot be evicted before it is read; release it
	// with Unpin.
	Pin bool
	// Priority orders waiting activations (Admit); ignored by an admission
	// that succeeds at once.
	Priority Priority
}

func (r *Request) validate() error {
	if r.Bytes <= 0 {
		return fmt.Errorf("tier0: %s: segment size %d must be positive", r.Key, r.Bytes)
	}
	if int(r.Priority) >= numPriorities {
		return fmt.Errorf("tier0: %s: unknown %s", r.Key, r.Priority)
	}
	return nil
}

// Candidate is a sealed segment handed to the caller to evict. Its bytes
// no longer count against the budget; the caller deletes the local copy
// (after the manifest records that it is safe to do so) and then calls
// Removed, or calls Restore if the eviction is abandoned.
type Candidate struct {
	Key   types.SegmentKey
	Bytes int64
}

// Grant is a successful admission.
type Grant struct {
	Key   types.SegmentKey
	Bytes int64
	// Evict lists the segments that were chosen to make room, oldest first.
	// The admission already counts on their bytes being freed: evict them
	// (then Removed) before creating the new segment file, so the disk never
	// holds more than the budget.
	Evict []Candidate
}

type unknownSegment struct{}

func (unknownSegment) Error() string { return "tier0: unknown segment" }

// Is makes errors.Is(ErrUnknownSegment, types.ErrNotFound) true.
func (unknownSegment) Is(target error) bool { return target == types.ErrNotFound }
