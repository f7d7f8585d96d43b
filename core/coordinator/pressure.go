package coordinator

import (
	"errors"
	"fmt"
	"sync/atomic"
	"syscall"

	"github.com/aof2/aof2/core"
	"github.com/aof2/aof2/core/budget"
	"github.com/aof2/aof2/core/tier1"
	"github.com/aof2/aof2/core/tier2"
	"github.com/aof2/aof2/core/types"
)

// Progress under pressure (docs/adr-tier0.md, "Progress: no request
// sequence needs an operator"; docs/tiering.md#disk-pressure):
//
//   - a refused activation asks the budget which active segments to seal
//     (budget.RequestSeals) and a seal job seals each (Stream.SealActive),
//     so that they become evictable once compressed or uploaded; the scan
//     asks again for the hydrations waiting in the activation queue and
//     re-runs requests a busy stream could not take;
//   - a full disk (a stream waiting for space, a job that hit ENOSPC, or
//     the file system above the high watermark) evicts segments other tiers
//     hold, whatever tier0.max_bytes is, down to the low watermark.

// DiskUsage is what a file system holds.
type DiskUsage struct {
	Total, Free uint64 // bytes
}

// Disk configures eviction under disk pressure.
type Disk struct {
	// HighWatermark is the fraction (0 to 1) of the data directory's file
	// system in use at which tier 0 evicts the segments other tiers hold,
	// whatever Tier0.MaxBytes is; 0 turns the watermark off (a stream
	// waiting for space still triggers eviction).
	HighWatermark float64
	// LowWatermark is the fraction eviction brings usage down to; default
	// HighWatermark − 0.05. Set alone, it is also the target when a stream
	// runs out of space.
	LowWatermark float64
	// Usage reports the data directory's file system. Nil: statfs on the
	// data directory when FS is the OS file system, none otherwise (then
	// only a stream waiting for space triggers, for a segment per stream).
	Usage func() (DiskUsage, error)
}

func (d *Disk) withDefaults(fs bool, dir string) error {
	if d.HighWatermark < 0 || d.HighWatermark > 1 {
		return &types.ConfigError{Key: "tier0.disk_high_watermark", Reason: fmt.Sprintf("%v is not a fraction of the disk", d.HighWatermark)}
	}
	if d.LowWatermark == 0 && d.HighWatermark > 0 {
		d.LowWatermark = max(d.HighWatermark-0.05, d.HighWatermark/2)
	}
	if d.LowWatermark < 0 || d.LowWatermark > 1 || (d.HighWatermark > 0 && d.LowWatermark >= d.HighWatermark) {
		return &types.ConfigError{Key: "tier0.disk_low_watermark",
			Reason: fmt.Sprintf("%v must be a fraction of the disk below the high watermark (%v)", d.LowWatermark, d.HighWatermark)}
	}
	if d.Usage == nil && fs {
		d.Usage = func() (DiskUsage, error) { return statDisk(dir) }
	}
	return nil
}

// requestSeals asks for the seals a refused activation needs and queues a
// seal job for each.
func (c *Coordinator) requestSeals(demands ...budget.Request) {
	for _, v := range c.budget.RequestSeals(demands...) {
		c.enqueue(job{kind: jobSeal, stream: v.Key.Stream, seg: v.Key.Segment})
	}
}

// sealActive is a seal job: it seals the segment if it is still its
// stream's active one. A stream whose previous seal still runs is asked
// again by the next scan; a request that cannot be carried out (the stream
// failed or closed, the segment is empty) is withdrawn, so that the budget
// picks another segment.
func (c *Coordinator) sealActive(s *core.Stream, id types.SegmentID) error {
	err := c.sealSegment(s, id)
	if err == nil || errors.Is(err, core.ErrSegmentBusy) {
		return nil
	}
	c.log.Debug("tier0: a seal asked for under admission pressure cannot be done; another segment will be asked",
		"stream_id", uint64(s.ID()), "segment_id", uint64(id), "error", err)
	if aerr := c.budget.SealAbandoned(types.SegmentKey{Stream: s.ID(), Segment: id}); aerr != nil && !errors.Is(aerr, budget.ErrUnknownSegment) {
		return aerr
	}
	return nil
}

// noteNoSpace remembers that a job ran out of disk space (compressions
// writing warm artifacts, manifest commits): the next scan relieves the
// disk.
func (c *Coordinator) noteNoSpace(err error) {
	if errors.Is(err, types.ErrNoSpace) || errors.Is(err, syscall.ENOSPC) {
		c.jobNoSpace.Store(true)
	}
}

// relievePressure runs at every scan: seal requests for queued
// activations, and evictions when the disk is filling.
func (c *Coordinator) relievePressure(st *core.Store) {
	c.requestSeals()
	c.relieveDisk(st)
}

// relieveDisk evicts segments other tiers hold while the disk is full or
// above its high watermark: at least a segment for each stream waiting for
// space, and down to the low watermark when the usage is known. Space
// already being freed (evictions in flight) counts. Only what the budget
// deems safe (its policy: in tier 2, or under PolicyTier1 in tier 1) is
// handed out, so a disk full of segments no other tier holds yet evicts
// nothing: writers wait for the uploads, as they do under the budget.
func (c *Coordinator) relieveDisk(st *core.Store) {
	var need int64
	waiting := 0
	for _, id := range st.Streams() {
		s, err := st.Lookup(id)
		if err != nil {
			continue
		}
		if n, ok := s.WaitingForSpace(); ok {
			waiting++
			need += n
		}
	}
	if c.jobNoSpace.Swap(false) {
		waiting++
		need = max(need, 1)
	}
	var target int64
	reason, above := "no_space", false
	d := &c.cfg.Disk
	if d.Usage != nil {
		u, err := d.Usage()
		switch {
		case err != nil:
			c.diskState.failed(c, err)
		case u.Total > 0 && u.Free <= u.Total:
			c.diskState.succeeded(c)
			used, total := float64(u.Total-u.Free), float64(u.Total)
			c.m.diskUsed.Set(used / total)
			above = d.HighWatermark > 0 && used >= d.HighWatermark*total
			if above && waiting == 0 {
				reason = "high_watermark"
			}
			if (above || waiting > 0) && d.LowWatermark > 0 {
				target = int64(used - d.LowWatermark*total)
			}
		}
	}
	if !above && waiting == 0 {
		if c.diskPressure.CompareAndSwap(true, false) {
			c.m.diskPressure.Set(0)
			c.log.Info("disk pressure over: evictions for disk space stop")
		}
		return
	}
	if target = max(target, need) - c.budget.Evicting(); target <= 0 {
		return // the evictions in flight free enough
	}
	cands := c.budget.ReclaimBytes(target)
	var freed int64
	for _, v := range cands {
		freed += v.Bytes
		c.enqueue(job{kind: jobEvict, stream: v.Key.Stream, seg: v.Key.Segment})
	}
	// Then warm artifacts tier 2 holds, of segments no longer in tier 0
	// (the warm cache's own rule; evicting tier-0 files first makes more
	// of them candidates at the next scan) — while tier 2 answers: with
	// its breaker open they are the only copies reads can reach.
	var warm []tier1.Reclaimable
	var warmFreed int64
	if c.remote != nil && freed < target && c.remote.Health().State == tier2.BreakerClosed {
		resident := c.residentSegments(st)
		warm = c.warm.ReclaimCandidates(target-freed, func(k types.SegmentKey) bool { return resident[k] })
		for _, v := range warm {
			warmFreed += v.Bytes
			c.enqueue(job{kind: jobWarmReclaim, stream: v.Key.Stream, seg: v.Key.Segment})
		}
	}
	if !c.diskPressure.Swap(true) || len(cands)+len(warm) > 0 {
		c.m.diskPressure.Set(1)
		c.log.Warn("disk pressure: evicting segments other tiers hold", "reason", reason, "streams_waiting", waiting,
			"target_bytes", target, "evicting_segments", len(cands), "evicting_bytes", freed,
			"evicting_warm_artifacts", len(warm), "evicting_warm_bytes", warmFreed)
	}
}

// probeState logs a failing disk probe once per failure streak.
type probeState struct {
	failing atomic.Bool // the last probe failed
}

func (p *probeState) failed(c *Coordinator, err error) {
	if !p.failing.Swap(true) {
		c.log.Warn("disk usage probe failed; only streams out of space trigger evictions until it works again", "error", err)
	}
}

func (p *probeState) succeeded(c *Coordinator) {
	if p.failing.Swap(false) {
		c.log.Info("disk usage probe works again")
	}
}
