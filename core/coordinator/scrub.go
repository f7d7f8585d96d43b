package coordinator

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/aof2/aof2/core"
	"github.com/aof2/aof2/core/manifest"
	"github.com/aof2/aof2/core/tier1"
	"github.com/aof2/aof2/core/types"
	"github.com/aof2/aof2/internal/logfields"
	"github.com/aof2/aof2/internal/logthrottle"
)

// The scrubber (docs/tiering.md#healing). Reads find damage only in what
// is read; a segment nobody reads for months could lose every copy before
// anyone notices. A scrub pass walks every sealed segment of every stream
// and checks each copy against the manifest's sealed record (durable_bytes,
// segment_crc64), the reference a damaged copy cannot forge:
//
//   - the tier-0 file, if resident: the CRC of [0, durable_bytes);
//   - the warm artifact, if cached: every frame decompressed, header,
//     footer and CRC checked (tier1.Cache.Verify), and for an uploaded
//     segment its bytes' CRC against the checksum the object was
//     uploaded with (the two are byte copies);
//   - the tier-2 object, sampled: a HEAD comparing the stored checksum
//     and metadata with the manifest (cheap), and a full GET verified like
//     a warm artifact only within a per-pass byte budget.
//
// What fails is repaired from a verified copy, as a read would: a tier-0
// file is rebuilt and swapped (Repair, reason "scrub"), a warm artifact
// removed and rebuilt from tier 2 (fetch) or tier 0 (compression), a
// missing tier-2 object uploaded again from a local copy, a tier-2 object
// whose bytes rotted at rest replaced by a Put conditional on its etag
// (tier2.Store.ReplaceSegment: only that very object is overwritten). A
// copy with no verified copy to repair it from is reported and kept: the
// scrubber never deletes the last copy of anything, damaged or not; an
// object that is not the one the manifest names (another etag, another
// segment's metadata) is reported, never overwritten.
//
// Reads are paced to Scrub.BytesPerSecond so that a pass does not compete
// with the host's own I/O; passes run one at a time (background or asked
// for through the admin API).

// Scrub configures the scrubber.
type Scrub struct {
	// Interval between background passes; 0 disables the background
	// scrubber (Coordinator.Scrub still runs a pass on demand). The first
	// pass starts after a random delay within Interval, so that restarts
	// do not postpone it forever.
	Interval time.Duration
	// BytesPerSecond paces the bytes a pass reads (tier-0 files, warm
	// artifacts, tier-2 full GETs); default 32 MiB/s, negative: unpaced.
	BytesPerSecond int64
	// Tier2Sample is the fraction (0, 1] of tier-2 objects a pass checks
	// with a HEAD; default 1 (every object), negative: none.
	Tier2Sample float64
	// Tier2FullGetBytes is the byte budget per pass for full GETs of
	// tier-2 objects (downloaded and verified like a warm artifact);
	// default 1 GiB, negative: none.
	Tier2FullGetBytes int64
}

func (s Scrub) withDefaults() (Scrub, error) {
	if s.Interval < 0 {
		return s, &types.ConfigError{Key: "scrub.interval", Reason: fmt.Sprintf("%s is negative", s.Interval)}
	}
	if s.BytesPerSecond == 0 {
		s.BytesPerSecond = 32 << 20
	}
	switch {
	case s.Tier2Sample == 0:
		s.Tier2Sample = 1
	case s.Tier2Sample < 0:
		s.Tier2Sample = 0
	case s.Tier2Sample > 1:
		return s, &types.ConfigError{Key: "scrub.tier2_sample", Reason: fmt.Sprintf("%g is not in (0, 1]", s.Tier2Sample)}
	}
	if s.Tier2FullGetBytes == 0 {
		s.Tier2FullGetBytes = 1 << 30
	}
	return s, nil
}

// Scrub tiers and results, the labels of the scrub metrics.
const (
	ScrubTier0 = "tier0"
	ScrubTier1 = "tier1"
	ScrubTier2 = "tier2"

	ScrubRepaired     = "repaired"
	ScrubUnrepairable = "unrepairable"
)

// ErrScrubFindings: a scrub pass left copies it could not repair.
var ErrScrubFindings = errors.New("scrub: damaged copies remain unrepaired")

// ScrubFinding is one damaged or missing copy a pass found.
type ScrubFinding struct {
	Stream  types.StreamID
	Segment types.SegmentID
	// Tier is ScrubTier0, ScrubTier1 or ScrubTier2.
	Tier string
	// Problem: "checksum" (the bytes fail the manifest's reference),
	// "unreadable", "missing" (tier 2: no object under the key),
	// "mismatch" (tier 2: the object's description disagrees).
	Problem string
	// Repaired says a verified copy replaced it.
	Repaired bool
	// Detail says what was found and what was or could not be done.
	Detail string
}

// ScrubProgress reports one segment of a pass.
type ScrubProgress struct {
	// Done of Total segments are checked.
	Done, Total int
	Stream      types.StreamID
	Segment     types.SegmentID
	// Findings are this segment's.
	Findings []ScrubFinding
}

// ScrubSummary is the outcome of a pass.
type ScrubSummary struct {
	Segments int
	// BytesVerified by tier (ScrubTier0, ScrubTier1, ScrubTier2).
	BytesVerified map[string]int64
	// Tier2Checked counts tier-2 objects checked by HEAD, Tier2FullGets
	// those also downloaded and verified.
	Tier2Checked, Tier2FullGets int
	Findings                    []ScrubFinding
	Started, Finished           time.Time
}

// Unrepaired counts the findings a pass could not repair.
func (s ScrubSummary) Unrepaired() int {
	n := 0
	for _, f := range s.Findings {
		if !f.Repaired {
			n++
		}
	}
	return n
}

// ScrubOptions selects what a pass checks.
type ScrubOptions struct {
	// Streams limits the pass to these streams; nil: every stream.
	Streams []types.StreamID
}

// copyState is what a pass learnt of one copy.
type copyState uint8

const (
	copyAbsent  copyState = iota // not there to check (or not sampled)
	copyGood                     // verified against the reference
	copyBad                      // fails the reference
	copyMissing                  // tier 2: the manifest's key holds no object
	copyUnknown                  // could not be checked now (tier 2 down, a race)
)

// scrubPass is one pass's state; owned by the goroutine running it.
type scrubPass struct {
	sum      ScrubSummary
	pace     pacer
	getsLeft int64 // Tier2FullGetBytes left
}

// pacer spreads reads to a rate in bytes per second; owned by one pass.
type pacer struct {
	rate float64   // bytes per second; <= 0: unpaced
	next time.Time // when the next read may start
}

// wait blocks until n more bytes may be read.
func (p *pacer) wait(ctx context.Context, n int64) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if p.rate <= 0 {
		return nil
	}
	now := time.Now()
	if p.next.Before(now) {
		p.next = now
	}
	d := p.next.Sub(now)
	p.next = p.next.Add(time.Duration(float64(n) / p.rate * float64(time.Second)))
	if d <= 0 {
		return nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// scrubber runs a background pass every Scrub.Interval until Close.
func (c *Coordinator) scrubber() {
	defer c.wg.Done()
	every := c.cfg.Scrub.Interval
	t := time.NewTimer(rand.N(every) + time.Second)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			sum, err := c.Scrub(c.ctx, ScrubOptions{}, nil)
			switch {
			case c.ctx.Err() != nil:
				return
			case err != nil && !errors.Is(err, ErrScrubFindings):
				c.log.Warn("scrub pass failed", "error", err)
			default:
				c.log.Info("scrub pass done", append([]any{"segments", sum.Segments, "findings", len(sum.Findings),
					"unrepaired", sum.Unrepaired()}, logfields.Duration("duration", sum.Finished.Sub(sum.Started))...)...)
			}
			t.Reset(every)
		case <-c.ctx.Done():
			return
		}
	}
}

// Scrub runs one pass over the selected streams (one pass at a time: it
// waits for a running one) and returns its summary; progress, if set, is
// called after each segment. It returns ErrScrubFindings (with the
// summary) when findings remain unrepaired.
func (c *Coordinator) Scrub(ctx context.Context, opts ScrubOptions, progress func(ScrubProgress)) (ScrubSummary, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	defer context.AfterFunc(c.ctx, cancel)()
	select {
	case c.scrubSem <- struct{}{}:
		defer func() { <-c.scrubSem }()
	case <-ctx.Done():
		return ScrubSummary{}, fmt.Errorf("scrub: waiting for the running pass: %w", ctx.Err())
	}
	c.mu.Lock()
	st := c.mu.store
	c.mu.Unlock()
	if st == nil {
		return ScrubSummary{}, fmt.Errorf("scrub: coordinator not started")
	}
	ids := opts.Streams
	if ids == nil {
		ids = st.Streams()
	}
	type target struct {
		s    *core.Stream
		segs []core.SegmentInfo
	}
	var targets []target
	total := 0
	for _, id := range ids {
		s, err := st.Lookup(id)
		if err != nil {
			if opts.Streams != nil {
				return ScrubSummary{}, fmt.Errorf("scrub: stream %d: %w", id, err)
			}
			continue // a broken stream: reported by the store
		}
		if s.TierLog() == nil {
			continue
		}
		var segs []core.SegmentInfo
		for _, info := range s.SegmentList() {
			if info.Footer != nil && !info.LossAccepted {
				segs = append(segs, info)
			}
		}
		targets = append(targets, target{s, segs})
		total += len(segs)
	}
	p := &scrubPass{pace: pacer{rate: float64(c.cfg.Scrub.BytesPerSecond)}, getsLeft: c.cfg.Scrub.Tier2FullGetBytes}
	p.sum = ScrubSummary{BytesVerified: map[string]int64{ScrubTier0: 0, ScrubTier1: 0, ScrubTier2: 0}, Started: time.Now()}
	c.m.scrubProgress.Set(0)
	done := 0
	for _, tg := range targets {
		for _, info := range tg.segs {
			found := c.scrubSegment(ctx, p, tg.s, info)
			if err := ctx.Err(); err != nil {
				return p.sum, fmt.Errorf("scrub: %w", err)
			}
			done++
			p.sum.Segments = done
			c.m.scrubProgress.Set(float64(done) / float64(total))
			if progress != nil {
				progress(ScrubProgress{Done: done, Total: total, Stream: tg.s.ID(), Segment: info.ID, Findings: found})
			}
		}
	}
	p.sum.Finished = time.Now()
	c.m.scrubProgress.Set(1)
	c.m.scrubLastPass.Set(float64(p.sum.Finished.UnixNano()) / 1e9)
	if n := p.sum.Unrepaired(); n > 0 {
		return p.sum, fmt.Errorf("%w: %d of %d findings", ErrScrubFindings, n, len(p.sum.Findings))
	}
	return p.sum, nil
}

// scrubSegment checks every copy of one sealed segment and repairs what it
// can; it returns the findings.
func (c *Coordinator) scrubSegment(ctx context.Context, p *scrubPass, s *core.Stream, info core.SegmentInfo) []ScrubFinding {
	k := types.SegmentKey{Stream: s.ID(), Segment: info.ID}
	var found []ScrubFinding
	report := func(tier, problem string, repaired bool, detail string) {
		f := ScrubFinding{Stream: k.Stream, Segment: k.Segment, Tier: tier, Problem: problem, Repaired: repaired, Detail: detail}
		found = append(found, f)
		p.sum.Findings = append(p.sum.Findings, f)
		c.noteFinding(f)
	}
	if info.Lost {
		report(ScrubTier0, "unreadable", false, fmt.Sprintf("the tier-0 file is unreadable and no other tier holds the segment: "+
			"its records are lost unless a copy is restored; accept the loss with `aof2-host repair -stream %d -accept-loss` (docs/tiering.md#damage)", k.Stream))
		return found
	}
	ms, ok := s.TierLog().Segment(info.ID)
	if !ok || !ms.Sealed || len(ms.Tier2.PendingDeletes) > 0 {
		return nil // not sealed in the manifest, or being retired
	}

	// Check every copy first: a repair needs to know which copies are good.
	t0, t0Detail := copyAbsent, ""
	if info.Resident {
		t0, t0Detail = c.scrubTier0(ctx, p, s, info, ms)
	}
	exp := tier1.Expected{Key: k, SegmentCRC: uint64(ms.SegmentCRC64), Uploaded: ms.Tier2.Key != ""}
	t1, t1Detail := copyAbsent, ""
	var warm tier1.Verified
	if c.warm.Contains(k) {
		if err := p.pace.wait(ctx, int64(ms.DurableBytes)); err != nil {
			return found
		}
		v, err := c.warm.Verify(ctx, exp)
		switch {
		case ctx.Err() != nil:
			return found
		case errors.Is(err, tier1.ErrNotCached), errors.Is(err, tier1.ErrClosed):
		case err != nil:
			t1, t1Detail = copyBad, err.Error()
		default:
			t1, warm = copyGood, v
			p.sum.BytesVerified[ScrubTier1] += v.Bytes
			c.m.scrubBytes.WithLabelValues(ScrubTier1).Add(float64(v.Bytes))
		}
	}
	t2 := tier2Check{state: copyAbsent}
	if c.remote != nil && ms.Tier2.Key != "" && c.cfg.Scrub.Tier2Sample > 0 &&
		(c.cfg.Scrub.Tier2Sample >= 1 || rand.Float64() < c.cfg.Scrub.Tier2Sample) {
		t2 = c.scrubTier2(ctx, p, k, ms, info, exp)
	}
	if ctx.Err() != nil {
		return found
	}
	// An uploaded artifact is a byte copy of its object: a flip that still
	// decodes to the segment's bytes (an unused bit of an entropy table)
	// is damage too, found by the checksum the object was uploaded with.
	// Only against an object a full GET verified this pass: a HEAD does
	// not see bytes that rotted at rest, and the warm copy may be the good
	// one.
	if t1 == copyGood && t2.verified && t2.hasCRC && warm.CRC64 != t2.crc {
		t1, t1Detail = copyBad, fmt.Sprintf("warm artifact bytes have CRC %016x, its tier-2 object was uploaded with %016x (damage that still decodes)", warm.CRC64, t2.crc)
	}

	// The warm copy first: a tier-0 repair rebuilds from it.
	if t1 == copyBad {
		err := c.rebuildWarm(ctx, s, info, ms, t0 == copyGood, t2)
		switch {
		case err == nil:
			t1 = copyGood
			s.NoteRepair(ScrubTier1, "scrub")
			report(ScrubTier1, "checksum", true, t1Detail)
		default:
			report(ScrubTier1, "checksum", false, fmt.Sprintf("%s; not repaired: %v", t1Detail, err))
		}
	}
	if t0 == copyBad {
		err := c.repair(ctx, k, "scrub")
		switch {
		case err == nil, errors.Is(err, errCopyIntact):
			// Intact: a read repaired it meanwhile.
			t0 = copyGood
			report(ScrubTier0, "checksum", true, t0Detail)
		default:
			report(ScrubTier0, "checksum", false, fmt.Sprintf("%s; not repaired: %v", t0Detail, err))
		}
	}
	if t2.state == copyMissing || t2.state == copyBad {
		problem := "missing"
		switch {
		case t2.rotten:
			problem = "checksum"
		case t2.state == copyBad:
			problem = "mismatch"
		}
		err := c.rebuildRemote(ctx, s, k, ms, t2, t0 == copyGood || t1 == copyGood, t1)
		switch {
		case err == nil:
			s.NoteRepair(ScrubTier2, "scrub")
			report(ScrubTier2, problem, true, t2.detail)
		default:
			report(ScrubTier2, problem, false, fmt.Sprintf("%s; not repaired: %v", t2.detail, err))
		}
	}
	return found
}

// scrubTier0 checks the tier-0 file's [0, durable_bytes) against the
// manifest's segment_crc64, paced.
func (c *Coordinator) scrubTier0(ctx context.Context, p *scrubPass, s *core.Stream, info core.SegmentInfo, ms manifest.SegmentState) (copyState, string) {
	gone := func() bool { now, ok := s.Segment(info.ID); return !ok || !now.Resident || now.Path != info.Path }
	err := core.VerifySealedCopy(c.cfg.FS, info.Path, ms, func(n int64) error { return p.pace.wait(ctx, n) })
	switch {
	case ctx.Err() != nil:
		return copyUnknown, ""
	case err != nil && gone():
		return copyAbsent, "" // evicted meanwhile
	case errors.Is(err, types.ErrCorrupt):
		return copyBad, err.Error()
	case err != nil:
		return copyBad, fmt.Sprintf("tier-0 file unreadable: %v", err)
	}
	p.sum.BytesVerified[ScrubTier0] += int64(ms.DurableBytes)
	c.m.scrubBytes.WithLabelValues(ScrubTier0).Add(float64(ms.DurableBytes))
	return copyGood, ""
}

// rebuildWarm replaces a warm artifact that failed verification. An
// uploaded segment's artifact is fetched again from tier 2 when a full GET
// verified the object this pass, so that the two stay byte copies;
// otherwise it is
// compressed again from the verified tier-0 file, or fetched from tier 2
// if that could not be checked now. Without a source the artifact is kept:
// it may be the last copy.
func (c *Coordinator) rebuildWarm(ctx context.Context, s *core.Stream, info core.SegmentInfo, ms manifest.SegmentState, t0Good bool, t2 tier2Check) error {
	k := types.SegmentKey{Stream: s.ID(), Segment: info.ID}
	inT2 := c.remote != nil && ms.Tier2.Key != ""
	t2Usable := inT2 && (t2.state == copyGood || t2.state == copyAbsent || t2.state == copyUnknown)
	if !t0Good && !t2Usable {
		return fmt.Errorf("no verified tier-0 or tier-2 copy to rebuild it from; the artifact is kept")
	}
	if inT2 && t2.verified {
		t0Good = false
	}
	// No eviction or hydration of the segment meanwhile.
	unlock := c.lockKey(k)
	defer unlock()
	now, ok := s.Segment(info.ID)
	if !ok {
		return fmt.Errorf("segment %d is gone: %w", info.ID, types.ErrNotFound)
	}
	if t0Good && !now.Resident {
		t0Good = false
		if !t2Usable {
			return fmt.Errorf("the tier-0 copy was evicted meanwhile; the artifact is kept")
		}
	}
	ev, err := c.warm.Remove(k)
	switch {
	case errors.Is(err, tier1.ErrPinned):
		return fmt.Errorf("the artifact is in use; the next pass tries again: %w", err)
	case err != nil && !errors.Is(err, tier1.ErrNotCached):
		return err
	}
	tl := s.TierLog()
	if !ms.Tier0 && ms.Tier1.State == manifest.Tier1Compressed {
		// The warm copy is the warmest one gone (evictWarm's record).
		if err := tl.Record(ctx, manifest.LocalEvicted{Header: hdr(info.ID), ReclaimedBytes: uint64(ev.Bytes)}); err != nil {
			return err
		}
	}
	var bytes int64
	if t0Good {
		res, err := c.warm.Compress(ctx, tier1.Source{Stream: s.ID(), Path: now.Path, Segment: info.ID})
		if err != nil {
			return fmt.Errorf("recompress from tier 0: %w", err)
		}
		bytes = res.CompressedBytes
	} else {
		exp := tier1.Expected{Key: k, SegmentCRC: uint64(ms.SegmentCRC64), Uploaded: true}
		if err := c.fetchWithRetry(ctx, k, exp); err != nil {
			return fmt.Errorf("fetch from tier 2: %w", err)
		}
		st, _ := c.warm.Stat(k)
		bytes = st.Bytes
	}
	if err := tl.Record(ctx, manifest.CompressionDone{Header: hdr(info.ID), CompressedBytes: uint64(bytes)}); err != nil {
		return err
	}
	if inT2 {
		_ = c.warm.MarkUploaded(k)
	}
	return nil
}

const scrubUnrepairable = "scrub found a damaged copy it cannot repair"

// noteFinding counts a finding and logs it: a repair at warn, a copy left
// damaged at error, once per copy and then in summaries (logthrottle: a
// background pass finds it again every interval).
func (c *Coordinator) noteFinding(f ScrubFinding) {
	result := ScrubRepaired
	if !f.Repaired {
		result = ScrubUnrepairable
	}
	c.m.scrubFindings.WithLabelValues(f.Tier, result).Inc()
	args := []any{"stream_id", uint64(f.Stream), "segment_id", uint64(f.Segment), "tier", f.Tier, "problem", f.Problem, "detail", f.Detail}
	group := fmt.Sprintf("%d/%d/%s", f.Stream, f.Segment, f.Tier)
	if f.Repaired {
		c.logs.Succeed(scrubUnrepairable, group)
		c.log.Warn("scrub repaired a damaged copy from a verified one", args...)
		return
	}
	c.logs.Fail(logthrottle.Failure{Level: hclog.Error, Msg: scrubUnrepairable, Group: group, Reason: f.Problem, Args: args})
}
