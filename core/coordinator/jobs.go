package coordinator

import (
	"context"
	"errors"
	"fmt"

	"github.com/aof2/aof2/core"
	"github.com/aof2/aof2/core/budget"
	"github.com/aof2/aof2/core/internal/tracing"
	"github.com/aof2/aof2/core/manifest"
	"github.com/aof2/aof2/core/tier1"
	"github.com/aof2/aof2/core/tier2"
	"github.com/aof2/aof2/core/types"
	"github.com/aof2/aof2/core/vfs"
	"github.com/aof2/aof2/pluginapi"
)

const tier1Compressed = manifest.Tier1Compressed

// warmRecorded reports whether a segment's warm copy may be relied on: the
// cache holds the artifact and its CompressionDone is committed.
func warmRecorded(inCache bool, ms manifest.SegmentState) bool {
	return inCache && ms.Tier1.State == tier1Compressed
}

func hdr(id types.SegmentID) manifest.Header { return manifest.Header{SegmentID: id} }

func localEvicted(info core.SegmentInfo) manifest.LocalEvicted {
	return manifest.LocalEvicted{Header: hdr(info.ID), ReclaimedBytes: uint64(info.Capacity)}
}

// reason maps a job error to the manifest's reason code.
func reason(err error) manifest.ReasonCode {
	switch {
	case errors.Is(err, pluginapi.ErrAuth), errors.Is(err, pluginapi.ErrPermission):
		return manifest.ReasonAuth
	case errors.Is(err, pluginapi.ErrNotFound), errors.Is(err, types.ErrNotFound):
		return manifest.ReasonObjectMissing
	case errors.Is(err, types.ErrCorrupt), errors.Is(err, tier2.ErrDataLoss):
		return manifest.ReasonPermanent
	case errors.Is(err, pluginapi.ErrUnavailable), errors.Is(err, tier2.ErrBreakerOpen), errors.Is(err, pluginapi.ErrThrottled):
		return manifest.ReasonUnavailable
	}
	return manifest.ReasonTransient
}

// compress writes the warm artifact of a sealed resident segment and
// records it; the segment counts as held by tier 1 only once that record is
// committed.
func (c *Coordinator) compress(ctx context.Context, s *core.Stream, id types.SegmentID) (err error) {
	ctx, span := c.startSpan(ctx, tracing.SpanCompress, s.ID(), id, 1)
	result := tracing.ResultSkipped
	defer func() { endSpan(span, err, result) }()
	info, ok := s.Segment(id)
	if !ok || info.Footer == nil || info.Lost {
		return nil
	}
	k := types.SegmentKey{Stream: s.ID(), Segment: id}
	tl := s.TierLog()
	ms, _ := tl.Segment(id)
	switch {
	case c.warm.Contains(k) && ms.Tier1.State != tier1Compressed:
		// An artifact whose record did not commit (a failed commit, or
		// one adopted at start): record it before anything relies on it.
		st, _ := c.warm.Stat(k)
		if err := tl.Record(ctx, manifest.CompressionDone{Header: hdr(id), CompressedBytes: uint64(st.Bytes)}); err != nil {
			return err
		}
	case !c.warm.Contains(k):
		if !info.Resident {
			return nil // nothing to compress from; the artifact was adopted or is in tier 2
		}
		if err := tl.Note(manifest.CompressionStarted{Header: hdr(id)}); err != nil {
			return err
		}
		res, err := c.warm.Compress(ctx, tier1.Source{Stream: s.ID(), Path: info.Path, Segment: id})
		if err != nil {
			if cerr := tl.Record(ctx, manifest.CompressionFailed{Header: hdr(id), Reason: reason(err)}); cerr != nil {
				err = errors.Join(err, cerr)
			}
			return fmt.Errorf("compress segment %d: %w", id, err)
		}
		if err := tl.Record(ctx, manifest.CompressionDone{Header: hdr(id), CompressedBytes: uint64(res.CompressedBytes)}); err != nil {
			return err
		}
		result = tracing.ResultOK
		span.SetAttributes(tracing.Bytes(res.CompressedBytes), tracing.KeyRecords.Int64(int64(info.Footer.RecordCount)))
	}
	if err := c.budget.MarkInTier1(k); err != nil && !errors.Is(err, budget.ErrUnknownSegment) {
		return err
	}
	if c.remote != nil && !c.uploadsPaused.Load() {
		c.enqueue(job{kind: jobUpload, stream: s.ID(), seg: id})
	}
	s.Wake()
	return nil
}

// upload puts the warm artifact into tier 2, verified, and records it; only
// then may the warm copy be evicted and does the segment count as held by
// tier 2.
func (c *Coordinator) upload(ctx context.Context, s *core.Stream, id types.SegmentID) error {
	if c.uploadsPaused.Load() {
		return nil // the scan queues it again once uploads resume
	}
	return c.doUpload(ctx, s, id, false)
}

// reupload uploads a segment whose tier-2 object reconciliation found
// missing, from the warm artifact (recompressed from tier 0 if needed).
func (c *Coordinator) reupload(ctx context.Context, s *core.Stream, id types.SegmentID) error {
	k := types.SegmentKey{Stream: s.ID(), Segment: id}
	if !c.warm.Contains(k) {
		info, ok := s.Segment(id)
		if !ok || !info.Resident {
			return fmt.Errorf("reupload segment %d: no local copy left", id)
		}
		if _, err := c.warm.Compress(ctx, tier1.Source{Stream: s.ID(), Path: info.Path, Segment: id}); err != nil {
			return err
		}
	}
	return c.doUpload(ctx, s, id, true)
}

func (c *Coordinator) doUpload(ctx context.Context, s *core.Stream, id types.SegmentID, force bool) (err error) {
	ctx, span := c.startSpan(ctx, tracing.SpanUpload, s.ID(), id, 2)
	result := tracing.ResultSkipped
	defer func() { endSpan(span, err, result) }()
	if force {
		span.SetAttributes(tracing.KeyForced.Bool(true))
	}
	info, ok := s.Segment(id)
	if !ok || info.Footer == nil || info.Lost || c.remote == nil || !c.mayUpload() {
		return nil
	}
	k := types.SegmentKey{Stream: s.ID(), Segment: id}
	tl := s.TierLog()
	if deleteQueued(tl, id) {
		return nil // dropped by retention: its object is gone for good
	}
	ms, _ := tl.Segment(id)
	if ms.Tier2.Key == "" || force {
		if !c.warm.Contains(k) {
			c.enqueue(job{kind: jobCompress, stream: s.ID(), seg: id})
			return nil
		}
		key := c.remote.Layout().SegmentObjectKey(types.SegmentKey{Stream: s.ID(), Segment: id})
		if err := tl.Note(manifest.UploadStarted{Header: hdr(id), Key: key}); err != nil {
			return err
		}
		meta := tier2.SegmentInfo{RecordCount: info.Footer.RecordCount, BaseRecord: info.Footer.BaseRecord, Shared: c.cfg.Cluster != nil}
		var up tier2.Uploaded
		if vfs.OnOS(c.cfg.FS) {
			up, err = c.remote.UploadSegment(ctx, types.SegmentKey{Stream: s.ID(), Segment: id}, c.warm.Path(k), meta)
		} else {
			var data []byte
			if data, err = vfs.ReadFile(c.cfg.FS, c.warm.Path(k)); err == nil {
				up, err = c.remote.UploadSegmentData(ctx, types.SegmentKey{Stream: s.ID(), Segment: id}, data, meta)
			}
		}
		if meta.Shared {
			up, err = c.adoptShared(ctx, k, info, up, err) // cluster.go
		}
		if err != nil {
			if cerr := tl.Record(ctx, manifest.UploadFailed{Header: hdr(id), Key: key, Reason: reason(err)}); cerr != nil {
				err = errors.Join(err, cerr)
			}
			return fmt.Errorf("upload segment %d: %w", id, err)
		}
		if err := c.recordUpload(ctx, s, id, up); err != nil {
			return err
		}
		c.setMissing(k, false) // a re-upload verified: tier 2 holds it again
		result = tracing.ResultOK
		span.SetAttributes(tracing.Bytes(int64(up.Size)))
	}
	if c.isMissing(k) {
		return nil // not re-uploaded (a retry is queued by the scan)
	}
	if err := c.warm.MarkUploaded(k); err != nil && !errors.Is(err, tier1.ErrNotCached) {
		return err
	}
	if err := c.budget.MarkInTier2(k); err != nil && !errors.Is(err, budget.ErrUnknownSegment) && !errors.Is(err, budget.ErrEvicting) {
		return err
	}
	s.Wake()
	return nil
}

// evict deletes a tier-0 file the budget chose and records it. A segment a
// reader holds is given back to the budget.
func (c *Coordinator) evict(ctx context.Context, s *core.Stream, id types.SegmentID) (err error) {
	ctx, span := c.startSpan(ctx, tracing.SpanEvict, s.ID(), id, 0)
	result := tracing.ResultSkipped
	defer func() { endSpan(span, err, result) }()
	key := types.SegmentKey{Stream: s.ID(), Segment: id}
	unlock := c.lockKey(key)
	defer unlock()
	info, ok := s.Segment(id)
	if !ok {
		return c.budget.Removed(key)
	}
	err = s.EvictRecorded(ctx, id, localEvicted(info))
	switch {
	case errors.Is(err, core.ErrSegmentBusy) || errors.Is(err, core.ErrClosed):
		// Not evicted: the budget counts it again (unless it already
		// did, or retention dropped it meanwhile).
		if rerr := c.budget.Restore(key); rerr != nil && !errors.Is(rerr, budget.ErrNotEvicting) && !errors.Is(rerr, budget.ErrUnknownSegment) {
			return rerr
		}
		return nil
	case errors.Is(err, core.ErrNotFound):
		return c.budget.Removed(key) // it left the stream meanwhile
	}
	if cur, ok := s.Segment(id); err != nil && ok && cur.Resident {
		return errors.Join(err, c.budget.Restore(key)) // the file stayed
	}
	// The file is gone: the budget learns it whatever happens next. A
	// LocalEvicted lost to a failure of its record is re-derived by Start.
	if rerr := c.budget.Removed(key); rerr != nil {
		return errors.Join(err, rerr)
	}
	if err != nil {
		return err
	}
	result = tracing.ResultOK
	span.SetAttributes(tracing.Bytes(info.Capacity))
	s.Wake()
	return nil
}

// recordUpload commits a verified upload: in the stream's manifest on a
// single node; in the Raft log in a cluster, whose entry every node
// applies (AdoptUpload). An entry that could not be committed (the node
// stopped leading) leaves the upload to the next leader.
func (c *Coordinator) recordUpload(ctx context.Context, s *core.Stream, id types.SegmentID, up tier2.Uploaded) error {
	tl := s.TierLog()
	if c.cfg.Cluster == nil {
		return tl.Record(ctx, manifest.UploadDone{Header: hdr(id), Key: up.Key, ETag: up.ETag})
	}
	err := c.cfg.Cluster.RecordUpload(ctx, types.SegmentKey{Stream: s.ID(), Segment: id}, up.Key, up.ETag)
	if err != nil {
		if cerr := tl.Record(ctx, manifest.UploadFailed{Header: hdr(id), Key: up.Key, Reason: reason(err)}); cerr != nil {
			err = errors.Join(err, cerr)
		}
		return fmt.Errorf("record the upload of segment %d in the Raft log: %w", id, err)
	}
	return nil
}
