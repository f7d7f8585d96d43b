package coordinator

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/aof2/aof2/conformance/fake"
	"github.com/aof2/aof2/core"
	"github.com/aof2/aof2/core/budget"
)

// TestWaitingHydrationsDoNotWedgeWarmEviction: a hydration holds its
// segment's key lock while it waits in the budget's queue for tier-0 room
// (Coordinator.hydrate: lockKey, then budget.Admit). A warm-cache eviction
// job for that same segment no longer waits for the lock (evictWarm
// tries it and leaves the segment to the next scan). Before, with two such
// readers both workers blocked, so the uploads that would make tier 0
// evictable never ran, and every rollover queued behind the waiting
// hydrations: the node's writers were stuck as well.
func TestWaitingHydrationsDoNotWedgeWarmEviction(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	r := startRig(t, Config{DataDir: t.TempDir(), Tier2: newRemote(t, fake.New(fake.Options{})), ScanInterval: 10 * time.Millisecond,
		Registerer: prometheus.NewRegistry(), Tier0: budget.Config{MaxBytes: 2 * segSize, Policy: budget.PolicyTier2}}, core.Config{})
	defer r.close(t)
	c := r.c

	// Stream 1: several segments, all in tier 2; 1 and 2 leave tier 0.
	s1, err := r.st.Stream(1)
	require.NoError(t, err)
	writeSealed(t, ctx, s1, 2500)
	require.Eventually(t, func() bool {
		a, _ := s1.Segment(1)
		b, _ := s1.Segment(2)
		return !a.Resident && !b.Resident
	}, 10*time.Second, 10*time.Millisecond)

	// Uploads pause (an operator, or tier 2 unreachable): stream 2 fills
	// tier 0 with a full sealed segment and an active one, neither in
	// tier 2, so nothing is evictable.
	require.NoError(t, c.SetUploadsPaused(true))
	s2, err := r.st.Stream(2)
	require.NoError(t, err)
	for i := 0; ; i++ {
		id, err := s2.AppendCtx(ctx, payload(i), core.AppendOptions{})
		require.NoError(t, err)
		if id.Segment() == 2 {
			break
		}
	}

	// Two readers of stream 1's cold segments 1 and 2: their hydrations
	// wait in the budget's queue, each holding its segment's key lock.
	read := func(seg core.SegmentID) <-chan error {
		ch := make(chan error, 1)
		go func() {
			info, _ := s1.Segment(seg)
			rd, err := s1.NewReader(core.AtOrdinal(info.Footer.BaseRecord))
			if err != nil {
				ch <- err
				return
			}
			defer rd.Close()
			_, err = rd.NextCtx(ctx)
			ch <- err
		}()
		return ch
	}
	r1, r2 := read(1), read(2)
	require.Eventually(t, func() bool { return c.Budget().Stats().QueueDepth == 2 }, 10*time.Second, time.Millisecond)

	// The warm cache goes over its budget (tier1.max_bytes lowered, or it
	// simply grew): the scan queues warm evictions of uploaded artifacts of
	// segments not in tier 0 — segments 1 and 2 among them.
	c.Warm().SetMaxBytes(1)
	time.Sleep(200 * time.Millisecond)

	// Uploads resume: stream 2's segments can now go to tier 2, become
	// evictable and make room for the readers.
	require.NoError(t, c.SetUploadsPaused(false))
	for i, ch := range []<-chan error{r1, r2} {
		select {
		case err := <-ch:
			require.NoError(t, err, "reader %d", i+1)
		case <-time.After(10 * time.Second):
			st := c.Budget().Stats()
			t.Fatalf("reader %d still waits for its hydration 10 s after uploads resumed (budget: used %d of %d, evictable %d, queued %d; workers busy: %v)",
				i+1, st.Used, st.MaxBytes, st.Evictable, st.QueueDepth, runningJobs(c))
		}
	}
}

func runningJobs(c *Coordinator) []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	inQueue := map[job]bool{}
	for _, j := range c.mu.queue {
		inQueue[j] = true
	}
	var out []string
	for j := range c.mu.queued {
		if !inQueue[j] {
			out = append(out, fmt.Sprintf("%s %d/%d", j.kind, j.stream, j.seg))
		}
	}
	return out
}
