package coordinator

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/aof2/aof2/core"
	"github.com/aof2/aof2/core/tier2"
	"github.com/aof2/aof2/core/types"
	"github.com/aof2/aof2/internal/logthrottle"
)

// A node that lost its data (a deleted or replaced data directory, a disk
// restored from an old backup) must not write over what tier 2 holds:
// the stream would start again at segment 1, or go on from an older
// segment, handing out record ids that already name records in tier 2,
// and every upload after it would fail as DataLoss. Two checks stop it:
//
//   - At start the coordinator lists which streams tier 2 holds (a
//     skip-scan, one request per stream). Creating one of them refuses
//     with a *NeedsRestoreError; creating any stream waits
//     (WouldBlock(Admission)) until that list is known, retried by the
//     scan while tier 2 is unreachable.
//   - Reconciliation at start compares each local stream with its tier-2
//     listing: a segment object newer than the stream's newest segment
//     means the local data is older than the bucket's, and the stream
//     refuses appends (Stream.RefuseAppends).

// remoteStreamsRetry is the Retry-After of a stream creation waiting for
// the tier-2 stream list.
const remoteStreamsRetry = time.Second

// listRemoteStreams learns which streams tier 2 holds. It is done once;
// until it succeeds, creations wait.
func (c *Coordinator) listRemoteStreams(ctx context.Context) {
	c.mu.Lock()
	done := c.mu.remoteStreams != nil
	c.mu.Unlock()
	if done || c.remote == nil {
		return
	}
	ids, err := c.remote.ListStreams(ctx)
	if err != nil {
		c.mu.Lock()
		c.mu.remoteStreamsErr = err
		c.mu.Unlock()
		if ctx.Err() == nil {
			// Retried every scan: logged once per reason, then summarised.
			c.logs.Fail(logthrottle.Failure{Msg: remoteStreamsFailed, Reason: tier2.Reason(err),
				Recovered: "tier 2 listed: new streams are admitted", Args: []any{"error", err}})
		}
		return
	}
	c.mu.Lock()
	c.mu.remoteStreams = make(map[types.StreamID]bool, len(ids))
	for _, id := range ids {
		c.mu.remoteStreams[id] = true
	}
	c.mu.remoteStreamsErr = nil
	c.mu.Unlock()
	c.logs.Succeed(remoteStreamsFailed, "", "streams", len(ids))
}

// remoteStreamsFailed is the event of a failed listing of tier 2's streams.
const remoteStreamsFailed = "tier 2 could not be listed: new streams wait until it can (existing ones are served)"

// CheckNewStream refuses to create a stream that tier 2 already holds,
// and asks to wait while that is not known yet.
func (c *Coordinator) CheckNewStream(id types.StreamID) error {
	if c.remote == nil || !c.ownsCommitLog() {
		return nil
	}
	if f := c.fenced.Load(); f != nil {
		return f
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case c.mu.remoteStreams == nil:
		cause := fmt.Errorf("tier 2 has not been listed yet, so stream %d may exist there", id)
		if c.mu.remoteStreamsErr != nil {
			cause = fmt.Errorf("%w: %w", cause, c.mu.remoteStreamsErr)
		}
		return &types.WouldBlock{Kind: types.Admission, RetryAfter: remoteStreamsRetry, Cause: cause}
	case c.mu.remoteStreams[id]:
		return &types.NeedsRestoreError{Stream: id, Reason: fmt.Sprintf(
			"tier 2 holds stream %d (under %q) and this data directory does not", id, c.remote.Layout().StreamPrefix(id))}
	}
	return nil
}

// checkAhead refuses appends to a stream whose tier-2 listing holds a
// segment newer than any this node knows, and says why.
func checkAhead(s *core.Stream, remote []types.SegmentID) string {
	var newest types.SegmentID
	if segs := s.SegmentList(); len(segs) > 0 {
		newest = segs[len(segs)-1].ID
	}
	for _, ms := range s.TierLog().Segments() {
		newest = max(newest, ms.SegmentID)
	}
	if len(remote) == 0 {
		return ""
	}
	top := slices.Max(remote)
	if top <= newest {
		return ""
	}
	reason := fmt.Sprintf("tier 2 holds segment %d of stream %d, this node only up to segment %d", top, s.ID(), newest)
	s.RefuseAppends(reason)
	return reason
}

// RemoteStreams returns the streams tier 2 holds, as listed at start;
// known is false while that listing has not succeeded (or without tier
// 2).
func (c *Coordinator) RemoteStreams() (ids []types.StreamID, known bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.mu.remoteStreams == nil {
		return nil, false
	}
	for id := range c.mu.remoteStreams {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids, true
}
