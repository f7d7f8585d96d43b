package tier1

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/aof2/aof2/core/types"
	"github.com/aof2/aof2/internal/logfields"
	"github.com/aof2/aof2/internal/logthrottle"
)

// Compress compresses a sealed segment into the cache on the compression
// pool and waits for it (the caller waits; tier 0 should use
// SubmitCompress). src.Segment is required. When the artifact is already
// cached the existing one is returned without work; a compression of the
// same segment already running gives ErrInProgress. The new artifact is
// admitted unpinned, not uploaded, most recently used; admission never
// evicts (call Evict).
func (c *Cache) Compress(ctx context.Context, src Source) (CompressResult, error) {
	type out struct {
		r   CompressResult
		err error
	}
	ch := make(chan out, 1)
	err := c.compress.submit(ctx, func(jctx context.Context, reject error) {
		if reject != nil {
			ch <- out{err: reject}
			return
		}
		r, err := c.runCompress(jctx, src)
		ch <- out{r, err}
	}, true)
	if err != nil {
		return CompressResult{}, err
	}
	select {
	case o := <-ch:
		return o.r, o.err
	case <-ctx.Done():
		return CompressResult{}, ctx.Err()
	}
}

// SubmitCompress queues a compression and returns at once: ErrBusy when the
// queue is full, ErrClosed after Close. done is called exactly once from a
// pool goroutine (with ErrClosed if the cache closes before the job runs).
func (c *Cache) SubmitCompress(ctx context.Context, src Source, done func(CompressResult, error)) error {
	return c.compress.submit(ctx, func(jctx context.Context, reject error) {
		if reject != nil {
			done(CompressResult{}, reject)
			return
		}
		done(c.runCompress(jctx, src))
	}, false)
}

func (c *Cache) runCompress(ctx context.Context, src Source) (CompressResult, error) {
	if src.Segment == 0 {
		return CompressResult{}, fmt.Errorf("tier1: compress %s: source segment id required", src.Path)
	}
	k := types.SegmentKey{Stream: src.Stream, Segment: src.Segment}
	c.mu.Lock()
	if c.mu.closed {
		c.mu.Unlock()
		return CompressResult{}, ErrClosed
	}
	if e, ok := c.mu.entries[k]; ok {
		r := e.info
		c.mu.Unlock()
		return r, nil
	}
	if _, ok := c.mu.compress[k]; ok || c.isRemovingLocked(k) {
		c.mu.Unlock()
		return CompressResult{}, fmt.Errorf("tier1: compress %s: %w", k, ErrInProgress)
	}
	c.mu.compress[k] = struct{}{}
	c.mu.Unlock()

	r, err := CompressSegment(ctx, c.fs, src, c.Path(k), c.cfg.Options)

	c.mu.Lock()
	delete(c.mu.compress, k)
	if err == nil {
		now := c.cfg.Now()
		c.admitLocked(&entry{key: k, info: r, admitted: now, lastUse: now})
	}
	c.mu.Unlock()
	if err != nil {
		c.m.compressions.WithLabelValues("failed").Inc()
		reason := "error"
		if errors.Is(err, types.ErrNoSpace) {
			reason = "no_space"
		}
		c.logs.Fail(logthrottle.Failure{Msg: "tier1_compression_failed", Reason: reason, Recovered: "tier1_compression_recovered",
			Args: []any{"stream_id", k.Stream, "segment_id", k.Segment, "error", err}})
		return CompressResult{}, err
	}
	c.logs.Succeed("tier1_compression_failed", "")
	c.m.compressions.WithLabelValues("ok").Inc()
	c.m.rawBytes.Add(float64(r.Capacity))
	c.m.compressedBytes.Add(float64(r.CompressedBytes))
	c.m.ratio.Set(r.Ratio())
	c.m.compressSecs.Observe(r.Duration.Seconds())
	c.log.Info("tier1_compression_success", append([]any{"stream_id", k.Stream, "segment_id", k.Segment,
		"segment_bytes", r.Capacity, "compressed_bytes", r.CompressedBytes, "frames", r.Frames}, logfields.Duration("duration", r.Duration)...)...)
	return r, nil
}

// HydrateRequest asks for a segment to be rebuilt as a tier-0 file.
type HydrateRequest struct {
	// Expected identifies the segment and carries the segment_crc64 the
	// rebuilt file must have.
	Expected Expected
	// Dest is the segment file to create (the caller's tier-0 path); it is
	// written as Dest.tmp and renamed into place only once verified.
	Dest string
	// Source, when set, is read instead of the cached artifact: a tier-2
	// object through range reads, of SourceSize bytes. SourceName names it
	// in errors.
	Source     io.ReaderAt
	SourceSize int64
	SourceName string
}

// Hydrate rebuilds a segment on the hydration pool and waits for it. A
// mismatch with the expected segment_crc64 is a *ChecksumMismatchError
// and leaves no file at Dest.
func (c *Cache) Hydrate(ctx context.Context, req HydrateRequest) (HydrateResult, error) {
	type out struct {
		r   HydrateResult
		err error
	}
	ch := make(chan out, 1)
	err := c.hydrate.submit(ctx, func(jctx context.Context, reject error) {
		if reject != nil {
			ch <- out{err: reject}
			return
		}
		r, err := c.runHydrate(jctx, req)
		ch <- out{r, err}
	}, true)
	if err != nil {
		return HydrateResult{}, err
	}
	select {
	case o := <-ch:
		return o.r, o.err
	case <-ctx.Done():
		return HydrateResult{}, ctx.Err()
	}
}

// SubmitHydrate queues a hydration without waiting (ErrBusy when the queue
// is full); done is called exactly once from a pool goroutine.
func (c *Cache) SubmitHydrate(ctx context.Context, req HydrateRequest, done func(HydrateResult, error)) error {
	return c.hydrate.submit(ctx, func(jctx context.Context, reject error) {
		if reject != nil {
			done(HydrateResult{}, reject)
			return
		}
		done(c.runHydrate(jctx, req))
	}, false)
}

func (c *Cache) runHydrate(ctx context.Context, req HydrateRequest) (res HydrateResult, err error) {
	k := req.Expected.Key
	c.mu.Lock()
	if c.mu.closed {
		c.mu.Unlock()
		return res, ErrClosed
	}
	if _, ok := c.mu.hydrating[req.Dest]; ok {
		c.mu.Unlock()
		return res, fmt.Errorf("tier1: hydrate %s to %s: %w", k, req.Dest, ErrInProgress)
	}
	c.mu.hydrating[req.Dest] = struct{}{}
	c.mu.Unlock()
	start := time.Now()
	defer func() {
		c.mu.Lock()
		delete(c.mu.hydrating, req.Dest)
		c.mu.Unlock()
		c.m.hydrateSecs.Observe(time.Since(start).Seconds())
		c.m.framesFetched.Add(float64(res.Stats.FramesFetched))
		c.m.fetchedBytes.Add(float64(res.Stats.Fetched()))
		source := "tier1"
		if req.Source != nil {
			source = req.SourceName
		}
		if err != nil {
			result := hydrateResult(err)
			c.m.hydrations.WithLabelValues(result).Inc()
			// A reader retrying a hydration that keeps failing would log
			// each time: once per reason, then summaries. A damaged
			// artifact is named at least once (its own group).
			f := logthrottle.Failure{Level: hclog.Error, Msg: hydrationFailed, Reason: result, Recovered: "tier1_hydration_recovered",
				Args: []any{"stream_id", k.Stream, "segment_id", k.Segment, "source", source, "error", err}}
			switch {
			case errors.Is(err, context.Canceled):
				f.Level, f.Reason = hclog.Info, "canceled" // the reader went away or the host is stopping
			case result != "failed":
				f.Group = k.String()
			}
			c.logs.Fail(f)
			return
		}
		c.logs.Succeed(hydrationFailed, "")
		c.logs.Succeed(hydrationFailed, k.String(), "stream_id", k.Stream, "segment_id", k.Segment)
		c.m.hydrations.WithLabelValues("ok").Inc()
		c.log.Info("tier1_hydration_success", append([]any{"stream_id", k.Stream, "segment_id", k.Segment, "source", source,
			"bytes_fetched", res.Stats.Fetched(), "frames", res.Stats.FramesFetched}, logfields.Duration("duration", res.Duration)...)...)
	}()

	var a *Artifact
	if req.Source != nil {
		name := req.SourceName
		if name == "" {
			name = k.String()
		}
		if a, err = OpenReaderAt(req.Source, req.SourceSize, name); err != nil {
			return res, err
		}
	} else if a, err = c.OpenArtifact(k); err != nil {
		return res, err
	}
	defer a.Close()
	return Hydrate(ctx, c.fs, a, req.Expected, req.Dest)
}

// hydrationFailed is the event of a failed hydration (rate-limited).
const hydrationFailed = "tier1_hydration_failed"

func hydrateResult(err error) string {
	switch {
	case errors.Is(err, ErrChecksumMismatch):
		return "checksum_mismatch"
	case errors.Is(err, ErrCorruptArtifact):
		return "corrupt"
	}
	return "failed"
}
