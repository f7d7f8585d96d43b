package coordinator

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/stretchr/testify/require"

	"github.com/aof2/aof2/conformance/fake"
	"github.com/aof2/aof2/core"
	"github.com/aof2/aof2/core/budget"
	"github.com/aof2/aof2/core/segment"
	"github.com/aof2/aof2/core/tier2"
	"github.com/aof2/aof2/core/types"
	"github.com/aof2/aof2/internal/testwait"
	"github.com/aof2/aof2/pluginapi"
)

// dropsFirst is a backend that notes every segment delete that comes
// before the log applied that segment's Drop.
type dropsFirst struct {
	*fake.Backend
	failNext atomic.Bool // the next delete fails (a transient error)
	mu       sync.Mutex
	applied  map[string]bool // guarded by mu: keys whose Drop the "log" applied
	deletes  int             // guarded by mu
	early    []string        // guarded by mu
	failed   []string        // guarded by mu: keys whose delete failed
}

func (b *dropsFirst) Delete(ctx context.Context, key string) error {
	b.mu.Lock()
	b.deletes++
	if !b.applied[key] {
		b.early = append(b.early, key)
	}
	if b.failNext.CompareAndSwap(true, false) {
		b.failed = append(b.failed, key)
		b.mu.Unlock()
		return fmt.Errorf("injected: %w", pluginapi.ErrPermission) // not retried by the tier-2 client
	}
	b.mu.Unlock()
	return b.Backend.Delete(ctx, key)
}

// TestClusterRetention: a cluster leader's retention drops each oldest
// segment through the log (every node's AdoptDrop; here this node's) and
// deletes its object only after the Drop applied. A delete that fails is
// made by the stream's sweep, run again. A leader deposed right
// after a Drop leaves its object; the sweep of the next term it leads
// deletes it (once per term: the term is the sweep's key, so leading
// again before a scan noticed the loss still sweeps). Readers start at
// the new head.
func TestClusterRetention(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	b := &dropsFirst{Backend: fake.New(fake.Options{}), applied: map[string]bool{}}
	remote, err := tier2.New(b, tier2.Config{Logger: hclog.NewNullLogger()})
	require.NoError(t, err)
	var c *Coordinator
	var leading, deposeAfterDrop atomic.Bool
	var term atomic.Uint64
	leading.Store(true)
	term.Store(1)
	cl := &Cluster{
		Leading:  leading.Load,
		LeadTerm: func() (uint64, bool) { return term.Load(), leading.Load() },
		RecordUpload: func(ctx context.Context, k types.SegmentKey, key, etag string) error {
			return c.AdoptUpload(ctx, k, key, etag)
		},
		RecordDrop: func(ctx context.Context, k types.SegmentKey, key string) error {
			b.mu.Lock()
			b.applied[key] = true // committed; now applied on every node
			b.mu.Unlock()
			if err := c.AdoptDrop(ctx, k); err != nil {
				return err
			}
			if deposeAfterDrop.Load() {
				leading.Store(false)
			}
			return nil
		},
	}
	r := startRig(t, Config{DataDir: t.TempDir(), Tier2: remote, ScanInterval: 10 * time.Millisecond, Cluster: cl,
		Tier0:     budget.Config{MaxBytes: 3 * segSize, Policy: budget.PolicyTier2},
		Retention: Retention{MaxBytes: 3 * segSize}}, core.Config{TailReplayed: true})
	c = r.c
	defer r.close(t)
	s, err := r.st.Stream(2)
	require.NoError(t, err)
	appendAll := func(from, n int) {
		for i := from; i < from+n; i++ {
			_, err := s.AppendCtx(ctx, payload(i), core.AppendOptions{Timestamp: int64(1e18 + i), ExtID: uint64(i + 1)})
			require.NoError(t, err)
		}
		require.NoError(t, s.FlushAll(ctx))
		require.NoError(t, s.Seal(ctx))
	}
	objectGone := func(id types.SegmentID) bool {
		_, err := remote.Stat(ctx, remote.Layout().SegmentObjectKey(sk(2, uint64(id))))
		return err != nil
	}
	settled := func() types.SegmentID {
		var head types.SegmentID
		testwait.Until(t, testwait.Default, 10*time.Millisecond, func() bool {
			var total uint64
			segs := s.SegmentList()
			for _, info := range segs {
				if info.Footer != nil {
					total += info.Footer.DurableBytes
				}
			}
			head = segs[0].ID
			return total <= 3*segSize
		}, "retention to bring the stream under its cap")
		return head
	}

	appendAll(0, 5000)
	head := settled()
	require.Greater(t, uint64(head), uint64(1))
	for id := types.SegmentID(1); id < head; id++ {
		testwait.Until(t, testwait.Default, 10*time.Millisecond, func() bool {
			_, known := s.TierLog().Segment(id)
			return objectGone(id) && !known
		}, "segment %d: object deleted and retired from the manifest", id)
	}
	_, err = s.NewReader(core.AtOrdinal(0))
	require.ErrorIs(t, err, core.ErrNotFound)

	// Deposed right after the next Drop: the segment is dropped here, its
	// object stays.
	deposeAfterDrop.Store(true)
	appendAll(5000, 2000)
	testwait.Until(t, testwait.Default, 10*time.Millisecond, func() bool { return !leading.Load() }, "a Drop that deposes the leader")
	cut := s.SegmentList()[0].ID - 1
	require.False(t, objectGone(cut), "a deposed leader deletes nothing")

	// Leading again, in a later term: that term's sweep deletes it.
	deposeAfterDrop.Store(false)
	term.Add(1)
	leading.Store(true)
	testwait.Until(t, testwait.Default, 10*time.Millisecond, func() bool { return objectGone(cut) }, "the sweep to delete segment %d's object", cut)

	// A delete that fails (tier 2 unavailable a moment): nothing keeps
	// the dropped segment's object in mind but the sweep, which runs
	// again in the same term and deletes it.
	testwait.Until(t, testwait.Default, 10*time.Millisecond, func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		return c.mu.swept[2] == term.Load()
	}, "the term's sweep done")
	b.failNext.Store(true)
	appendAll(7000, 2000)
	var failedKey string
	testwait.Until(t, testwait.Default, 10*time.Millisecond, func() bool {
		b.mu.Lock()
		defer b.mu.Unlock()
		if len(b.failed) > 0 {
			failedKey = b.failed[0]
		}
		return failedKey != ""
	}, "a failed delete")
	testwait.Until(t, testwait.Default, 10*time.Millisecond, func() bool {
		_, err := remote.Stat(ctx, failedKey)
		return err != nil
	}, "the same term's sweep to delete %s", failedKey)

	b.mu.Lock()
	defer b.mu.Unlock()
	require.Positive(t, b.deletes)
	require.Empty(t, b.early, "every delete came after its segment's Drop applied")
}

// TestHydrationOfADroppedSegment: a member that has not applied the Drop
// of a segment whose object the leader already deleted hydrates it and
// finds no object. It catches up first (here: the Drop applies then, with
// a reader on the segment, so only its delete is queued), and the read
// gets the retention error (types.ErrNotFound), not a missing object. An
// object missing with no Drop behind it stays the tier-2 error; a member
// that cannot catch up answers the catch-up's error, never the missing
// object's (nothing is known lost until it has caught up).
func TestHydrationOfADroppedSegment(t *testing.T) {
	errCutOff := errors.New("no contact with a leader")
	for _, tc := range []struct {
		name  string
		after func(c *Coordinator, ctx context.Context, k types.SegmentKey) error // what catching up finds
		check func(t *testing.T, err error)
	}{
		{"dropped", func(c *Coordinator, ctx context.Context, k types.SegmentKey) error { return c.AdoptDrop(ctx, k) },
			func(t *testing.T, err error) {
				require.ErrorIs(t, err, types.ErrNotFound)
				require.ErrorContains(t, err, "dropped by retention")
				require.NotErrorIs(t, err, pluginapi.ErrNotFound)
			}},
		{"missing", func(*Coordinator, context.Context, types.SegmentKey) error { return nil },
			func(t *testing.T, err error) {
				require.ErrorIs(t, err, pluginapi.ErrNotFound)
				require.NotContains(t, err.Error(), "dropped by retention")
			}},
		{"missing, on a follower", func(*Coordinator, context.Context, types.SegmentKey) error { return nil },
			func(t *testing.T, err error) {
				require.ErrorIs(t, err, ErrNotCaughtUp, "only the leader judges a loss")
				require.NotErrorIs(t, err, pluginapi.ErrNotFound)
			}},
		{"cut off", func(*Coordinator, context.Context, types.SegmentKey) error { return errCutOff },
			func(t *testing.T, err error) {
				require.ErrorIs(t, err, errCutOff)
				require.NotErrorIs(t, err, pluginapi.ErrNotFound)
			}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			b := fake.New(fake.Options{})
			remote, err := tier2.New(b, tier2.Config{Logger: hclog.NewNullLogger()})
			require.NoError(t, err)
			var c *Coordinator
			var caughtUp atomic.Int64
			var leading atomic.Bool
			leading.Store(true)
			first := types.SegmentKey{Stream: 4, Segment: 1}
			cl := &Cluster{
				Leading: leading.Load,
				RecordUpload: func(ctx context.Context, k types.SegmentKey, key, etag string) error {
					return c.AdoptUpload(ctx, k, key, etag)
				},
				CatchUp: func(ctx context.Context) error {
					caughtUp.Add(1)
					return tc.after(c, ctx, first)
				},
			}
			s := startUploaded(t, ctx, remote, cl, &c, 4)
			testwait.Until(t, testwait.Default, 10*time.Millisecond, func() bool {
				info, _ := s.Segment(first.Segment)
				return !info.Resident
			}, "segment 1 evicted")
			if strings.HasSuffix(tc.name, "on a follower") {
				leading.Store(false)
			}
			_, err = c.Warm().Remove(first)
			require.NoError(t, err)
			require.NoError(t, b.Delete(ctx, remote.Layout().SegmentObjectKey(first)), "the leader's delete")

			if tc.name != "dropped" {
				// A point read by id, ranged from tier 2, judges the
				// same way (dropping here would leave the reader below
				// nothing to read).
				_, err = s.ReadAt(ctx, core.MakeRecordID(first.Segment, segment.HeaderSize))
				require.Error(t, err)
				require.Positive(t, caughtUp.Load(), "caught up before answering")
				tc.check(t, err)
				caughtUp.Store(0)
			}
			rd, err := s.NewReader(core.AtOrdinal(0))
			require.NoError(t, err)
			defer rd.Close()
			_, err = rd.NextCtx(ctx)
			require.Error(t, err)
			require.Positive(t, caughtUp.Load(), "caught up before answering")
			tc.check(t, err)
		})
	}
}

// startUploaded starts a cluster member's coordinator (cl) over remote,
// set in *c before any work (cl's functions use it), with stream id
// holding a few sealed segments, all uploaded.
func startUploaded(t *testing.T, ctx context.Context, remote *tier2.Store, cl *Cluster, c **Coordinator, id types.StreamID) *core.Stream {
	t.Helper()
	r := startRig(t, Config{DataDir: t.TempDir(), Tier2: remote, ScanInterval: 10 * time.Millisecond, Cluster: cl,
		Tier0: budget.Config{MaxBytes: 3 * segSize, Policy: budget.PolicyTier2}}, core.Config{TailReplayed: true})
	*c = r.c
	t.Cleanup(func() { r.close(t) })
	s, err := r.st.Stream(id)
	require.NoError(t, err)
	for i := range 3000 {
		_, err := s.AppendCtx(ctx, payload(i), core.AppendOptions{Timestamp: int64(1e18 + i), ExtID: uint64(i + 1)})
		require.NoError(t, err)
	}
	require.NoError(t, s.FlushAll(ctx))
	require.NoError(t, s.Seal(ctx))
	waitUploaded(t, s)
	return s
}

// TestAdoptDropOfABusySegment: applying a Drop never waits nor fails for
// a segment busy here — its key lock held (a hydration, a repair), or its
// warm copy open (the scrubber) — since the apply loop must go on. The
// delete is queued, and the scan finishes it once the segment is free.
func TestAdoptDropOfABusySegment(t *testing.T) {
	for _, busy := range []string{"key lock", "warm copy open"} {
		t.Run(busy, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			remote, err := tier2.New(fake.New(fake.Options{}), tier2.Config{Logger: hclog.NewNullLogger()})
			require.NoError(t, err)
			var c *Coordinator
			var leading atomic.Bool // leads to upload, then follows: its scan only finishes drops
			leading.Store(true)
			cl := &Cluster{
				Leading: leading.Load,
				RecordUpload: func(ctx context.Context, k types.SegmentKey, key, etag string) error {
					return c.AdoptUpload(ctx, k, key, etag)
				},
			}
			s := startUploaded(t, ctx, remote, cl, &c, 4)
			leading.Store(false)
			k := types.SegmentKey{Stream: 4, Segment: s.SegmentList()[0].ID}
			var release func()
			if busy == "key lock" {
				release = c.lockKey(k)
			} else {
				require.True(t, c.Warm().Contains(k))
				a, err := c.Warm().OpenArtifact(k)
				require.NoError(t, err)
				release = func() { _ = a.Close() }
			}
			done := make(chan error, 1)
			go func() { done <- c.AdoptDrop(ctx, k) }()
			select {
			case err := <-done:
				require.NoError(t, err)
			case <-time.After(10 * time.Second):
				release()
				t.Fatal("applying a Drop waited for a busy segment")
			}
			ms, known := s.TierLog().Segment(k.Segment)
			require.True(t, known)
			require.NotEmpty(t, ms.Tier2.PendingDeletes, "the decision is recorded")
			release()
			testwait.Until(t, testwait.Default, 10*time.Millisecond, func() bool {
				_, known := s.TierLog().Segment(k.Segment)
				_, present := s.Segment(k.Segment)
				return !known && !present && !c.Warm().Contains(k)
			}, "the scan finishes the drop once the segment is free")
		})
	}
}

// TestHydrationRacingADrop: a hydration waiting for a segment's key lock
// while the segment is dropped (a Drop applied, or the scan finishing
// one) must not bring it back when it gets the lock: it answers the
// retention error, and neither the manifest nor tier 0 holds the segment
// again (before, the manifest entry and the tier-0 file came back, and
// the segment reappeared after a restart).
func TestHydrationRacingADrop(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	remote, err := tier2.New(fake.New(fake.Options{}), tier2.Config{Logger: hclog.NewNullLogger()})
	require.NoError(t, err)
	var c *Coordinator
	var leading atomic.Bool
	leading.Store(true)
	cl := &Cluster{Leading: leading.Load, RecordUpload: func(ctx context.Context, k types.SegmentKey, key, etag string) error {
		return c.AdoptUpload(ctx, k, key, etag)
	}}
	s := startUploaded(t, ctx, remote, cl, &c, 4)
	leading.Store(false)
	k := types.SegmentKey{Stream: 4, Segment: s.SegmentList()[0].ID}
	testwait.Until(t, testwait.Default, 10*time.Millisecond, func() bool {
		info, _ := s.Segment(k.Segment)
		return !info.Resident
	}, "segment %d evicted", k.Segment)
	info, _ := s.Segment(k.Segment)

	unlock := c.lockKey(k) // the drop holds the segment
	hydrated := make(chan error, 1)
	go func() { hydrated <- s.Hydrate(ctx, k.Segment) }()
	time.Sleep(100 * time.Millisecond) // the hydration waits for the lock (or, later, finds the segment gone)
	key, err := c.queueDelete(ctx, s, k.Segment)
	require.NoError(t, err)
	require.NoError(t, c.dropQueued(ctx, s, k.Segment, key, nil))
	unlock()
	select {
	case err := <-hydrated:
		require.ErrorIs(t, err, types.ErrNotFound)
	case <-ctx.Done():
		t.Fatal("the hydration did not return")
	}
	_, present := s.Segment(k.Segment)
	require.False(t, present)
	_, known := s.TierLog().Segment(k.Segment)
	require.False(t, known, "the manifest does not know the dropped segment again")
	_, err = os.Stat(info.Path)
	require.True(t, os.IsNotExist(err), "no tier-0 file for the dropped segment")
}
