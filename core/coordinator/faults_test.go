package coordinator

import (
	"context"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/stretchr/testify/require"

	"github.com/aof2/aof2/conformance/fake"
	"github.com/aof2/aof2/core"
	"github.com/aof2/aof2/core/budget"
	"github.com/aof2/aof2/core/checksum"
	"github.com/aof2/aof2/core/tier2"
	"github.com/aof2/aof2/core/types"
	"github.com/aof2/aof2/core/vfs"
)

// TestFaultyTier2: every fault the fake can inject, each at a 20% rate,
// while several streams write through a small tier 0. Invariants checked
// throughout: no manifest entry points at an object that is not there
// with the artifact's exact checksum, and no tier-0 file is evicted before
// its upload is durable. Once the faults stop the backlog drains and every
// record reads back.
func TestFaultyTier2(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	backend := fake.New(fake.Options{Seed: 42})
	var rules []fake.Fault
	for _, m := range []fake.Mode{fake.Throttle, fake.ServerError, fake.Timeout, fake.Truncate, fake.WrongBytes, fake.WrongChecksum, fake.DropPut} {
		rules = append(rules, fake.Fault{Mode: m, Rate: 0.2, RetryAfter: time.Millisecond, Delay: time.Millisecond})
	}
	require.NoError(t, backend.Inject(rules...))
	remote, err := tier2.New(backend, tier2.Config{Logger: hclog.NewNullLogger(), AttemptTimeout: 200 * time.Millisecond,
		Backoff: tier2.Backoff{Initial: time.Millisecond, Max: 20 * time.Millisecond}, Breaker: tier2.BreakerConfig{Cooldown: 50 * time.Millisecond}})
	require.NoError(t, err)
	dir := t.TempDir()
	r := startRig(t, Config{DataDir: dir, Tier2: remote, ScanInterval: 10 * time.Millisecond, Logger: hclog.NewNullLogger(),
		Tier0: budget.Config{MaxBytes: 6 * segSize, Policy: budget.PolicyTier2}}, core.Config{})
	defer r.stop(t)
	c, st := r.c, r.st

	check := func(s *core.Stream) {
		for _, info := range s.SegmentList() {
			ms, _ := s.TierLog().Segment(info.ID)
			if ms.Tier2.Key != "" {
				obj, ok := backend.Stored(ms.Tier2.Key)
				require.True(t, ok, "segment %d: the manifest points at %s, which is not stored", info.ID, ms.Tier2.Key)
				data, err := vfs.ReadFile(vfs.OS, c.Warm().Path(types.SegmentKey{Stream: s.ID(), Segment: info.ID}))
				if err == nil {
					require.Equal(t, checksum.Sum64(data), obj.CRC64, "segment %d: the object holds the artifact's bytes", info.ID)
				}
			} else {
				require.True(t, info.Resident || info.Footer == nil, "segment %d left tier 0 before its upload was durable", info.ID)
			}
		}
	}
	const streams, records = 3, 1500
	var ss []*core.Stream
	for id := range streams {
		// Creating a stream waits until tier 2 has been listed, which the
		// faults may delay past Start: the scan retries it.
		var s *core.Stream
		var err error
		for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(10 * time.Millisecond) {
			s, err = st.Stream(core.StreamID(id + 1))
			if err == nil || core.KindOf(err) != core.Admission || time.Now().After(deadline) {
				break
			}
		}
		require.NoError(t, err, "create stream %d", id+1)
		ss = append(ss, s)
	}
	for i := range records {
		for _, s := range ss {
			_, err := s.AppendCtx(ctx, payload(i), core.AppendOptions{})
			require.NoError(t, err)
		}
		if i%100 == 99 {
			for _, s := range ss {
				require.NoError(t, s.FlushAll(ctx))
				check(s)
			}
		}
		if i%500 == 499 {
			for _, s := range ss {
				coldReadUnderFaults(t, ctx, c, s)
			}
		}
	}
	injected := backend.Injected()
	t.Logf("faults injected: %v", injected)
	for _, m := range []fake.Mode{fake.Throttle, fake.ServerError, fake.DropPut, fake.WrongChecksum} {
		require.Positive(t, injected[m], "%s was exercised", m)
	}
	require.NoError(t, backend.Inject()) // faults stop
	for _, s := range ss {
		require.NoError(t, s.Seal(ctx))
		waitUploaded(t, s)
		check(s)
		require.Equal(t, records, readAll(t, ctx, s))
	}
}

// coldReadUnderFaults drops the warm copy of an evicted segment and reads
// its first record, so the read goes to tier 2 while faults are armed: a
// failed attempt is a typed error, never wrong bytes; retries get through.
func coldReadUnderFaults(t *testing.T, ctx context.Context, c *Coordinator, s *core.Stream) {
	for _, info := range s.SegmentList() {
		ms, _ := s.TierLog().Segment(info.ID)
		if info.Resident || ms.Tier2.Key == "" {
			continue
		}
		if _, err := c.Warm().Remove(types.SegmentKey{Stream: s.ID(), Segment: info.ID}); err != nil {
			continue // pinned or already gone
		}
		// Attempts fail fast while the breaker is open (its cooldown is
		// 50 ms): retry for a bounded time, not a bounded count.
		deadline := time.Now().Add(20 * time.Second)
		for {
			rd, err := s.NewReader(core.AtOrdinal(info.BaseRecord))
			require.NoError(t, err)
			rec, err := rd.NextCtx(ctx)
			rd.Close()
			if err == nil {
				require.Equal(t, string(payload(int(info.BaseRecord))), string(rec.Payload))
				return
			}
			require.True(t, time.Now().Before(deadline), "segment %d never hydrated in 20 s: %v", info.ID, err)
			time.Sleep(5 * time.Millisecond)
		}
	}
}
