package coordinator

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/aof2/aof2/core"
	"github.com/aof2/aof2/core/budget"
	"github.com/aof2/aof2/core/manifest"
	"github.com/aof2/aof2/core/tier1"
	"github.com/aof2/aof2/core/tier2"
	"github.com/aof2/aof2/core/types"
	"github.com/aof2/aof2/pluginapi"
)

// Cluster connects the coordinator of a Raft cluster member
// (host/cluster; docs/adr-replication.md, "Leader-only tiering") to its
// group. Every node compresses, evicts and hydrates on its own, under its
// own budgets; only the leader uploads, and an upload counts — on the
// leader as on the followers — once its TierMove entry is applied:
//
//   - A follower evicts a segment only after the log says tier 2 holds it,
//     so it never drops a copy the leader has not stored.
//   - An upload cut by a failover (stored, not recorded) is redone by the
//     next leader: the object's key is the segment's, and an if_absent
//     create that finds the same bytes there succeeds, so the segment is
//     stored once, whichever leader gets there first.
//   - The commit log, its snapshots and segment-id reservations are a
//     single writer's (docs/adr-fencing.md); in a cluster the Raft log is
//     the record, and none of them is made.
//   - Retention drops a segment through the log (a Drop entry every node
//     applies, AdoptDrop) before the leader deletes its object
//     (cluster_retention.go).
type Cluster struct {
	// Leading reports whether this node is the Raft leader now.
	Leading func() bool
	// RecordUpload records a completed upload in the Raft log and returns
	// once the entry is applied on this node (whose FSM, like every
	// node's, calls AdoptUpload). It fails on a node that stopped leading.
	RecordUpload func(ctx context.Context, k types.SegmentKey, key, etag string) error
	// RecordDrop records that retention drops segment k, whose object is
	// key, in the Raft log and returns once the entry is applied on this
	// node (whose FSM, like every node's, calls AdoptDrop). It fails on a
	// node that stopped leading. Needed for retention.
	RecordDrop func(ctx context.Context, k types.SegmentKey, key string) error
	// LeadTerm is the Raft term this node leads in, ready true once its
	// first barrier of that term applied (every entry of earlier terms
	// is applied here). Needed for retention: the leader's drops and its
	// once-per-term sweep run only then.
	LeadTerm func() (term uint64, ready bool)
	// CatchUp returns once this node has applied what the leader had
	// committed when it was called (a read barrier). A hydration that
	// finds no object calls it before it reports the object missing: the
	// segment may have been dropped by an entry not applied here yet.
	// Optional.
	CatchUp func(ctx context.Context) error
}

func (c *Cluster) check(retention bool) error {
	if c.Leading == nil || c.RecordUpload == nil {
		return &types.ConfigError{Key: "cluster", Reason: "the coordinator of a cluster member needs Leading and RecordUpload"}
	}
	if retention && (c.RecordDrop == nil || c.LeadTerm == nil) {
		return &types.ConfigError{Key: "retention", Reason: "retention in a cluster needs RecordDrop and LeadTerm"}
	}
	return nil
}

// ErrNotSealedHere: AdoptUpload named a segment this node does not hold
// sealed.
var ErrNotSealedHere = errors.New("coordinator: the segment is not sealed on this node")

// errNoStoreYet: a cluster member that does not lead found no store
// descriptor; the leader creates it, and the scan looks again.
var errNoStoreYet = fmt.Errorf("%w: the prefix has no store descriptor yet (the cluster's leader creates it)", errNotWriter)

// ownsCommitLog says whether this coordinator keeps the prefix's tier-2
// commit log, snapshots, reservations and retention: a single writer
// does; a read replica and a cluster member do not.
func (c *Coordinator) ownsCommitLog() bool { return !c.cfg.Replica && c.cfg.Cluster == nil }

// mayUpload says whether this node uploads segments: the single writer,
// or the cluster's leader.
func (c *Coordinator) mayUpload() bool {
	if c.cfg.Cluster != nil {
		if c.cfg.Cluster.LeadTerm != nil {
			// Once every entry of earlier terms applied here: a segment a
			// Drop not applied yet removed must not be uploaded again.
			_, ready := c.cfg.Cluster.LeadTerm()
			return ready
		}
		return c.cfg.Cluster.Leading()
	}
	return !c.cfg.Replica
}

// AdoptUpload records that tier 2 holds segment k as object key (etag):
// what applying a TierMove entry does on every node of a cluster. The
// segment becomes evictable from tier 0 and the warm cache under
// PolicyTier2. Applying it again is a no-op.
func (c *Coordinator) AdoptUpload(ctx context.Context, k types.SegmentKey, key, etag string) error {
	s, err := c.stream(k.Stream)
	if err != nil {
		return err
	}
	// The leader sealed it before uploading, and so did this node before
	// this entry — but a rollover's seal finishes in the background.
	if err := s.WaitSealed(ctx, k.Segment); errors.Is(err, core.ErrNotSealing) {
		return fmt.Errorf("%w: %w", ErrNotSealedHere, err)
	} else if err != nil {
		return err
	}
	tl := s.TierLog()
	if ms, _ := tl.Segment(k.Segment); ms.Tier2.Key != key || ms.Tier2.ETag != etag {
		if err := tl.Record(ctx, manifest.UploadDone{Header: hdr(k.Segment), Key: key, ETag: etag}); err != nil {
			return err
		}
	}
	if err := c.warm.MarkUploaded(k); err != nil && !errors.Is(err, tier1.ErrNotCached) {
		return err
	}
	// Already being evicted: an earlier move of the same segment (two
	// leaders each recorded their upload of it) made it safe.
	if err := c.budget.MarkInTier2(k); err != nil && !errors.Is(err, budget.ErrUnknownSegment) && !errors.Is(err, budget.ErrEvicting) {
		return err
	}
	s.Wake()
	return nil
}

// admitOver admits a cluster member's new segment over its tier-0 budget.
// The segment is needed by an entry being applied, and applying never
// waits for tier-0 room: under PolicyTier2 that room comes from evictions
// that only TierMove entries later in the same log allow, so a wait would
// stall the apply loop for good. The scan's Reclaim brings the budget
// back down once those entries are applied; the leader refuses new
// appends meanwhile (Tier0Admission), which bounds the excess.
func (c *Coordinator) admitOver(req budget.Request) error {
	if err := c.budget.Register(budget.Segment{Key: req.Key, Bytes: req.Bytes, Active: true}); err != nil && !errors.Is(err, budget.ErrExists) {
		return err
	}
	c.m.overBudget.Inc()
	return nil
}

// tier0Retry is how soon a client refused by Tier0Admission may try again.
const tier0Retry = 100 * time.Millisecond

// Tier0Admission refuses new appends to stream id on a cluster's leader
// while its tier 0, or the stream's cap, holds more than it allows
// (admitOver let an entry in over it): a *types.WouldBlock of Kind
// Admission, as a single node's writers get when tier 0 is full. Nil
// otherwise.
func (c *Coordinator) Tier0Admission(id types.StreamID) error {
	used, limit, over := c.budget.Over(id)
	if !over {
		return nil
	}
	return &types.WouldBlock{Kind: types.Admission, RetryAfter: tier0Retry, Cause: fmt.Errorf(
		"%w: tier 0 holds %d bytes, over its limit of %d, until uploads are recorded and segments evicted", budget.ErrBudgetExhausted, used, limit)}
}

// adoptShared judges a cluster upload that met other bytes under the
// segment's key: another leader's upload of the same segment, compressed
// differently (other tier-1 settings, another zstd version during an
// upgrade). The object counts as the segment when its footer — which
// carries the CRC-64 of every segment byte — is this node's: its key and
// etag are recorded as they are, and nothing is overwritten. Otherwise it
// is a data loss, reported as such.
func (c *Coordinator) adoptShared(ctx context.Context, k types.SegmentKey, info core.SegmentInfo, up tier2.Uploaded, err error) (tier2.Uploaded, error) {
	var dl *tier2.DataLossError
	if err == nil || !errors.As(err, &dl) {
		return up, err
	}
	rr, rerr := c.remote.OpenSegmentRange(ctx, k, tier2.Expect{ETag: dl.RemoteETag})
	if rerr != nil {
		return up, errors.Join(err, rerr)
	}
	a, rerr := tier1.OpenReaderAt(rr, rr.Size(), dl.Key)
	if rerr != nil {
		c.remote.ReportDataLoss(err)
		return up, errors.Join(err, rerr)
	}
	defer a.Close()
	f, rerr := a.Footer()
	if rerr != nil || info.Footer == nil || f != *info.Footer {
		c.remote.ReportDataLoss(err)
		return up, errors.Join(err, fmt.Errorf("the object there is not this segment (footer %+v): %w", f, rerr))
	}
	c.log.Info("tier 2 holds this segment compressed otherwise (another leader's upload): recorded as it is",
		"stream_id", uint64(k.Stream), "segment_id", uint64(k.Segment), "key", dl.Key, "etag", rr.Info().ETag)
	return tier2.Uploaded{Key: dl.Key, ETag: rr.Info().ETag, Size: rr.Info().Size, AlreadyPresent: true}, nil
}

// ClusterWriter is the node id of the writer record a cluster's leader
// makes: the prefix is a cluster's, and a single writer pointed at it is
// refused (*ClaimedError), as it would be by another single writer.
const ClusterWriter = "cluster"

// errNoClaimYet: a cluster member that does not lead found no writer
// record; the leader makes it, and the scan looks again.
var errNoClaimYet = fmt.Errorf("%w: the prefix has no writer record yet (the cluster's leader makes it)", errNotWriter)

// checkClusterClaim checks that the prefix's writer record is a cluster's,
// the leader making it when there is none. A single writer's record
// refuses the node (ErrPrefixClaimed): two systems would write one prefix.
func (c *Coordinator) checkClusterClaim(ctx context.Context, storeID string) error {
	rec, _, err := c.remote.ReadWriter(ctx)
	switch {
	case errors.Is(err, pluginapi.ErrNotFound) && c.mayUpload():
		if _, err := c.remote.ClaimWriter(ctx, writerRecord(storeID, ClusterWriter, 1), ""); err != nil {
			return err // a race: the next scan reads the winner's record
		}
		c.log.Info("claimed the tier-2 prefix for the cluster")
		return nil
	case errors.Is(err, pluginapi.ErrNotFound):
		return errNoClaimYet
	case err != nil:
		return err
	case rec.NodeID != ClusterWriter:
		return fmt.Errorf("%w: node %s (%s) is its single writer (epoch %d); a cluster needs a tier-2 prefix of its own (tier2.prefix)",
			ErrPrefixClaimed, rec.NodeID, rec.Host, rec.Epoch)
	case rec.StoreID != storeID:
		return fmt.Errorf("%w: the writer record names store %s", ErrForeignStore, rec.StoreID)
	}
	return nil
}
