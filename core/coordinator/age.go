package coordinator

import (
	"errors"
	"time"

	"github.com/aof2/aof2/core"
	"github.com/aof2/aof2/core/types"
)

// The recovery point (docs/tiering.md#recovery-point). Records of the
// active segment live on one disk until the segment is sealed, compressed
// and uploaded; with large segments and a slow stream that could be days.
// Config.SegmentMaxAge seals an active segment once its first record is
// that old, so a lost disk costs at most the records of the last
// SegmentMaxAge (plus a scan interval, plus the time the seal, the
// compression and the upload take), whatever the segment size. The age is
// measured on this process's monotonic clock from the first record it saw
// in the segment (after a restart, from the recovery): never from record
// timestamps, which clients may set.

// scanAge queues the seal of s's active segment once it is too old.
func (c *Coordinator) scanAge(s *core.Stream) {
	if c.cfg.SegmentMaxAge <= 0 {
		return
	}
	if id, since, ok := s.ActiveSince(); ok && time.Since(since) >= c.cfg.SegmentMaxAge {
		c.enqueue(job{kind: jobAgeSeal, stream: s.ID(), seg: id})
	}
}

// sealAged seals segment id if it is still s's active segment. A seal
// already running, an empty segment or a stream that refuses appends
// (damaged, failed, closed) is left to the next scan.
func (c *Coordinator) sealAged(s *core.Stream, id types.SegmentID) error {
	err := c.sealSegment(s, id)
	switch {
	case err == nil:
		c.m.ageSeals.Inc()
		c.log.Debug("sealed an active segment that reached segment.max_age", "stream_id", uint64(s.ID()), "segment_id", uint64(id))
		return nil
	case errors.Is(err, core.ErrSegmentBusy), errors.Is(err, core.ErrNothingToSeal),
		errors.Is(err, core.ErrDamaged), errors.Is(err, core.ErrClosed):
		return nil
	}
	return err
}

// sealSegment seals s's segment id if it is still active, through
// Config.SealActive when one is set.
func (c *Coordinator) sealSegment(s *core.Stream, id types.SegmentID) error {
	if c.cfg.SealActive != nil {
		return c.cfg.SealActive(s, id)
	}
	return s.SealActive(id)
}
