package coordinator

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"

	"github.com/aof2/aof2/conformance/fake"
	"github.com/aof2/aof2/core"
	"github.com/aof2/aof2/core/budget"
	"github.com/aof2/aof2/core/tier1"
	"github.com/aof2/aof2/core/tier2"
	"github.com/aof2/aof2/core/types"
	"github.com/aof2/aof2/internal/testwait"
)

// TestClusterAdmissionNeverWaitsOnTheLog: a cluster member's uploads
// count only once the log records them, and until then its tier 0 cannot
// make room. Here the "log" holds every move until released. Appends
// (what applying entries does) still go on over the budget — waiting
// would stall the apply loop that must later apply the moves — while the
// node refuses new client appends (Tier0Admission). Once the moves apply,
// the segments are evicted and the node takes appends again.
func TestClusterAdmissionNeverWaitsOnTheLog(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), testwait.Default)
	defer cancel()
	remote, err := tier2.New(fake.New(fake.Options{}), tier2.Config{Logger: hclog.NewNullLogger()})
	require.NoError(t, err)
	release := make(chan struct{})
	var c *Coordinator
	cl := &Cluster{
		Leading: func() bool { return true },
		RecordUpload: func(ctx context.Context, k types.SegmentKey, key, etag string) error {
			select {
			case <-release:
			case <-ctx.Done():
				return ctx.Err()
			}
			return c.AdoptUpload(ctx, k, key, etag)
		},
	}
	r := startRig(t, Config{DataDir: t.TempDir(), Tier2: remote, ScanInterval: 10 * time.Millisecond, Cluster: cl,
		Tier0: budget.Config{MaxBytes: 4 * segSize, Policy: budget.PolicyTier2}}, core.Config{})
	c = r.c
	defer r.close(t)
	s, err := r.st.Stream(1)
	require.NoError(t, err)
	require.NoError(t, c.Tier0Admission(1))

	// About eight segments through a tier 0 of four, none recorded.
	for i := range 3200 {
		_, err := s.AppendCtx(ctx, payload(i), core.AppendOptions{})
		require.NoError(t, err, "record %d: applying never waits for tier-0 room", i)
	}
	require.NoError(t, s.Seal(ctx))
	require.Positive(t, testutil.ToFloat64(c.m.overBudget))
	err = c.Tier0Admission(1)
	require.ErrorIs(t, err, types.ErrWouldBlock, "over budget: new appends are refused")
	require.ErrorIs(t, err, budget.ErrBudgetExhausted)
	for _, in := range s.SegmentList() {
		ms, _ := s.TierLog().Segment(in.ID)
		require.Empty(t, ms.Tier2.Key, "segment %d: nothing counts as in tier 2 before the log records it", in.ID)
		require.True(t, in.Resident, "segment %d stays in tier 0 until then", in.ID)
	}

	close(release)
	testwait.Until(t, testwait.Default, 10*time.Millisecond, func() bool {
		for _, in := range s.SegmentList() {
			if ms, _ := s.TierLog().Segment(in.ID); ms.Tier2.Key == "" {
				return false
			}
		}
		return c.Tier0Admission(1) == nil
	}, "every segment recorded, tier 0 back under its budget")
	_, err = s.AppendCtx(ctx, payload(0), core.AppendOptions{})
	require.NoError(t, err)
}

// clusterRig is a cluster member's coordinator over backend b, leading,
// whose "log" records each upload at once; level is its compression.
func clusterRig(t *testing.T, b *fake.Backend, level tier1.Level) *rig {
	t.Helper()
	remote, err := tier2.New(b, tier2.Config{Logger: hclog.NewNullLogger()})
	require.NoError(t, err)
	var c *Coordinator
	cl := &Cluster{
		Leading: func() bool { return true },
		RecordUpload: func(ctx context.Context, k types.SegmentKey, key, etag string) error {
			return c.AdoptUpload(ctx, k, key, etag)
		},
	}
	r := startRig(t, Config{DataDir: t.TempDir(), Tier2: remote, ScanInterval: 10 * time.Millisecond, Cluster: cl,
		Tier1: tier1.Config{Options: tier1.Options{Level: level}}}, core.Config{TailReplayed: true})
	c = r.c
	return r
}

// writeSame appends n records with fixed timestamps and ext_ids (as a
// Raft log gives every node) and seals: the segments come out the same
// on every node; differ changes one payload.
func writeSame(t *testing.T, ctx context.Context, r *rig, n int, differ bool) *core.Stream {
	t.Helper()
	s, err := r.st.Stream(1)
	require.NoError(t, err)
	for i := range n {
		p := payload(i)
		if differ && i == n/2 {
			p = append([]byte("other "), p...)
		}
		_, err := s.AppendCtx(ctx, p, core.AppendOptions{Timestamp: int64(1e18 + i), ExtID: uint64(i + 1)})
		require.NoError(t, err)
	}
	require.NoError(t, s.Seal(ctx))
	return s
}

// Another leader stored the segment compressed otherwise (another
// tier1 level): the next leader's upload meets other bytes under the key,
// finds the object's footer is its segment's, and records that object as
// it is — no data loss, nothing overwritten. An object of other records
// under the key is a data loss.
func TestClusterAdoptsAnotherLeadersCompression(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), testwait.Default)
	defer cancel()
	b := fake.New(fake.Options{})
	first := clusterRig(t, b, tier1.LevelFastest)
	defer first.close(t)
	waitUploaded(t, writeSame(t, ctx, first, 300, false))
	ms, _ := mustStream(t, first, 1).TierLog().Segment(1)
	require.NotEmpty(t, ms.Tier2.ETag)

	second := clusterRig(t, b, tier1.LevelBest)
	defer second.close(t)
	s := writeSame(t, ctx, second, 300, false)
	waitUploaded(t, s)
	k := types.SegmentKey{Stream: 1, Segment: 1}
	a, err := os.ReadFile(first.c.warm.Path(k))
	require.NoError(t, err)
	b2, err := os.ReadFile(second.c.warm.Path(k))
	require.NoError(t, err)
	require.NotEqual(t, a, b2, "the two leaders' artifacts differ")
	got, _ := s.TierLog().Segment(1)
	require.Equal(t, ms.Tier2, got.Tier2, "the first leader's object, recorded as it is")
	require.Zero(t, second.remote.Stats().DataLoss)

	third := clusterRig(t, b, tier1.LevelBest)
	defer third.close(t)
	writeSame(t, ctx, third, 300, true)
	testwait.Until(t, testwait.Default, 10*time.Millisecond, func() bool { return third.remote.Stats().DataLoss > 0 },
		"other records under the key are a data loss")
	got, _ = mustStream(t, third, 1).TierLog().Segment(1)
	require.Empty(t, got.Tier2.Key, "never recorded")
}

func mustStream(t *testing.T, r *rig, id types.StreamID) *core.Stream {
	t.Helper()
	s, err := r.st.Lookup(id)
	require.NoError(t, err)
	return s
}

// A cluster's leader claims the prefix for the cluster: a single writer
// pointed at it is refused, and a cluster pointed at a single writer's
// prefix refuses to start.
func TestClusterClaimsItsPrefix(t *testing.T) {
	b := fake.New(fake.Options{})
	cl := clusterRig(t, b, tier1.LevelFastest)
	rec, _, err := cl.remote.ReadWriter(context.Background())
	require.NoError(t, err)
	require.Equal(t, ClusterWriter, rec.NodeID)
	cl.close(t)

	remote, err := tier2.New(b, tier2.Config{Logger: hclog.NewNullLogger()})
	require.NoError(t, err)
	defer remote.Close(context.Background())
	single, err := New(Config{DataDir: t.TempDir(), Tier2: remote})
	require.NoError(t, err)
	defer single.Close()
	dir := single.cfg.DataDir
	st, err := core.Open(dir, core.Config{SegmentSize: segSize, Tiering: single})
	require.NoError(t, err)
	defer st.Close()
	var ce *ClaimedError
	require.ErrorAs(t, single.Start(context.Background(), st), &ce, "a single writer on a cluster's prefix")
	require.Equal(t, ClusterWriter, ce.Holder.NodeID)
	require.NotContains(t, ce.Error(), "aof2-host takeover", "a cluster's prefix is not taken over")
	// Nor does a takeover claim it: the cluster's leader would go on
	// writing beside the node that took over.
	_, err = Takeover(context.Background(), nil, dir, remote)
	require.ErrorAs(t, err, &ce)
	require.ErrorContains(t, err, "the prefix is a cluster's")
	after, _, err := remote.ReadWriter(context.Background())
	require.NoError(t, err)
	require.Equal(t, rec, after, "the writer record is the cluster's still")

	other := fake.New(fake.Options{})
	w := openRig(t, t.TempDir(), other, 4) // a single writer claims it
	w.close(t)
	remote2, err := tier2.New(other, tier2.Config{Logger: hclog.NewNullLogger()})
	require.NoError(t, err)
	defer remote2.Close(context.Background())
	var c *Coordinator
	member, err := New(Config{DataDir: t.TempDir(), Tier2: remote2, Cluster: &Cluster{
		Leading: func() bool { return true },
		RecordUpload: func(ctx context.Context, k types.SegmentKey, key, etag string) error {
			return c.AdoptUpload(ctx, k, key, etag)
		},
	}})
	require.NoError(t, err)
	c = member
	defer member.Close()
	st2, err := core.Open(member.cfg.DataDir, core.Config{SegmentSize: segSize, Tiering: member, TailReplayed: true})
	require.NoError(t, err)
	defer st2.Close()
	err = member.Start(context.Background(), st2)
	require.ErrorIs(t, err, ErrPrefixClaimed, "a cluster on a single writer's prefix")
	require.ErrorContains(t, err, "a cluster needs a tier-2 prefix of its own")
}
