package coordinator

import (
	"context"
	"errors"
	"math/rand/v2"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/aof2/aof2/core"
	"github.com/aof2/aof2/core/manifest"
	"github.com/aof2/aof2/core/tier1"
	"github.com/aof2/aof2/core/tier2"
	"github.com/aof2/aof2/core/types"
	"github.com/aof2/aof2/internal/logthrottle"
	"github.com/aof2/aof2/pluginapi"
)

// fetchWithRetry fetches a hydration's artifact from tier 2, retrying
// transient failures a few times. The tier-2 store owns retries and has
// already spent its own budget on each failed fetch; this bounded outer
// retry only covers a partial outage that the store's breaker did not see
// as one (docs/adr-tier2.md, "Retries and the breaker, end to end"). It
// logs the events: retry_queued before each retry, retry_unavailable when
// a breaker is open or the backend throttles (no retry: the store already
// waited the backend's retry-after on each of its attempts; the reader
// gets the error now and may try again later), and retry_failed when the
// retries are spent.
func (c *Coordinator) fetchWithRetry(ctx context.Context, k types.SegmentKey, exp tier1.Expected) error {
	delay := c.cfg.HydrateRetryDelay
	// Each event is logged once per reason, then summarised
	// (logthrottle): reads retried by clients while tier 2 stays down
	// would otherwise log one line each.
	fail := func(level hclog.Level, msg string, err error, args ...any) {
		c.logs.Fail(logthrottle.Failure{Level: level, Msg: msg, Reason: tier2.Reason(err), Recovered: "tier1_hydration_retry_recovered",
			Args: append(append([]any{"stream_id", uint64(k.Stream), "segment_id", uint64(k.Segment)}, args...), "error", err)})
	}
	for attempt := 1; ; attempt++ {
		err := c.fetchArtifact(ctx, k, exp)
		switch {
		case err == nil:
			for _, msg := range hydrationRetryEvents {
				c.logs.Succeed(msg, "", "event", msg)
			}
			return nil
		case errors.Is(err, tier2.ErrBreakerOpen), errors.Is(err, pluginapi.ErrThrottled):
			fail(hclog.Warn, "tier1_hydration_retry_unavailable", err, "attempt", attempt)
			return err
		case !transient(err) || ctx.Err() != nil:
			return err
		case attempt > c.cfg.HydrateRetries:
			fail(hclog.Error, "tier1_hydration_retry_failed", err, "attempts", attempt)
			return err
		}
		wait := delay/2 + rand.N(delay/2+1)
		fail(hclog.Warn, "tier1_hydration_retry_queued", err, "attempt", attempt, "retry_in", wait)
		select {
		case <-time.After(wait):
		case <-ctx.Done():
			return errors.Join(err, ctx.Err())
		}
		delay = min(2*delay, 5*time.Second)
	}
}

var hydrationRetryEvents = []string{"tier1_hydration_retry_unavailable", "tier1_hydration_retry_failed", "tier1_hydration_retry_queued"}

// transient says whether a failed fetch may succeed if tried again.
func transient(err error) bool {
	return pluginapi.Retryable(err) || errors.Is(err, tier2.ErrChecksum)
}

// settleHydration records the end of a hydration of segment id that a
// crash interrupted: done when the hydrated tier-0 file is there (else
// the manifest does not place it in tier 0, and its next LocalEvicted
// would be read as the warm copy's), failed when it is not (a hydration
// left in progress keeps the segment in the index after retention
// deleted it). A hydration running now holds the segment's lock and
// records its own end.
func (c *Coordinator) settleHydration(ctx context.Context, s *core.Stream, id types.SegmentID) error {
	unlock, ok := c.tryLockKey(types.SegmentKey{Stream: s.ID(), Segment: id})
	if !ok {
		return nil
	}
	defer unlock()
	info, ok := s.Segment(id)
	if !ok || info.Footer == nil {
		return nil
	}
	tl := s.TierLog()
	ms, _ := tl.Segment(id)
	switch {
	case info.Resident && (!ms.Tier0 || ms.Hydration.InProgress):
		return tl.Record(ctx, manifest.HydrationDone{Header: hdr(id), ResidentBytes: uint64(info.Capacity)})
	case !info.Resident && ms.Hydration.InProgress:
		return tl.Record(ctx, manifest.HydrationFailed{Header: hdr(id), Reason: manifest.ReasonTransient})
	}
	return nil
}
