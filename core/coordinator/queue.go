package coordinator

import (
	"context"
	"errors"
	"time"

	"github.com/aof2/aof2/core"
	"github.com/aof2/aof2/core/tier2"
	"github.com/aof2/aof2/core/types"
	"github.com/aof2/aof2/internal/logthrottle"
)

// The job queue: the scan and the budget enqueue jobs and the workers run
// them. A job already queued or running is not queued again, except an
// evict job, which runs once more after the running one (done).

type jobKind uint8

const (
	jobCompress jobKind = iota + 1
	jobUpload
	jobEvict
	jobReupload
	jobChunk
	jobRetire
	jobWarmEvict
	jobWarmReclaim // pressure.go
	jobAgeSeal     // age.go
	jobSnapshot    // snapshots.go
	jobSeal        // pressure.go
	jobDrop        // cluster_retention.go: the leader's Drop entry, then the delete
	jobDropLocal   // cluster_retention.go: a queued drop a reader held up
	jobSweep       // cluster_retention.go: a new leader's roll-forward of cut deletes
)

// mutatesTier2 are the jobs that write or delete tier-2 objects.
var mutatesTier2 = map[jobKind]bool{jobUpload: true, jobReupload: true, jobChunk: true, jobRetire: true, jobSnapshot: true, jobDrop: true, jobSweep: true}

var jobNames = map[jobKind]string{jobCompress: "compress", jobUpload: "upload", jobEvict: "evict", jobReupload: "reupload", jobChunk: "manifest_chunk", jobRetire: "retire", jobWarmEvict: "warm_evict", jobWarmReclaim: "warm_reclaim", jobSeal: "seal", jobAgeSeal: "age_seal", jobSnapshot: "manifest_snapshot", jobDrop: "drop", jobDropLocal: "drop_local", jobSweep: "sweep"}

func (k jobKind) String() string { return jobNames[k] }

type job struct {
	kind   jobKind
	stream types.StreamID
	seg    types.SegmentID
	chunk  uint64 // jobSnapshot: the snapshot id
	term   uint64 // jobSweep: the Raft term it sweeps in
}

// enqueue adds a job unless the same one is already queued or running.
func (c *Coordinator) enqueue(j job) {
	c.mu.Lock()
	if c.mu.closed || c.mu.queued[j] {
		if !c.mu.closed && j.kind == jobEvict && c.mu.running[j] {
			c.mu.again[j] = true
		}
		c.mu.Unlock()
		return
	}
	c.mu.queued[j] = true
	c.mu.queue = append(c.mu.queue, j)
	c.m.queue.Set(float64(len(c.mu.queued)))
	c.mu.Unlock()
	select {
	case c.signal <- struct{}{}:
	default:
	}
}

func (c *Coordinator) next() (job, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.mu.queue) == 0 {
		return job{}, false
	}
	j := c.mu.queue[0]
	c.mu.queue = c.mu.queue[1:]
	c.mu.running[j] = true
	return j, true
}

func (c *Coordinator) done(j job) {
	c.mu.Lock()
	delete(c.mu.running, j)
	if c.mu.again[j] && !c.mu.closed {
		delete(c.mu.again, j)
		c.mu.queue = append(c.mu.queue, j) // still in queued
		c.mu.Unlock()
		select {
		case c.signal <- struct{}{}:
		default:
		}
		return
	}
	delete(c.mu.again, j)
	delete(c.mu.queued, j)
	c.m.queue.Set(float64(len(c.mu.queued)))
	c.mu.Unlock()
}

func (c *Coordinator) worker() {
	defer c.wg.Done()
	for {
		j, ok := c.next()
		if !ok {
			select {
			case <-c.signal:
				continue
			case <-c.ctx.Done():
				return
			}
		}
		// Pass the signal on: more jobs may be queued.
		select {
		case c.signal <- struct{}{}:
		default:
		}
		c.run(j)
		c.done(j)
	}
}

func (c *Coordinator) run(j job) {
	ctx, cancel := context.WithTimeout(c.ctx, c.cfg.JobTimeout)
	defer cancel()
	s, err := c.stream(j.stream)
	if err == nil && mutatesTier2[j.kind] {
		// Not the writer (yet): the scan queues it again once the store
		// and the claim checked out. A failed writer check fails the job.
		if err = c.mayMutate(ctx); errors.Is(err, errNotWriter) || errors.Is(err, types.ErrFenced) {
			return
		} else if err != nil {
			c.m.observe(j.kind, err, 0)
		}
	}
	if err == nil {
		start := time.Now()
		switch j.kind {
		case jobCompress:
			err = c.compress(ctx, s, j.seg)
		case jobUpload:
			err = c.upload(ctx, s, j.seg)
		case jobEvict:
			err = c.evict(ctx, s, j.seg)
		case jobReupload:
			err = c.reupload(ctx, s, j.seg)
		case jobChunk:
			err = c.uploadChunks(ctx, s)
		case jobRetire:
			err = c.retireJob(ctx, s, j.seg)
		case jobDropLocal:
			err = c.dropLocal(ctx, s, j.seg)
		case jobDrop:
			err = c.dropInCluster(ctx, s, j.seg)
		case jobSweep:
			err = c.sweepDropped(ctx, s, j.term)
		case jobWarmEvict:
			err = c.evictWarm(ctx, s, j.seg, false)
		case jobWarmReclaim:
			err = c.evictWarm(ctx, s, j.seg, true)
		case jobAgeSeal:
			err = c.sealAged(s, j.seg)
		case jobSnapshot:
			err = c.uploadSnapshot(ctx, s, j.chunk)
		case jobSeal:
			err = c.sealActive(s, j.seg)
		}
		c.m.observe(j.kind, err, time.Since(start))
	}
	c.noteNoSpace(err)
	c.logJob(j, err)
}

// jobFailed is the message of a failed job; jobs of a kind that keep
// failing for one reason log it once, then summaries (logthrottle).
const jobFailed = "tiering job failed; the scan retries it"

func (c *Coordinator) logJob(j job, err error) {
	switch {
	case err == nil:
		c.logs.Succeed(jobFailed, j.kind.String(), "job", j.kind.String())
	case c.ctx.Err() == nil && !errors.Is(err, core.ErrClosed):
		c.logs.Fail(logthrottle.Failure{Msg: jobFailed, Group: j.kind.String(), Reason: tier2.Reason(err), Recovered: "tiering job recovered",
			Args: []any{"job", j.kind.String(), "stream_id", uint64(j.stream), "segment_id", uint64(j.seg), "error", err}})
	}
}
