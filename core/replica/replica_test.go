package replica_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/aof2/aof2/conformance/fake"
	"github.com/aof2/aof2/core"
	"github.com/aof2/aof2/core/budget"
	"github.com/aof2/aof2/core/coordinator"
	"github.com/aof2/aof2/core/manifest"
	"github.com/aof2/aof2/core/replica"
	"github.com/aof2/aof2/core/restore"
	"github.com/aof2/aof2/core/segment"
	"github.com/aof2/aof2/core/tier2"
	"github.com/aof2/aof2/core/types"
	"github.com/aof2/aof2/internal/testwait"
	"github.com/aof2/aof2/pluginapi"
)

const segSize = segment.MinCapacity

var manifestOpts = manifest.Options{ChunkCapacity: manifest.MinChunkCapacity, SnapshotEveryChunks: 3, RotationPeriod: 5 * time.Millisecond}

// node is a store with its coordinator over a shared bucket: the writer,
// or (with f) a replica.
type node struct {
	remote *tier2.Store
	c      *coordinator.Coordinator
	st     *core.Store
	f      *replica.Follower
	reg    *prometheus.Registry
	stop   func()
}

func newRemote(t testing.TB, b pluginapi.Backend) *tier2.Store {
	t.Helper()
	remote, err := tier2.New(b, tier2.Config{Logger: hclog.NewNullLogger()})
	require.NoError(t, err)
	return remote
}

// listInterval is the replicas' ListInterval; a test may change it
// around its start calls (the tests do not run in parallel).
var listInterval = 50 * time.Millisecond

// writerRetention is the writer's retention; a test may set it around its
// start calls, as listInterval.
var writerRetention coordinator.Retention

func start(t testing.TB, dir string, b pluginapi.Backend, asReplica bool) *node {
	t.Helper()
	n := &node{remote: newRemote(t, b), reg: prometheus.NewRegistry()}
	var err error
	var retention coordinator.Retention
	if !asReplica {
		retention = writerRetention
	}
	n.c, err = coordinator.New(coordinator.Config{DataDir: dir, Tier2: n.remote, ScanInterval: 10 * time.Millisecond, Replica: asReplica, Retention: retention,
		Tier0: budget.Config{MaxBytes: 4 * segSize, Policy: budget.PolicyTier2}, HydrateRetries: 20, HydrateRetryDelay: time.Millisecond})
	require.NoError(t, err)
	cfg := core.Config{Tiering: n.c, SegmentSize: segSize, InitialSegmentSize: segSize, Manifest: manifestOpts}
	w := &replica.Writer{}
	if asReplica {
		cfg.Follower = w.Refusal
	}
	n.st, err = core.Open(dir, cfg)
	require.NoError(t, err)
	require.NoError(t, n.c.Start(context.Background(), n.st))
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	if asReplica {
		n.f, err = replica.New(replica.Config{Store: n.st, Remote: n.remote, Writer: w, Interval: 5 * time.Millisecond, SegmentSize: segSize, Retire: n.c.RetireFollowed,
			ListInterval: listInterval, Registerer: n.reg})
		require.NoError(t, err)
		wg.Add(1)
		go func() { defer wg.Done(); n.f.Run(ctx) }()
	}
	var once sync.Once
	n.stop = func() {
		once.Do(func() {
			cancel()
			wg.Wait()
			if n.f != nil {
				n.f.Close()
			}
			assert.NoError(t, n.st.Close())
			assert.NoError(t, n.c.Close())
			assert.NoError(t, n.remote.Close(context.Background()))
		})
	}
	t.Cleanup(n.stop)
	return n
}

type written struct {
	stream  types.StreamID
	id      core.RecordID
	payload []byte
}

func payload(s types.StreamID, i int) []byte {
	return fmt.Appendf(nil, "stream %d record %06d %s", s, i, make([]byte, 900+i%700))
}

// uploaded reports whether every sealed segment of s is in tier 2.
func uploaded(s *core.Stream) bool {
	for _, info := range s.SegmentList() {
		if ms, _ := s.TierLog().Segment(info.ID); info.Footer != nil && !info.Lost && ms.Tier2.Key == "" {
			return false
		}
	}
	return true
}

// write appends n records to each stream, sealing every 40, and returns
// them; the last seal leaves nothing in an active segment.
func write(ctx context.Context, t *testing.T, w *node, n int, streams ...types.StreamID) []written {
	var out []written
	for i := range n {
		for _, sid := range streams {
			s, err := w.st.Stream(sid)
			require.NoError(t, err)
			p := payload(sid, i)
			id, err := s.AppendDurable(ctx, p, core.AppendOptions{})
			require.NoError(t, err)
			out = append(out, written{sid, id, p})
			if i%40 == 39 || i == n-1 {
				require.NoError(t, s.Seal(ctx))
			}
		}
	}
	return out
}

// readBack reads every record from r by id, retrying failed reads (tier 2
// may be failing); a read that succeeds must return the writer's bytes.
func readBack(ctx context.Context, t *testing.T, r *node, ws []written) {
	for _, w := range ws {
		s, err := r.st.Lookup(w.stream)
		require.NoError(t, err)
		var rec core.Record
		var last error
		testwait.Until(t, testwait.Default, time.Millisecond, func() bool {
			rec, last = s.ReadAt(ctx, w.id)
			return last == nil
		}, "stream %d record %s: %v", w.stream, w.id, lazyErr{&last})
		require.Equal(t, w.payload, rec.Payload, "stream %d record %s", w.stream, w.id)
	}
}

// lazyErr prints the error it points at when formatted, so that a wait's
// failure message shows the last error, not the one when the wait began.
type lazyErr struct{ err *error }

func (l lazyErr) String() string { return fmt.Sprint(*l.err) }

func caughtUp(r *node, w *node, streams ...types.StreamID) bool {
	for _, sid := range streams {
		ws, err := w.st.Lookup(sid)
		if err != nil || !uploaded(ws) {
			return false
		}
		rs, err := r.st.Lookup(sid)
		if err != nil {
			return false
		}
		wl, rl := ws.SegmentList(), rs.SegmentList()
		if len(wl) == 0 || len(rl) == 0 || wl[len(wl)-1].ID != rl[len(rl)-1].ID {
			return false
		}
	}
	return true
}

// TestReplicaFollowsTheWriter: a replica started before the writer writes
// follows both streams while records arrive, serves every record by id
// byte-exact, tails them in order as they arrive, refuses appends with the
// writer's name, and reports no lag once caught up.
func TestReplicaFollowsTheWriter(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*testwait.Default)
	defer cancel()
	b := fake.New(fake.Options{})
	w := start(t, t.TempDir(), b, false)
	// The writer's first stream exists before the replica starts; the
	// second is created while it runs.
	first := write(ctx, t, w, 60, 1)
	r := start(t, t.TempDir(), b, true)
	tailed := make(chan []core.Record, 1)
	go func() {
		var got []core.Record
		defer func() { tailed <- got }()
		var s *core.Stream
		for s == nil && ctx.Err() == nil {
			s, _ = r.st.Lookup(1)
			time.Sleep(time.Millisecond)
		}
		if s == nil {
			return // ctx ended first: the test reports the short tail
		}
		tl, err := s.Tail(core.AtStart())
		if err != nil {
			return
		}
		defer tl.Close()
		for len(got) < 300 {
			rec, err := tl.Next(ctx)
			if err != nil {
				return
			}
			rec.Payload = append([]byte(nil), rec.Payload...) // it aliases the segment's mapping
			got = append(got, rec)
		}
	}()
	rest := write(ctx, t, w, 240, 1, 2)
	all := append(first, rest...)
	testwait.Until(t, testwait.Default, 5*time.Millisecond, func() bool { return caughtUp(r, w, 1, 2) }, "the replica catches up")
	readBack(ctx, t, r, all)

	got := testwait.Recv(t, tailed, testwait.Default, "the replica's tail")
	var want []written
	for _, x := range all {
		if x.stream == 1 {
			want = append(want, x)
		}
	}
	require.Len(t, got, len(want))
	for i, rec := range got {
		require.Equal(t, want[i].id, rec.ID)
		require.Equal(t, want[i].payload, rec.Payload)
	}

	s, err := r.st.Lookup(1)
	require.NoError(t, err)
	_, err = s.AppendDurable(ctx, []byte("x"), core.AppendOptions{})
	require.ErrorIs(t, err, core.ErrReplica)
	var re *types.ReplicaError
	require.ErrorAs(t, err, &re)
	require.NotZero(t, re.Epoch, "the error names the writer's claim: %v", err)
	require.NoError(t, r.f.Poll(ctx))
	require.Zero(t, gauge(t, r.reg, "aof_replica_lag_records", "1"))
	// The replica's own manifest is never uploaded: its sealed chunks are
	// released to local retention all the same, so it stays bounded.
	testwait.Until(t, testwait.Default, 5*time.Millisecond, func() bool {
		for _, ch := range s.TierLog().SealedChunks() {
			if !ch.Uploaded {
				return false
			}
		}
		return true
	}, "the replica's sealed manifest chunks released to local retention")
	require.Zero(t, gauge(t, r.reg, "aof_replica_stalled", "2"))

	r.stop()
	// The replica restarts from its own directory and goes on following.
	more := write(ctx, t, w, 80, 1)
	r2 := start(t, r.st.Dir(), b, true)
	testwait.Until(t, testwait.Default, 5*time.Millisecond, func() bool { return caughtUp(r2, w, 1, 2) }, "the restarted replica catches up")
	readBack(ctx, t, r2, more)
}

// gaugeValue reads the gauge name{stream_id=id} from reg; ok is false
// while it has no such series.
func gaugeValue(reg *prometheus.Registry, name, id string) (v float64, ok bool) {
	mfs, _ := reg.Gather()
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "stream_id" && l.GetValue() == id {
					return m.GetGauge().GetValue(), true
				}
			}
		}
	}
	return 0, false
}

// gauge is gaugeValue for a series that must exist.
func gauge(t *testing.T, reg *prometheus.Registry, name, id string) float64 {
	t.Helper()
	v, ok := gaugeValue(reg, name, id)
	require.True(t, ok, "no %s{stream_id=%q}", name, id)
	return v
}

// TestReplicaUnderTier2Faults: 20 % of the replica's tier-2 requests
// fail and some return wrong bytes; it still catches up, and everything
// it serves is the writer's.
func TestReplicaUnderTier2Faults(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*testwait.Default)
	defer cancel()
	b := fake.New(fake.Options{})
	w := start(t, t.TempDir(), b, false)
	ws := write(ctx, t, w, 200, 1, 2)
	testwait.Until(t, testwait.Default, 5*time.Millisecond, func() bool {
		s1, _ := w.st.Lookup(1)
		s2, _ := w.st.Lookup(2)
		return uploaded(s1) && uploaded(s2)
	}, "the writer's uploads")
	// Every read request (the replica's; the writer is idle) fails at 20 %,
	// and 5 % of the bytes that do come back are wrong.
	require.NoError(t, b.Inject(
		fake.Fault{Mode: fake.ServerError, Rate: 0.2, Ops: []fake.Op{fake.OpHead, fake.OpGet, fake.OpGetFile, fake.OpList}},
		fake.Fault{Mode: fake.WrongBytes, Rate: 0.05}))
	r := start(t, t.TempDir(), b, true)
	testwait.Until(t, testwait.Default, 5*time.Millisecond, func() bool { return caughtUp(r, w, 1, 2) }, "the replica catches up through faults")
	readBack(ctx, t, r, ws)
	require.Positive(t, b.Injected()[fake.ServerError])
	require.Positive(t, b.Injected()[fake.WrongBytes])
}

// TestReplicaStopsAtAGap: a segment missing from tier 2 between two that
// are there stops following at the gap, visibly; nothing past it is
// served and nothing is skipped.
func TestReplicaStopsAtAGap(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*testwait.Default)
	defer cancel()
	b := fake.New(fake.Options{})
	w := start(t, t.TempDir(), b, false)
	ws := write(ctx, t, w, 200, 1)
	s, err := w.st.Lookup(1)
	require.NoError(t, err)
	testwait.Until(t, testwait.Default, 5*time.Millisecond, func() bool { return uploaded(s) }, "the writer's uploads")
	gap := types.SegmentID(3)
	require.NoError(t, b.Delete(ctx, w.remote.Layout().SegmentObjectKey(types.SegmentKey{Stream: 1, Segment: gap})))
	r := start(t, t.TempDir(), b, true)
	testwait.Until(t, testwait.Default, 5*time.Millisecond, func() bool {
		v, _ := gaugeValue(r.reg, "aof_replica_stalled", "1")
		return v == 1
	}, "the replica reports the gap")
	rs, err := r.st.Lookup(1)
	require.NoError(t, err)
	segs := rs.SegmentList()
	require.NotEmpty(t, segs)
	require.Equal(t, gap-1, segs[len(segs)-1].ID, "followed up to the gap")
	var before []written
	for _, x := range ws {
		if x.id.Segment() < gap {
			before = append(before, x)
		} else {
			_, err := rs.ReadAt(ctx, x.id)
			require.ErrorIs(t, err, core.ErrNotFound, "record %s past the gap", x.id)
		}
	}
	readBack(ctx, t, r, before)
}

// TestReplicaPrefersARecordedLoss: after a takeover, the new writer's
// restore records the previous writer's reserved ids as lost, and an
// object then appears under the first of them (the previous writer's
// last upload, landed late). A replica polling that id between two
// listings follows it as lost, as every restore does, instead of serving
// the object.
func TestReplicaPrefersARecordedLoss(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*testwait.Default)
	defer cancel()
	b := fake.New(fake.Options{})
	w := start(t, t.TempDir(), b, false)
	ws := write(ctx, t, w, 100, 1)
	s, err := w.st.Lookup(1)
	require.NoError(t, err)
	require.NoError(t, s.Seal(ctx))
	testwait.Until(t, testwait.Default, 5*time.Millisecond, func() bool { return uploaded(s) }, "the writer's uploads")
	last := s.SegmentList()[len(s.SegmentList())-1].ID
	w.stop()

	listInterval = time.Hour
	defer func() { listInterval = 50 * time.Millisecond }()
	r := start(t, t.TempDir(), b, true)
	rs := func() *core.Stream {
		var st *core.Stream
		testwait.Until(t, testwait.Default, 5*time.Millisecond, func() bool {
			st, _ = r.st.Lookup(1)
			return st != nil && len(st.SegmentList()) > 0 && st.SegmentList()[len(st.SegmentList())-1].ID == last
		}, "the replica caught up")
		return st
	}()
	readBack(ctx, t, r, ws)

	bDir := t.TempDir()
	remote := newRemote(t, b)
	_, err = coordinator.Takeover(ctx, nil, bDir, remote)
	require.NoError(t, err)
	rep, err := restore.Run(ctx, restore.Config{DataDir: bDir, Remote: remote, Manifest: manifestOpts, SegmentSize: segSize}, nil)
	require.NoError(t, err)
	require.Contains(t, rep.Streams[0].Lost, last+1)
	stray := remote.Layout().SegmentObjectKey(types.SegmentKey{Stream: 1, Segment: last + 1})
	_, err = remote.Put(ctx, tier2.Upload{Key: stray, Data: []byte("the previous writer's last upload")})
	require.NoError(t, err)

	testwait.Until(t, testwait.Default, 5*time.Millisecond, func() bool {
		info, ok := rs.Segment(last + 1)
		return ok && info.Lost
	}, "the replica follows the id as lost")
	require.Zero(t, gauge(t, r.reg, "aof_replica_stalled", "1"))
}

// TestReplicaWaitsForALateUpload: the writer's uploads run in parallel, so
// tier 2 may hold segment 2 before segment 1. A replica starting then
// must not take segment 1 for deleted by retention and start at 2 — it
// would never serve segment 1's records (it did, 1 run in 20 of
// TestReplicaFollowsTheWriter under -race). It waits for segment 1,
// reporting the gap meanwhile, and then serves everything.
func TestReplicaWaitsForALateUpload(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*testwait.Default)
	defer cancel()
	b := fake.New(fake.Options{})
	w := start(t, t.TempDir(), b, false)
	first := w.remote.Layout().SegmentObjectKey(types.SegmentKey{Stream: 1, Segment: 1})
	require.NoError(t, b.Inject(fake.Fault{Mode: fake.ServerError, Ops: []fake.Op{fake.OpPut, fake.OpPutFile}, KeyPrefix: first}))
	ws := write(ctx, t, w, 120, 1) // segments 1 to 3
	testwait.Until(t, testwait.Default, 5*time.Millisecond, func() bool {
		_, err := b.Head(ctx, w.remote.Layout().SegmentObjectKey(types.SegmentKey{Stream: 1, Segment: 3}))
		return err == nil
	}, "segment 3 in tier 2 while segment 1's upload fails")
	r := start(t, t.TempDir(), b, true)
	testwait.Until(t, testwait.Default, 5*time.Millisecond, func() bool {
		v, _ := gaugeValue(r.reg, "aof_replica_stalled", "1")
		return v == 1
	}, "the replica reports the gap at segment 1")
	rs, err := r.st.Lookup(1)
	require.NoError(t, err)
	require.Empty(t, rs.SegmentList(), "nothing followed past the missing segment 1")

	b.ClearFaults()
	testwait.Until(t, testwait.Default, 5*time.Millisecond, func() bool { return caughtUp(r, w, 1) }, "the replica catches up once segment 1 lands")
	require.Equal(t, types.SegmentID(1), rs.SegmentList()[0].ID)
	readBack(ctx, t, r, ws)
}

// TestReplicaStartsAfterRetention: over a prefix whose writer's retention
// deleted the stream's first segments (through its history), a new
// replica starts at the first segment tier 2 still holds, without a gap.
func TestReplicaStartsAfterRetention(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*testwait.Default)
	defer cancel()
	b := fake.New(fake.Options{})
	writerRetention = coordinator.Retention{MaxBytes: 3 * 40 * 2000} // about three sealed segments of 40 records
	defer func() { writerRetention = coordinator.Retention{} }()
	w := start(t, t.TempDir(), b, false)
	ws := write(ctx, t, w, 400, 1) // ten segments
	lowest := func() types.SegmentID {
		l, err := w.remote.ListStream(ctx, 1)
		require.NoError(t, err)
		if len(l.Segments) == 0 {
			return 0
		}
		return types.SegmentID(l.Segments[0].Ref.ID)
	}
	ww, err := w.st.Lookup(1)
	require.NoError(t, err)
	// Retention deletes a segment only once its upload landed, so it goes
	// on while uploads finish: wait until it is done, else a record the
	// test expects to read may be deleted under it.
	testwait.Until(t, testwait.Default, 5*time.Millisecond, func() bool {
		segs := ww.SegmentList()
		var total int64
		for _, info := range segs {
			if info.Footer != nil {
				total += int64(info.Footer.DurableBytes)
			}
		}
		return len(segs) > 0 && uploaded(ww) && total <= writerRetention.MaxBytes && lowest() == segs[0].ID
	}, "the writer's retention deletes the first segments and stops")
	require.Greater(t, lowest(), types.SegmentID(3))
	r := start(t, t.TempDir(), b, true)
	testwait.Until(t, testwait.Default, 5*time.Millisecond, func() bool {
		rs, err := r.st.Lookup(1)
		if err != nil || len(rs.SegmentList()) == 0 {
			return false
		}
		wl, rl := ww.SegmentList(), rs.SegmentList()
		return rl[len(rl)-1].ID == wl[len(wl)-1].ID
	}, "the replica follows up to the writer's last segment")
	v, _ := gaugeValue(r.reg, "aof_replica_stalled", "1")
	require.Zero(t, v, "no gap: the deleted segments were retired")
	rs, err := r.st.Lookup(1)
	require.NoError(t, err)
	start := rs.SegmentList()[0].ID
	require.Greater(t, start, types.SegmentID(3))
	var kept []written
	require.Equal(t, lowest(), start, "the replica starts at the writer's first live segment")
	for _, x := range ws {
		if x.id.Segment() >= start {
			kept = append(kept, x)
		}
	}
	readBack(ctx, t, r, kept)
}
