package coordinator

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"time"

	"github.com/aof2/aof2/core"
	"github.com/aof2/aof2/core/budget"
	"github.com/aof2/aof2/core/internal/tracing"
	"github.com/aof2/aof2/core/manifest"
	"github.com/aof2/aof2/core/segment"
	"github.com/aof2/aof2/core/tier1"
	"github.com/aof2/aof2/core/tier2"
	"github.com/aof2/aof2/core/types"
	"github.com/aof2/aof2/core/vfs"
	"github.com/aof2/aof2/internal/logthrottle"
	"github.com/aof2/aof2/pluginapi"
)

var _ core.Tiering = (*Coordinator)(nil)

// hydrationEvictFailed is the event of an eviction a hydration needed
// that failed (rate-limited: every cold read may hit it again).
const hydrationEvictFailed = "eviction for a hydration failed"

// SegmentRead moves a segment a reader moved onto to the recent end of the
// tier-0 LRU (and its warm copy to the recent end of the warm LRU), so
// eviction takes the least recently read segments first.
func (c *Coordinator) SegmentRead(k types.SegmentKey) {
	_ = c.budget.Touch(k)
	_ = c.warm.Touch(k)
}

// AdmitSegment: with a tier 2, a new active segment's id must be covered
// by a segment-id reservation there (reserve.go); then it must fit the
// tier-0 budget. Victims the budget picks are evicted by the workers.
func (c *Coordinator) AdmitSegment(k types.SegmentKey, bytes int64) error {
	if err := c.admitReserved(k); err != nil {
		return err
	}
	req := budget.Request{Key: k, Bytes: bytes, Active: true}
	g, err := c.budget.TryAdmit(req)
	if errors.Is(err, budget.ErrExists) {
		return nil
	}
	if errors.Is(err, types.ErrWouldBlock) {
		c.requestSeals(req) // pressure.go
		if c.cfg.Cluster != nil && c.remote != nil {
			return c.admitOver(req) // cluster.go
		}
	}
	if err != nil {
		return err
	}
	for _, v := range g.Evict {
		c.enqueue(job{kind: jobEvict, stream: v.Key.Stream, seg: v.Key.Segment})
	}
	return nil
}

// SegmentSealed queues the compression of a sealed segment.
func (c *Coordinator) SegmentSealed(s *core.Stream, info core.SegmentInfo) {
	k := types.SegmentKey{Stream: s.ID(), Segment: info.ID}
	err := c.budget.Seal(k)
	if err == nil {
		err = c.budget.Shrink(k, tier0Charge(info))
	}
	if err != nil && !errors.Is(err, budget.ErrUnknownSegment) {
		c.log.Warn("tier0: seal", "stream_id", uint64(s.ID()), "segment_id", uint64(info.ID), "error", err)
	}
	c.enqueue(job{kind: jobCompress, stream: s.ID(), seg: info.ID})
}

// tier0Charge is what a resident segment costs the tier-0 budget: its
// capacity while active, the room its file keeps once sealed (the seal
// gives the unused middle back: docs/adr-tier0.md).
func tier0Charge(info core.SegmentInfo) int64 {
	if info.Footer == nil {
		return info.Capacity
	}
	return segment.SealedFootprint(info.Capacity, info.Footer.DurableBytes)
}

// Describe reads a segment's header and footer from the warm artifact, or
// from the tier-2 object through range reads (the seek table and two
// frames, not the segment).
func (c *Coordinator) Describe(ctx context.Context, k types.SegmentKey) (segment.Header, segment.Footer, error) {
	a, closeFn, err := c.openArtifact(ctx, k)
	if err != nil {
		return segment.Header{}, segment.Footer{}, err
	}
	defer closeFn()
	h, err := a.Header()
	if err != nil {
		return h, segment.Footer{}, err
	}
	f, err := a.Footer()
	return h, f, err
}

// openArtifact opens a segment's artifact wherever it is: the warm file, or
// the tier-2 object.
func (c *Coordinator) openArtifact(ctx context.Context, k types.SegmentKey) (*tier1.Artifact, func(), error) {
	path := tier1.ArtifactPath(c.cfg.DataDir, k)
	if f, err := c.cfg.FS.Open(path); err == nil {
		size, err := f.Size()
		if err == nil {
			a, err := tier1.OpenReaderAt(f, size, path)
			if err == nil {
				if err = checkArtifactKey(a, k); err == nil {
					return a, func() { _ = a.Close(); _ = f.Close() }, nil
				}
				_ = a.Close()
			}
		}
		_ = f.Close()
	}
	if c.remote == nil {
		return nil, nil, fmt.Errorf("segment %d of stream %d: no warm artifact and no tier 2: %w", k.Segment, k.Stream, types.ErrNotFound)
	}
	rr, err := c.remote.OpenSegmentRange(ctx, k, tier2.Expect{})
	if err != nil {
		return nil, nil, err
	}
	a, err := tier1.OpenReaderAt(rr, rr.Size(), c.remote.Layout().SegmentObjectKey(k))
	if err != nil {
		return nil, nil, err
	}
	if err := checkArtifactKey(a, k); err != nil {
		_ = a.Close()
		return nil, nil, err
	}
	return a, func() { _ = a.Close() }, nil
}

// checkArtifactKey refuses an artifact whose header names another segment.
func checkArtifactKey(a *tier1.Artifact, k types.SegmentKey) error {
	h, err := a.Header()
	if err != nil {
		return err
	}
	if h.StreamID != k.Stream || h.SegmentID != k.Segment {
		return fmt.Errorf("artifact of segment %d of stream %d holds segment %d of stream %d: %w", k.Segment, k.Stream, h.SegmentID, h.StreamID, types.ErrCorrupt)
	}
	return nil
}

// Hydrate admits the segment to tier 0 (waiting for room, evicting what
// the budget picks), brings the artifact into the warm cache from tier 2
// if needed, rebuilds the tier-0 file verified against segment_crc64, and
// records it.
func (c *Coordinator) Hydrate(ctx context.Context, k types.SegmentKey, path string) error {
	return c.hydrate(ctx, k, path)
}

// ReadFailed is core.Tiering's: on a cluster member, an object tier 2
// does not have may be one retention dropped meanwhile
// (droppedMeanwhile). The engine asks with the segment released, and so
// is the segment's key lock here: the catch-up waits for the apply loop,
// which may read the segment too (a replay counting its records) or drop
// it (applying the Drop takes the lock).
func (c *Coordinator) ReadFailed(ctx context.Context, k types.SegmentKey, err error) error {
	if !errors.Is(err, pluginapi.ErrNotFound) {
		return err
	}
	s, serr := c.stream(k.Stream)
	if serr != nil {
		return err
	}
	return c.droppedMeanwhile(ctx, s, k.Segment, err)
}

func (c *Coordinator) hydrate(ctx context.Context, k types.SegmentKey, path string) (err error) {
	stream, seg := k.Stream, k.Segment
	ctx, span := tracing.Start(ctx, c.tracer, tracing.SpanHydrate, tracing.StreamID(uint64(stream)), tracing.SegmentID(uint64(seg)))
	defer func() { tracing.End(span, err) }()
	start, source := time.Now(), "1"
	c.m.hydrating.Set(float64(c.hydrating.Add(1)))
	defer func() {
		c.m.hydrating.Set(float64(c.hydrating.Add(-1)))
		result := "ok"
		if err != nil {
			result = "failed"
		} else {
			c.hydrationLat.add(time.Since(start))
		}
		c.m.hydrate.WithLabelValues(source, result).Observe(time.Since(start).Seconds())
	}()
	s, err := c.stream(stream)
	if err != nil {
		return err
	}
	info, ok := s.Segment(seg)
	if !ok || info.Footer == nil {
		return fmt.Errorf("segment %d: %w", seg, types.ErrNotFound)
	}
	tl := s.TierLog()
	ms, _ := tl.Segment(seg)
	inT2 := ms.Tier2.Key != "" && !c.isMissing(k)
	key := k
	// An eviction of this segment still finishing (file gone, budget not yet
	// told) must complete first.
	unlock := c.lockKey(key)
	defer unlock()
	// Retention may have dropped it while this waited for the lock (or
	// queued its drop): hydrating now would bring it back.
	if _, ok := s.Segment(seg); !ok || deleteQueued(tl, seg) {
		return fmt.Errorf("stream %d segment %d: dropped by retention: %w", stream, seg, types.ErrNotFound)
	}
	// Admitted pinned: a segment being hydrated is no eviction victim.
	g, err := c.budget.Admit(ctx, budget.Request{Key: key, Bytes: tier0Charge(info), InTier1: true, InTier2: inT2, Pin: true, Priority: budget.PriorityForeground})
	if err != nil {
		return err
	}
	for _, v := range g.Evict {
		if vs, err := c.stream(v.Key.Stream); err == nil {
			if err := c.evict(ctx, vs, v.Key.Segment); err != nil {
				// Every cold read may try again: logged once per
				// reason, then summarised.
				c.logs.Fail(logthrottle.Failure{Msg: hydrationEvictFailed, Reason: tier2.Reason(err), Recovered: "eviction for a hydration recovered",
					Args: []any{"stream_id", uint64(v.Key.Stream), "segment_id", uint64(v.Key.Segment), "error", err}})
			} else {
				c.logs.Succeed(hydrationEvictFailed, "")
			}
		}
	}
	defer func() {
		_ = c.budget.Unpin(key)
		if err != nil {
			_ = c.budget.Removed(key)
		}
	}()
	sourceTier := uint64(1)
	if !c.warm.Contains(k) {
		sourceTier, source = 2, "2"
	}
	span.SetAttributes(tracing.Tier(int(sourceTier)), tracing.Bytes(info.Capacity))
	if err := tl.Note(manifest.HydrationStarted{Header: hdr(seg), SourceTier: sourceTier}); err != nil {
		return err
	}
	exp := tier1.Expected{Key: k, SegmentCRC: info.Footer.SegmentCRC, Uploaded: inT2}
	if sourceTier == 2 {
		err = c.fetchWithRetry(ctx, k, exp)
		if st, ok := c.warm.Stat(k); err == nil && ok {
			// The fetched artifact is a warm copy like a compressed one:
			// recorded so that the warm budget may evict it and a restart
			// adopts it.
			err = tl.Record(ctx, manifest.CompressionDone{Header: hdr(seg), CompressedBytes: uint64(st.Bytes)})
		}
	}
	if err == nil {
		_, err = c.warm.Hydrate(ctx, tier1.HydrateRequest{Expected: exp, Dest: path})
	}
	if err != nil {
		if cerr := tl.Record(ctx, manifest.HydrationFailed{Header: hdr(seg), Reason: reason(err)}); cerr != nil {
			err = errors.Join(err, cerr)
		}
		return err
	}
	return tl.Record(ctx, manifest.HydrationDone{Header: hdr(seg), ResidentBytes: uint64(info.Capacity)})
}

// fetchArtifact downloads a segment's artifact from tier 2 into the warm
// cache (verified by tier 2 against the object's checksum, then by the
// cache against the segment).
func (c *Coordinator) fetchArtifact(ctx context.Context, k types.SegmentKey, exp tier1.Expected) (err error) {
	ctx, span := c.startSpan(ctx, tracing.SpanFetch, k.Stream, k.Segment, 2)
	defer func() { tracing.End(span, err) }()
	if c.remote == nil {
		return fmt.Errorf("segment %d: not in the warm cache and no tier 2: %w", k.Segment, types.ErrNotFound)
	}
	final := tier1.ArtifactPath(c.cfg.DataDir, k)
	if err := vfs.MkdirAllSync(c.cfg.FS, filepath.Dir(final)); err != nil {
		return err
	}
	if !vfs.OnOS(c.cfg.FS) {
		data, _, err := c.remote.Fetch(ctx, c.remote.Layout().SegmentObjectKey(k), tier2.Expect{})
		if err != nil {
			return err
		}
		c.m.fetched.Add(float64(len(data)))
		span.SetAttributes(tracing.Bytes(int64(len(data))))
		if err := vfs.WriteFileAtomic(c.cfg.FS, final, data); err != nil {
			return err
		}
		return c.adoptFetched(ctx, final, exp)
	}
	tmp := fmt.Sprintf("%s.fetch-%d%s", final, c.fetchSeq.Add(1), tier1.TempSuffix)
	d, err := c.remote.DownloadSegment(ctx, k, tmp, tier2.Expect{})
	if err != nil {
		_ = c.cfg.FS.Remove(tmp)
		return err
	}
	c.m.fetched.Add(float64(d.Size))
	span.SetAttributes(tracing.Bytes(int64(d.Size)))
	// The plugin wrote the file and did not sync it: its bytes must be
	// durable before the rename makes it the warm copy that a commit of
	// CompressionDone then vouches for.
	if err := vfs.SyncFile(c.cfg.FS, tmp); err != nil {
		_ = c.cfg.FS.Remove(tmp)
		return err
	}
	if err := c.cfg.FS.Rename(tmp, final); err != nil {
		return err
	}
	if err := c.cfg.FS.SyncDir(filepath.Dir(final)); err != nil {
		return err
	}
	return c.adoptFetched(ctx, final, exp)
}

// adoptFetched admits a downloaded artifact; one that does not verify is
// removed, so that no reader (openArtifact) opens it.
func (c *Coordinator) adoptFetched(ctx context.Context, final string, exp tier1.Expected) error {
	err := c.warm.Adopt(ctx, exp)
	if err != nil && !c.warm.Contains(exp.Key) {
		_ = c.cfg.FS.Remove(final)
	}
	return err
}

// deleteQueued reports whether retention queued segment id's delete (it
// was dropped, and lingers only while something held it).
func deleteQueued(tl *core.TierLog, id types.SegmentID) bool {
	ms, _ := tl.Segment(id)
	return len(ms.Tier2.PendingDeletes) > 0
}

// ReadRecord reads one record of a cold segment from its artifact (warm
// file, or tier-2 range reads), without hydrating it. The ordinal is left
// to the caller (it is not known without the index). A backend without
// ranged reads makes it answer errors.ErrUnsupported: the engine then
// hydrates the segment.
func (c *Coordinator) ReadRecord(ctx context.Context, k types.SegmentKey, off, limit int64) (core.Record, error) {
	a, closeFn, err := c.openArtifact(ctx, k)
	if err != nil {
		return core.Record{}, unsupportedRange(err)
	}
	defer closeFn()
	rec, err := a.ReadRecord(off, limit)
	if err != nil {
		return core.Record{}, unsupportedRange(err)
	}
	c.m.coldReads.Inc()
	c.m.coldBytes.Add(float64(a.Stats().Fetched()))
	c.coldBytes.Add(a.Stats().Fetched())
	return core.Record{Timestamp: rec.Timestamp, ExtID: rec.ExtID, Payload: rec.Payload}, nil
}

// unsupportedRange marks a tier-2 backend's refusal of ranged reads as
// errors.ErrUnsupported, the engine's cue to hydrate instead.
func unsupportedRange(err error) error {
	if errors.Is(err, pluginapi.ErrUnimplemented) {
		return fmt.Errorf("ranged reads of tier 2 (%w): %w", errors.ErrUnsupported, err)
	}
	return err
}
