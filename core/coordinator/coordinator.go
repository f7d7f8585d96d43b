package coordinator

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	"go.opentelemetry.io/otel/trace"

	"github.com/aof2/aof2/core"
	"github.com/aof2/aof2/core/budget"
	"github.com/aof2/aof2/core/internal/tracing"
	"github.com/aof2/aof2/core/manifest"
	"github.com/aof2/aof2/core/tier1"
	"github.com/aof2/aof2/core/tier2"
	"github.com/aof2/aof2/core/types"
	"github.com/aof2/aof2/internal/logthrottle"
)

// Coordinator drives the tiers of one store. Create it with New, pass it
// as core.Config.Tiering to core.Open, then call Start with the opened store.
type Coordinator struct {
	cfg    Config
	log    hclog.Logger
	budget *budget.Budget
	warm   *tier1.Cache
	remote *tier2.Store
	m      *metrics
	tracer trace.Tracer
	// fetchSeq names each download's temporary file, so two writers of one
	// artifact (a fetch and a compression) never share it.
	fetchSeq atomic.Uint64
	// uploadsPaused holds segment uploads back (SetUploadsPaused).
	uploadsPaused atomic.Bool
	// logs rate-limits failures that repeat every scan or retry while
	// something stays broken (docs/adr-host.md, "Logs while something
	// stays broken"). Set by New, never replaced; safe for concurrent use.
	logs *logthrottle.Throttle

	mu struct {
		sync.Mutex
		store  *core.Store
		queue  []job
		queued map[job]bool
		// running are the jobs a worker took off the queue; again are
		// evict jobs enqueued while they ran: the budget handed the
		// segment out once more after the running one gave it back
		// (Restore), and nothing else would ever evict or restore it.
		running map[job]bool
		again   map[job]bool
		closed  bool
		warmRep *tier1.Report
		recon   []Reconciliation
		keys    map[types.SegmentKey]*keyLock
		// remoteStreams are the streams tier 2 holds, listed at start (nil
		// until a listing succeeded; remoteStreamsErr is the last failure).
		remoteStreams    map[types.StreamID]bool
		remoteStreamsErr error
		// swept is, per stream, the last Raft term in which this node,
		// leading, swept the stream's dropped objects
		// (cluster_retention.go).
		swept map[types.StreamID]uint64
		// retireBelow is, per stream, the segment id below which an
		// operator asked retention to delete (RetireBelow).
		retireBelow map[types.StreamID]types.SegmentID
		// missing are the segments whose tier-2 object reconciliation
		// found gone, until their re-upload is verified: the manifest still
		// names the object, but nothing may rely on it (no tier-0 or warm
		// eviction counting on tier 2).
		missing map[types.SegmentKey]bool
	}
	coldBytes    atomic.Int64 // artifact bytes fetched by cold point reads
	hydrating    atomic.Int64 // hydrations waiting for room or running
	hydrationLat latencies
	// Disk pressure (pressure.go); atomics, no lock: jobNoSpace is set by
	// the workers and taken by the scan, diskPressure and diskState are
	// the scan's (scans may overlap at Start).
	jobNoSpace   atomic.Bool // a job hit ENOSPC since the last scan
	diskPressure atomic.Bool // evicting for disk space
	diskState    probeState  // the usage probe's failure streak
	signal       chan struct{}
	// scrubSem holds one token while a scrub pass runs (scrub.go): passes
	// run one at a time. Set by New, never replaced.
	scrubSem chan struct{}
	// t2m is what tier 2 holds of each stream's manifest (snapshots.go).
	t2m remoteManifests
	// rsv is what is known of each stream's segment-id reservations in
	// tier 2 (reserve.go); its own lock guards it.
	rsv reservations
	// storeOK opens the gate to tier-2 mutations once the store descriptor
	// checked out (storeid.go); set once, never cleared.
	storeOK atomic.Bool
	// claim is the etag of this node's claim of the prefix's writer
	// record (writer.go), and epoch its epoch, set with storeOK; fenced is
	// set once another node claimed it, never cleared.
	claim atomic.Pointer[string]
	epoch atomic.Uint64
	// claimed is the writer record of this node's claim (set with claim):
	// what claimHeld puts back if the record goes missing.
	claimed atomic.Pointer[tier2.WriterRecord]
	fenced  atomic.Pointer[types.FencedError]
	ctx     context.Context
	cancel  context.CancelFunc
	wg      sync.WaitGroup
}

// New creates a coordinator: the tier-0 budget and the warm cache. It does
// no work until Start.
func New(cfg Config) (*Coordinator, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	c := &Coordinator{cfg: cfg, log: cfg.Logger, remote: cfg.Tier2, signal: make(chan struct{}, 1),
		scrubSem: make(chan struct{}, 1),
		tracer:   tracing.Tracer(cfg.TracerProvider, tracing.ScopeCoordinator)}
	c.logs = logthrottle.New(c.log, logthrottle.Config{Now: cfg.LogClock})
	c.mu.queued = map[job]bool{}
	c.mu.running = map[job]bool{}
	c.mu.again = map[job]bool{}
	c.mu.keys = map[types.SegmentKey]*keyLock{}
	c.mu.swept = map[types.StreamID]uint64{}
	c.mu.missing = map[types.SegmentKey]bool{}
	c.rsv.m = map[types.StreamID]*streamReservation{}
	if c.m, err = newMetrics(cfg.Registerer); err != nil {
		return nil, err
	}
	if err := register(cfg.Registerer, residencyCollector{c}); err != nil {
		return nil, err
	}
	if c.budget, err = budget.New(cfg.Tier0); err != nil {
		return nil, fmt.Errorf("coordinator: %w", err)
	}
	warm, rep, err := tier1.Open(cfg.Tier1)
	if err != nil {
		_ = c.budget.Close()
		return nil, fmt.Errorf("coordinator: %w", err)
	}
	c.warm, c.mu.warmRep = warm, rep
	c.ctx, c.cancel = context.WithCancel(context.Background())
	return c, nil
}

// Budget is the tier-0 budget (for stats and tests).
func (c *Coordinator) Budget() *budget.Budget { return c.budget }

// Warm is the warm cache (for stats and tests).
func (c *Coordinator) Warm() *tier1.Cache { return c.warm }

// Start adopts the opened store: the streams tier 2 holds are listed (see
// lostdata.go), every segment on disk is registered with the budget, warm
// artifacts the manifests know are verified and admitted, evictions a
// crash left unrecorded are recorded, each stream is reconciled with its
// tier-2 listing, and the workers start.
func (c *Coordinator) Start(ctx context.Context, st *core.Store) error {
	c.mu.Lock()
	c.mu.store = st
	c.mu.Unlock()
	if err := c.checkStore(ctx); storeRefused(err) {
		return err
	} else if errors.Is(err, errNoStoreYet) || errors.Is(err, errNoClaimYet) {
		c.log.Info("tier 2 has no store descriptor yet; the cluster's leader creates it")
	} else if err != nil {
		c.log.Warn("tier 2 store descriptor not checked yet; tier-2 writes wait for it", "error", err)
	}
	c.listRemoteStreams(ctx)
	for _, id := range st.Streams() {
		s, err := st.Lookup(id)
		if err != nil {
			continue // a broken stream: reported by the store
		}
		if err := c.adopt(ctx, s); err != nil {
			return fmt.Errorf("coordinator: stream %d: %w", id, err)
		}
		if !c.ownsCommitLog() {
			c.resumeDeletes(ctx, s) // RetireFollowed's, with no tier-2 request
			continue                // the follower (core/replica) or the Raft log reconciles
		}
		if c.storeOK.Load() {
			c.resumeDeletes(ctx, s)
		}
		rec := c.reconcile(ctx, s)
		c.mu.Lock()
		c.mu.recon = append(c.mu.recon, rec)
		c.mu.Unlock()
	}
	c.reportUnknownArtifacts(st)
	for range c.cfg.Workers {
		c.wg.Add(1)
		go c.worker()
	}
	c.wg.Add(1)
	go c.scanner()
	if c.cfg.Scrub.Interval > 0 {
		c.wg.Add(1)
		go c.scrubber()
	}
	c.scan()
	return nil
}

// reportUnknownArtifacts reports the warm artifacts tier1.Open found of
// segments no stream has (adopt took, or warned about, all the others).
func (c *Coordinator) reportUnknownArtifacts(st *core.Store) {
	c.mu.Lock()
	rep := c.mu.warmRep
	c.mu.Unlock()
	for _, p := range rep.Unknown {
		if p.Key == (types.SegmentKey{}) {
			continue // not an artifact name: listed in the report only
		}
		s, err := st.Lookup(p.Key.Stream)
		if err != nil && !errors.Is(err, core.ErrUnknownStream) {
			continue // a broken stream: the store reports it
		}
		if s != nil {
			if _, ok := s.Segment(p.Key.Segment); ok {
				continue
			}
		}
		c.warm.ReportUnknown(p)
	}
}

// adopt brings one recovered stream under the coordinator.
func (c *Coordinator) adopt(ctx context.Context, s *core.Stream) error {
	tl := s.TierLog()
	if tl == nil {
		return fmt.Errorf("tiering needs the manifest (core.Config.NoManifest is set)")
	}
	for _, info := range s.SegmentList() {
		if info.Lost {
			continue // no copy to move; the stream reports the damage
		}
		ms, _ := tl.Segment(info.ID)
		k := types.SegmentKey{Stream: s.ID(), Segment: info.ID}
		inT2 := ms.Tier2.Key != ""
		inT1 := false
		if info.Footer != nil && ms.Tier1.State == tier1Compressed {
			if !c.warm.Contains(k) {
				if err := c.warm.Adopt(ctx, tier1.Expected{Key: k, SegmentCRC: info.Footer.SegmentCRC, Uploaded: inT2}); err != nil {
					c.log.Warn("warm artifact the manifest records is missing or does not verify; it will be recreated",
						"stream_id", uint64(s.ID()), "segment_id", uint64(info.ID), "error", err)
				}
			} else if inT2 {
				_ = c.warm.MarkUploaded(k)
			}
			inT1 = c.warm.Contains(k)
		} else if info.Footer != nil {
			adopted, err := c.adoptOrphan(ctx, tl, k, info.Footer.SegmentCRC, inT2)
			if err != nil {
				return err
			}
			inT1 = adopted
		}
		if info.Footer != nil && ((info.Resident && !ms.Tier0) || ms.Hydration.InProgress) {
			if err := c.settleHydration(ctx, s, info.ID); err != nil {
				return err
			}
			ms, _ = tl.Segment(info.ID)
		}
		switch {
		case info.Resident:
			// Where reconcile will compare the manifest with the tier-2
			// listing, tier 2 counts for eviction only once it confirmed
			// the object (reconcile marks it): an object gone behind the
			// manifest's back must not let the only local copy go.
			budgetT2 := inT2 && !c.reconciles()
			err := c.budget.Register(budget.Segment{Key: k, Bytes: tier0Charge(info), Active: info.Footer == nil, InTier1: inT1, InTier2: budgetT2})
			if err != nil && !errors.Is(err, budget.ErrExists) {
				return err
			}
		default:
			if ms.Tier0 {
				// Evicted, but the crash came before LocalEvicted was committed.
				if err := tl.Record(ctx, localEvicted(info)); err != nil {
					return err
				}
			}
			if inT2 && !inT1 && ms.Tier1.State == tier1Compressed {
				// The warm copy was evicted (or lost) and tier 2 holds the
				// segment: record it, as evictWarm would have.
				if err := tl.Record(ctx, manifest.LocalEvicted{Header: hdr(info.ID)}); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// adoptOrphan admits a warm artifact the manifest does not record as
// compressed — a crash after the artifact was made durable and before its
// CompressionDone was — if it verifies, and records it. A missing or
// unverifiable file is left to compression (which replaces it).
func (c *Coordinator) adoptOrphan(ctx context.Context, tl *core.TierLog, k types.SegmentKey, crc uint64, inT2 bool) (bool, error) {
	if _, err := c.cfg.FS.Stat(c.warm.Path(k)); err != nil {
		return false, nil
	}
	if err := c.warm.Adopt(ctx, tier1.Expected{Key: k, SegmentCRC: crc, Uploaded: inT2}); err != nil {
		c.log.Warn("unrecorded warm artifact does not verify; it will be recreated",
			"stream_id", uint64(k.Stream), "segment_id", uint64(k.Segment), "error", err)
		return false, nil
	}
	st, _ := c.warm.Stat(k)
	if err := tl.Record(ctx, manifest.CompressionDone{Header: hdr(k.Segment), CompressedBytes: uint64(st.Bytes)}); err != nil {
		return false, err
	}
	c.log.Info("unrecorded warm artifact adopted", "stream_id", uint64(k.Stream), "segment_id", uint64(k.Segment))
	return true, nil
}

// Close stops the workers (running jobs are cancelled) and closes the warm
// cache and the budget. Close the store first: it may still hydrate.
func (c *Coordinator) Close() error {
	c.mu.Lock()
	if c.mu.closed {
		c.mu.Unlock()
		return nil
	}
	c.mu.closed = true
	c.mu.Unlock()
	c.cancel()
	c.wg.Wait()
	return errors.Join(c.warm.Close(), c.budget.Close())
}

func (c *Coordinator) stream(id types.StreamID) (*core.Stream, error) {
	c.mu.Lock()
	st := c.mu.store
	c.mu.Unlock()
	if st == nil {
		return nil, fmt.Errorf("coordinator not started")
	}
	return st.Lookup(id)
}

// scanner re-derives pending work every ScanInterval.
func (c *Coordinator) scanner() {
	defer c.wg.Done()
	t := time.NewTicker(c.cfg.ScanInterval)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			c.scan()
			c.flushLogs()
		case <-c.ctx.Done():
			return
		}
	}
}

// flushLogs writes the log summaries that are due in every tier, so that
// a failure that stopped repeating is still accounted for.
func (c *Coordinator) flushLogs() {
	c.logs.Flush()
	c.warm.FlushLogs()
	if c.remote != nil {
		c.remote.FlushLogs()
	}
}

// scan queues what the manifests and catalogs say is pending.
func (c *Coordinator) scan() {
	c.mu.Lock()
	st := c.mu.store
	c.mu.Unlock()
	if st == nil {
		return
	}
	c.retryStoreCheck(st)
	if c.ownsCommitLog() {
		c.retryReservations() // reserve.go
	}
	c.listRemoteStreams(c.ctx)
	var term uint64
	var leads bool
	if c.cfg.Cluster != nil && c.cfg.Cluster.LeadTerm != nil {
		term, leads = c.cfg.Cluster.LeadTerm()
	}
	for _, id := range st.Streams() {
		s, err := st.Lookup(id)
		if err != nil {
			continue
		}
		c.scanAge(s)
		tl := s.TierLog()
		if tl == nil {
			continue
		}
		for _, info := range s.SegmentList() {
			if info.Footer == nil || info.Lost {
				continue
			}
			ms, _ := tl.Segment(info.ID)
			k := types.SegmentKey{Stream: id, Segment: info.ID}
			if info.Resident {
				// Re-assert what the manifest and cache say (all idempotent):
				// a job that failed after its durable record must not leave
				// the budget thinking a safe segment is unsafe. Tier 1 holds
				// the segment once its CompressionDone is committed, not
				// when the artifact appears: a tier-0 file evicted before
				// that record is durable would, after a crash, leave a
				// segment no recovered state points at.
				bk := k
				_ = c.budget.Seal(bk)
				_ = c.budget.Shrink(bk, tier0Charge(info))
				if warmRecorded(c.warm.Contains(k), ms) {
					_ = c.budget.MarkInTier1(bk)
				}
				if ms.Tier2.Key != "" && !c.isMissing(k) {
					_ = c.budget.MarkInTier2(bk)
					if c.warm.Contains(k) {
						_ = c.warm.MarkUploaded(k)
					}
				}
			}
			if c.isMissing(k) {
				// A re-upload that failed (or was held back) is retried.
				c.enqueue(job{kind: jobReupload, stream: id, seg: info.ID})
			}
			switch {
			case info.Resident && !warmRecorded(c.warm.Contains(k), ms):
				c.enqueue(job{kind: jobCompress, stream: id, seg: info.ID})
			case c.remote != nil && c.mayUpload() && !c.uploadsPaused.Load() && ms.Tier2.Key == "" && c.warm.Contains(k):
				c.enqueue(job{kind: jobUpload, stream: id, seg: info.ID})
			}
		}
		if c.cfg.Cluster != nil {
			c.scanClusterRetention(s, term, leads)
		}
		if !c.ownsCommitLog() {
			// The writer's retention, chunks and snapshots are not a
			// replica's, nor a cluster member's. Its own manifest is never uploaded: its sealed
			// chunks count as kept elsewhere, so that local retention
			// drops them once snapshots cover them.
			for _, ch := range tl.SealedChunks() {
				if !ch.Uploaded {
					if err := tl.ChunkUploaded(c.ctx, ch.Index); err != nil {
						c.log.Warn("replica: could not release a manifest chunk to local retention", "stream_id", uint64(id), "chunk", ch.Index, "error", err)
						break
					}
				}
			}
			continue
		}
		// A drop that failed half-way (its segment left the catalog, a
		// file stayed) is retried, and its delete finished.
		for _, seg := range s.Undropped() {
			c.enqueue(job{kind: jobRetire, stream: s.ID(), seg: seg})
		}
		if id, ok := c.retentionVictim(s, time.Now()); ok {
			c.enqueue(job{kind: jobRetire, stream: s.ID(), seg: id})
		}
		if c.remote != nil {
			// One job per stream (queued or running: its key has no chunk
			// index) uploads its chunks in index order (uploadChunks), so
			// that tier 2 never holds a chunk whose predecessor it lacks
			// (a gap would end a restore's history), and no chunk is
			// uploaded twice at once: the second would read the chunk
			// after the first marked it uploaded, different bytes.
			for _, ch := range tl.SealedChunks() {
				if !ch.Uploaded {
					c.enqueue(job{kind: jobChunk, stream: id})
					break
				}
			}
			c.scanSnapshots(s, tl)
		}
	}
	for _, v := range c.budget.Reclaim() {
		c.enqueue(job{kind: jobEvict, stream: v.Key.Stream, seg: v.Key.Segment})
	}
	c.relievePressure(st) // pressure.go
	c.scanWarm(st)
	for _, id := range st.Streams() {
		if s, err := st.Lookup(id); err == nil {
			s.Wake() // writers refused admission look again
		}
	}
}

// ColdReadBytes is the total of artifact bytes (seek tables and frames)
// fetched by cold point reads.
func (c *Coordinator) ColdReadBytes() int64 { return c.coldBytes.Load() }
