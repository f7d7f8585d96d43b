package node

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/aof2/aof2/core"
	"github.com/aof2/aof2/core/budget"
	"github.com/aof2/aof2/core/coordinator"
	"github.com/aof2/aof2/core/segment"
	"github.com/aof2/aof2/core/tier1"
	"github.com/aof2/aof2/host/cluster"
	"github.com/aof2/aof2/internal/testnet"
	"github.com/aof2/aof2/internal/testwait"
	"github.com/aof2/aof2/pluginapi"
	pluginhost "github.com/aof2/aof2/pluginapi/host"
)

// tierMember is one node of an in-process cluster sharing one tier 2.
type tierMember struct {
	id, raftAddr string
	dir          string
	reg          *prometheus.Registry
	faults       *cluster.Faults
	node         *Node
}

// startTierCluster starts three cluster nodes, each with its own data
// directory and fs plugin process, all over one tier-2 root, with a tier
// 0 of four segments that only tier 2 can make room in.
func startTierCluster(t *testing.T, ctx context.Context) []*tierMember {
	t.Helper()
	bin, root := buildFSPlugin(t), t.TempDir()
	var peers []cluster.Peer
	var members []*tierMember
	for i, addr := range testnet.LoopbackAddrs(t, 3) {
		id := fmt.Sprintf("n%d", i+1)
		peers = append(peers, cluster.Peer{ID: id, Addr: addr})
		members = append(members, &tierMember{id: id, raftAddr: addr, dir: t.TempDir(), reg: prometheus.NewRegistry(), faults: cluster.NewFaults()})
	}
	// Default timeouts: shorter ones let a loaded machine (three plugin
	// processes on two cores) depose leaders mid-append, whose outcome
	// the writer then cannot know.
	rc := raft.DefaultConfig()
	for i, m := range members {
		opts := Options{
			DataDir: m.dir,
			Core:    core.Config{SegmentSize: segment.MinCapacity},
			Coordinator: coordinator.Config{ScanInterval: 10 * time.Millisecond,
				Tier0: budget.Config{MaxBytes: 4 * segment.MinCapacity, Policy: budget.PolicyTier2}, Tier1: tier1.Config{MaxBytes: 1}},
			Plugin: &pluginhost.LaunchConfig{Path: bin, StartTimeout: 10 * time.Second, Logger: hclog.NewNullLogger(),
				Configure: pluginapi.ConfigureRequest{Config: map[string]string{"root": root}, StagingDir: m.dir}},
			Cluster:    &cluster.Config{NodeID: m.id, RaftAddr: peers[i].Addr, Peers: peers, Dir: filepath.Join(m.dir, "raft"), Raft: rc, Faults: m.faults},
			Registerer: m.reg,
		}
		n, err := New(opts)
		require.NoError(t, err)
		require.NoError(t, n.Start(ctx))
		m.node = n
		t.Cleanup(func() { _ = n.Close(context.Background()) })
	}
	return members
}

func leaderOf(t *testing.T, members []*tierMember) *tierMember {
	t.Helper()
	var l *tierMember
	testwait.Until(t, testwait.Default, 10*time.Millisecond, func() bool {
		for _, m := range members {
			if c := m.node.Cluster(); c != nil && c.Leading() {
				l = m
				return true
			}
		}
		return false
	}, "a leader")
	return l
}

// metricSum sums every series of a metric family in reg.
func metricSum(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	return metricWith(t, reg, name, nil)
}

// evictionWatch checks, while a test runs, that no node ever lets a
// sealed segment leave tier 0 before its manifest records it in tier 2:
// a follower evicts only what a TierMove entry recorded.
type evictionWatch struct {
	wg   sync.WaitGroup
	stop chan struct{}
	mu   sync.Mutex
	bad  []string // guarded by mu
}

func watchEvictions(members []*tierMember) *evictionWatch {
	w := &evictionWatch{stop: make(chan struct{})}
	w.wg.Add(1)
	go func() {
		defer w.wg.Done()
		tick := time.NewTicker(5 * time.Millisecond)
		defer tick.Stop()
		for {
			for _, m := range members {
				d, err := m.node.View()
				if err != nil {
					continue
				}
				for _, s := range d.Streams {
					for _, g := range s.Segments {
						if g.Sealed && !g.Tier0 && !g.Tier2 {
							w.mu.Lock()
							w.bad = append(w.bad, fmt.Sprintf("%s: segment %d left tier 0 unrecorded in tier 2", m.id, g.ID))
							w.mu.Unlock()
						}
					}
				}
			}
			select {
			case <-w.stop:
				return
			case <-tick.C:
			}
		}
	}()
	return w
}

func (w *evictionWatch) done(t *testing.T) {
	close(w.stop)
	w.wg.Wait()
	w.mu.Lock()
	defer w.mu.Unlock()
	require.Empty(t, w.bad)
}

// waitAllInTier2 waits until every sealed segment of stream id is
// recorded in tier 2 on each member, and most have left its tier 0.
func waitAllInTier2(t *testing.T, members []*tierMember, id core.StreamID, sealed int) {
	t.Helper()
	for _, m := range members {
		var last string
		defer func() {
			if t.Failed() {
				t.Logf("%s: %s", m.id, last)
			}
		}()
		testwait.Until(t, testwait.Default, 20*time.Millisecond, func() bool {
			d, err := m.node.View()
			if err != nil || len(d.Streams) == 0 {
				return false
			}
			last = fmt.Sprintf("%+v", d.Streams[0].Segments)
			in2, in0 := 0, 0
			for _, g := range d.Streams[0].Segments {
				if g.Sealed && g.Tier2 {
					in2++
				}
				if g.Sealed && g.Tier0 {
					in0++
				}
			}
			return in2 >= sealed && in0 < sealed
		}, "%s: %d sealed segments recorded in tier 2, most evicted", m.id, sealed)
	}
}

// appendThrough appends n records through the leader, 50 at a time. A
// batch the leader refuses while its tier 0 is over budget (nothing
// proposed) is sent again once it has room; refusals counts them.
func appendThrough(t *testing.T, ctx context.Context, l *tierMember, id core.StreamID, payload []byte, n int) (refusals int) {
	t.Helper()
	for i := 0; i < n; i += 50 {
		recs := make([]cluster.Record, min(50, n-i))
		for j := range recs {
			recs[j] = cluster.Record{Payload: payload}
		}
		testwait.Until(t, testwait.Default, 10*time.Millisecond, func() bool {
			_, err := l.node.Cluster().Append(ctx, id, recs)
			if errors.Is(err, core.ErrWouldBlock) {
				refusals++
				return false
			}
			require.NoError(t, err)
			return true
		}, "%s takes records %d..%d", l.id, i, i+len(recs))
	}
	return refusals
}

// TestClusterTiersThroughTheLeader: three nodes over one tier 2 with a
// tier 0 of four segments. Only the leader uploads; every node records
// each upload when its TierMove entry applies and evicts under its own
// budget, never before; every node reads everything back (followers
// hydrate the leader's objects). Then the leader goes: the new leader
// uploads what is left, and the survivors agree again.
func TestClusterTiersThroughTheLeader(t *testing.T) {
	if testing.Short() {
		t.Skip("starts three plugin processes")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 4*testwait.Default) // every wait inside is bounded on its own
	defer cancel()
	members := startTierCluster(t, ctx)
	l := leaderOf(t, members)
	w := watchEvictions(members)
	payload := bytes.Repeat([]byte("t"), 4000)
	const stream, first = core.StreamID(4), 3000 // ≈ 12 MiB: a dozen 1 MiB segments through a 4 MiB tier 0
	refused := appendThrough(t, ctx, l, stream, payload, first)
	t.Logf("the leader refused %d batches while its tier 0 was over budget", refused)
	require.NoError(t, l.node.Cluster().Seal(ctx, stream, 0))
	d, err := l.node.View()
	require.NoError(t, err)
	sealed := len(d.Streams[0].Segments)
	require.Greater(t, sealed, 8)
	waitAllInTier2(t, members, stream, sealed)

	for _, m := range members {
		up := metricSum(t, m.reg, "aof_tier2_uploaded_bytes_total")
		if m == l {
			require.Positive(t, up, "the leader uploads")
		} else {
			require.Zero(t, up, "%s, a follower, uploads nothing", m.id)
		}
		// The view shows a move from its manifest record, just before
		// the entry's apply returns and counts it.
		testwait.Until(t, testwait.Default, 5*time.Millisecond, func() bool {
			return metricSum(t, m.reg, "aof_cluster_tier_moves_total") >= float64(sealed)
		}, "%s records each upload", m.id)
		require.Equal(t, float64(sealed), metricSum(t, m.reg, "aof_cluster_tier_moves_total"), "%s records each upload once", m.id)
		require.Zero(t, metricSum(t, m.reg, "aof_cluster_tier_moves_unmatched_total"), m.id)
	}
	want := readStream(t, ctx, l, stream)
	require.Len(t, want, first)
	for _, m := range members {
		require.Equal(t, want, readStream(t, ctx, m, stream), "%s reads every record back, evicted ones from tier 2", m.id)
	}

	// The leader goes; the new one uploads what is sealed after it.
	require.NoError(t, l.node.Close(ctx))
	var rest []*tierMember
	for _, m := range members {
		if m != l {
			rest = append(rest, m)
		}
	}
	l2 := leaderOf(t, rest)
	const second = 1000
	appendThrough(t, ctx, l2, stream, payload, second)
	require.NoError(t, l2.node.Cluster().Seal(ctx, stream, 0))
	d, err = l2.node.View()
	require.NoError(t, err)
	waitAllInTier2(t, rest, stream, len(d.Streams[0].Segments))
	require.Positive(t, metricSum(t, l2.reg, "aof_tier2_uploaded_bytes_total"), "the new leader uploads")
	w.done(t)
	want = readStream(t, ctx, l2, stream)
	require.Len(t, want, first+second)
	for _, m := range rest {
		require.Equal(t, want, readStream(t, ctx, m, stream), "%s", m.id)
	}
}

type readRec struct {
	ID      core.RecordID
	Ext     uint64
	Payload []byte
}

func readStream(t *testing.T, ctx context.Context, m *tierMember, id core.StreamID) []readRec {
	t.Helper()
	s, err := m.node.Store().Lookup(id)
	require.NoError(t, err)
	r, err := s.NewReader(core.AtStart())
	require.NoError(t, err)
	defer r.Close()
	var out []readRec
	for range s.Info().Records {
		rec, err := r.NextCtx(ctx)
		require.NoError(t, err, "%s: record %d", m.id, len(out))
		out = append(out, readRec{ID: rec.ID, Ext: rec.ExtID, Payload: bytes.Clone(rec.Payload)})
	}
	return out
}

// isolate cuts m off from the others (nil: heals every link).
func isolate(members []*tierMember, m *tierMember) {
	for _, o := range members {
		switch {
		case m == nil:
			o.faults.Set(nil, 0)
		case o == m:
			var cut []string
			for _, p := range members {
				if p != m {
					cut = append(cut, p.raftAddr)
				}
			}
			o.faults.Set(cut, 0)
		default:
			o.faults.Set([]string{m.raftAddr}, 0)
		}
	}
}

// metricWith sums the series (counters and gauges) of a metric family
// whose labels include all of want.
func metricWith(t *testing.T, reg *prometheus.Registry, name string, want map[string]string) float64 {
	t.Helper()
	fams, err := reg.Gather()
	require.NoError(t, err)
	sum := 0.0
	for _, f := range fams {
		if f.GetName() != name {
			continue
		}
	series:
		for _, m := range f.GetMetric() {
			have := map[string]string{}
			for _, lp := range m.GetLabel() {
				have[lp.GetName()] = lp.GetValue()
			}
			for k, v := range want {
				if have[k] != v {
					continue series
				}
			}
			sum += m.GetCounter().GetValue() + m.GetGauge().GetValue()
		}
	}
	return sum
}

// sealedCount is how many sealed segments stream id has on m.
func sealedCount(t *testing.T, m *tierMember, id core.StreamID) int {
	t.Helper()
	s, err := m.node.Store().Lookup(id)
	require.NoError(t, err)
	in := s.Info()
	return in.Sealed
}

// TestClusterUploadCutByFailover: the leader is cut off from the others
// right after an append sealed a segment by rollover. It goes on
// uploading it to tier 2 (reachable) but can no longer record it: the
// upload is cut by the failover. The new leader, on the majority side,
// uploads the same segment (its if_absent create meets the same bytes)
// and records it. After the heal every node records every segment once,
// no node reports a data loss, and every record reads back on every node.
// Whether the old leader got its upload in before it stepped down is a
// race, so the scenario runs up to five rounds until it has happened.
func TestClusterUploadCutByFailover(t *testing.T) {
	if testing.Short() {
		t.Skip("starts three plugin processes")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 4*testwait.Default)
	defer cancel()
	members := startTierCluster(t, ctx)
	w := watchEvictions(members)
	payload := bytes.Repeat([]byte("f"), 4000)
	const stream = core.StreamID(6)
	unrecorded := map[string]string{"kind": "upload", "result": "failed"}
	written, cut := 0, false
	var l *tierMember
	for round := 0; round < 5 && !cut; round++ {
		l = leaderOf(t, members)
		before := 0
		if round > 0 {
			before = sealedCount(t, l, stream)
		}
		for round == 0 && written < 2000 || sealedCount(t, l, stream) == before {
			appendThrough(t, ctx, l, stream, payload, 50)
			written += 50
		}
		failed := metricWith(t, l.reg, "aof_coordinator_jobs_total", unrecorded)
		isolate(members, l)
		deadline := time.Now().Add(5 * time.Second)
		for !cut && time.Now().Before(deadline) {
			cut = metricWith(t, l.reg, "aof_coordinator_jobs_total", unrecorded) > failed
			time.Sleep(5 * time.Millisecond)
		}
		t.Logf("round %d: the cut-off leader %s uploaded a segment it could not record: %v", round, l.id, cut)
		var rest []*tierMember
		for _, m := range members {
			if m != l {
				rest = append(rest, m)
			}
		}
		leaderOf(t, rest)
		isolate(members, nil)
	}
	require.True(t, cut, "in five rounds, the cut-off leader never uploaded a segment it could not record")
	l2 := leaderOf(t, members)
	require.NoError(t, l2.node.Cluster().Seal(ctx, stream, 0))
	d, err := l2.node.View()
	require.NoError(t, err)
	waitAllInTier2(t, members, stream, len(d.Streams[0].Segments))
	w.done(t)
	for _, m := range members {
		require.Zero(t, metricSum(t, m.reg, "aof_tier2_data_loss_total"), "%s: the second upload met the same bytes", m.id)
		require.Zero(t, metricSum(t, m.reg, "aof_cluster_tier_moves_unmatched_total"), m.id)
	}
	want := readStream(t, ctx, l2, stream)
	require.Len(t, want, written)
	for _, m := range members {
		require.Equal(t, want, readStream(t, ctx, m, stream), "%s", m.id)
	}
}
