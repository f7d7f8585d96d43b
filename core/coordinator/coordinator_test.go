package coordinator

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"

	"github.com/aof2/aof2/conformance/fake"
	"github.com/aof2/aof2/core"
	"github.com/aof2/aof2/core/budget"
	"github.com/aof2/aof2/core/manifest"
	"github.com/aof2/aof2/core/segment"
	"github.com/aof2/aof2/core/tier2"
	"github.com/aof2/aof2/core/types"
	"github.com/aof2/aof2/pluginapi"
)

// rig is a store on the real file system with a coordinator, tiny budgets
// and the in-memory fake as tier 2 (kept across restarts).
type rig struct {
	dir    string
	remote *tier2.Store
	c      *Coordinator
	st     *core.Store
}

const segSize = segment.MinCapacity

// startRig creates a coordinator from cfg, opens the store in the same
// data directory and file system with it as the cold tier (segSize
// segments unless sc says otherwise) and starts the coordinator.
func startRig(t testing.TB, cfg Config, sc core.Config) *rig {
	t.Helper()
	c, err := New(cfg)
	require.NoError(t, err)
	sc.FS, sc.Tiering = cfg.FS, c
	if sc.SegmentSize == 0 {
		sc.SegmentSize = segSize
	}
	if sc.InitialSegmentSize == 0 {
		// The rig's budgets count whole segments: no small first ones
		// unless a test asks for them.
		sc.InitialSegmentSize = sc.SegmentSize
	}
	st, err := core.Open(cfg.DataDir, sc)
	if err != nil {
		_ = c.Close()
	}
	require.NoError(t, err)
	require.NoError(t, c.Start(context.Background(), st))
	return &rig{dir: cfg.DataDir, remote: cfg.Tier2, c: c, st: st}
}

func openRig(t *testing.T, dir string, backend *fake.Backend, tier0Segments int64) *rig {
	t.Helper()
	remote, err := tier2.New(backend, tier2.Config{Logger: hclog.NewNullLogger()})
	require.NoError(t, err)
	return startRig(t, Config{DataDir: dir, Tier2: remote, ScanInterval: 20 * time.Millisecond,
		Tier0: budget.Config{MaxBytes: tier0Segments * segSize, Policy: budget.PolicyTier2}}, core.Config{})
}

// stop closes the store, then the coordinator (not tier 2).
func (r *rig) stop(t testing.TB) {
	t.Helper()
	require.NoError(t, r.st.Close())
	require.NoError(t, r.c.Close())
}

func (r *rig) close(t testing.TB) {
	t.Helper()
	r.stop(t)
	require.NoError(t, r.remote.Close(context.Background()))
}

func payload(i int) []byte {
	return []byte(fmt.Sprintf("record %06d %s", i, string(make([]byte, 2000+i%1000))))
}

// waitUploaded waits until every sealed segment of the stream is in tier 2.
func waitUploaded(t *testing.T, s *core.Stream) {
	t.Helper()
	require.Eventually(t, func() bool {
		for _, info := range s.SegmentList() {
			if info.Footer == nil {
				continue
			}
			ms, _ := s.TierLog().Segment(info.ID)
			if ms.Tier2.Key == "" || ms.Tier1.State != manifest.Tier1Compressed {
				return false
			}
		}
		return true
	}, 20*time.Second, 10*time.Millisecond)
}

func readAll(t *testing.T, ctx context.Context, s *core.Stream) int {
	t.Helper()
	rd, err := s.NewReader(core.AtStart())
	require.NoError(t, err)
	defer rd.Close()
	n := 0
	for ; ; n++ {
		rec, err := rd.NextCtx(ctx)
		if err == io.EOF {
			return n
		}
		require.NoError(t, err, "record %d", n)
		require.Equal(t, string(payload(n)), string(rec.Payload), "record %d", n)
	}
}

// TestTiersRoundTrip: a stream ten times larger than tier 0 is written with
// durable acks; sealed segments are compressed, uploaded and evicted, a
// full read hydrates them back (from tier 1, then from tier 2 once the warm
// artifacts are gone), and a restart finds everything where the manifest
// says it is.
func TestTiersRoundTrip(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	dir := t.TempDir()
	backend := fake.New(fake.Options{})
	r := openRig(t, dir, backend, 3)
	s, err := r.st.Stream(7)
	require.NoError(t, err)
	const records = 5000 // ~12 MiB: about 12 segments through a 3-segment tier 0
	for i := range records {
		_, err := s.AppendCtx(ctx, payload(i), core.AppendOptions{})
		require.NoError(t, err, "record %d", i)
		if i%250 == 249 {
			require.NoError(t, s.FlushAll(ctx))
		}
	}
	require.NoError(t, s.FlushAll(ctx))
	require.NoError(t, s.Seal(ctx))
	waitUploaded(t, s)

	evicted := 0
	for _, info := range s.SegmentList() {
		if !info.Resident {
			evicted++
		}
	}
	t.Logf("%d segments, %d evicted, budget %+v", len(s.SegmentList()), evicted, r.c.Budget().Stats())
	require.Greater(t, evicted, 5, "most segments left tier 0")
	st := r.c.Budget().Stats()
	require.LessOrEqual(t, st.Used, int64(3*segSize), "tier 0 stays within its budget")
	listing, err := r.remote.ListStream(ctx, 7)
	require.NoError(t, err)
	require.Len(t, listing.Segments, len(s.SegmentList()), "every sealed segment is in tier 2")

	require.Equal(t, records, readAll(t, ctx, s), "cold reads hydrate from the warm cache")
	snap := r.c.Snapshot()
	require.Positive(t, snap.HydrationP50, "hydration latencies are tracked")
	require.LessOrEqual(t, snap.HydrationP50, snap.HydrationP99)
	require.NotNil(t, snap.Tier2)
	require.Equal(t, len(s.SegmentList()), sumResidency(snap.Residency[7]), "every segment has a residency")

	// Drop the warm copies: reads must now come from tier 2.
	for _, info := range s.SegmentList() {
		k := types.SegmentKey{Stream: 7, Segment: info.ID}
		if !info.Resident && r.c.Warm().Contains(k) {
			_, err := r.c.Warm().Remove(k)
			require.NoError(t, err)
		}
	}
	require.Equal(t, records, readAll(t, ctx, s), "cold reads hydrate from tier 2")
	r.close(t)

	r = openRig(t, dir, backend, 3)
	defer r.close(t)
	rep := r.st.Recovery()
	require.Len(t, rep, 1)
	t.Logf("recovered cold segments %v", rep[0].Cold)
	require.NotEmpty(t, rep[0].Cold, "evicted segments come back as cold catalog entries")
	s, err = r.st.Lookup(7)
	require.NoError(t, err)
	require.Equal(t, records, readAll(t, ctx, s), "after a restart")
	id, err := s.AppendDurable(ctx, []byte("after restart"), core.AppendOptions{})
	require.NoError(t, err)
	require.Greater(t, uint64(id.Segment()), uint64(len(rep[0].Cold)), "segment ids are never reused")
}

// TestTier2Outage: with tier 2 down nothing that is only local is deleted;
// writers fill tier 0 and then get WouldBlock(Admission); when tier 2 comes
// back the backlog drains and writing resumes with nothing lost.
func TestTier2Outage(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	backend := fake.New(fake.Options{})
	r := openRig(t, t.TempDir(), backend, 3)
	defer r.close(t)
	s, err := r.st.Stream(1) // created while tier 2 can be listed
	require.NoError(t, err)
	// The first segment's id is reserved in tier 2 (reserve.go) while it
	// answers: the outage below is met by tier 0 filling up first.
	_, err = s.AppendCtx(ctx, payload(0), core.AppendOptions{})
	require.NoError(t, err)
	require.NoError(t, backend.Inject(fake.Fault{Mode: fake.ServerError}))

	n := 1
	var blocked error
	var rollingOver time.Time // since when the current record has met WouldBlock(Rollover)
	for ; n < 20000; n++ {
		id, err := s.Append(payload(n), core.AppendOptions{})
		if core.KindOf(err) == core.Admission {
			blocked = err
			break
		}
		if core.KindOf(err) == core.Rollover {
			if rollingOver.IsZero() {
				rollingOver = time.Now()
			}
			require.Less(t, time.Since(rollingOver), 20*time.Second,
				"record %d: still WouldBlock(Rollover) after 20 s, the next segment never opened: %v", n, err)
			n--
			time.Sleep(time.Millisecond)
			continue
		}
		rollingOver = time.Time{}
		require.NoError(t, err)
		require.NoError(t, s.Flush(ctx, id))
	}
	require.Error(t, blocked, "tier 0 filled up: writers are refused")
	require.NotErrorIs(t, blocked, ErrReservationPending, "refused by the budget, within the reservation")
	require.Greater(t, len(s.SegmentList()), 1, "writes went on during the outage")
	for _, info := range s.SegmentList() {
		require.True(t, info.Resident, "segment %d: nothing not in tier 2 is deleted", info.ID)
	}
	listing, err := r.remote.ListStream(ctx, 1)
	if err == nil {
		require.Empty(t, listing.Segments)
	}

	require.NoError(t, backend.Inject()) // tier 2 is back
	for i := n; i < n+3000; i++ {
		_, err := s.AppendCtx(ctx, payload(i), core.AppendOptions{})
		require.NoError(t, err, "record %d after the outage", i)
	}
	require.NoError(t, s.FlushAll(ctx))
	require.NoError(t, s.Seal(ctx))
	waitUploaded(t, s)
	require.Equal(t, n+3000, readAll(t, ctx, s))
}

// TestReconcileAtStart: a tier-2 object that vanished is re-uploaded from a
// local copy, or flagged when none is left; an object the manifest does not
// know is reported and left alone. Sealed manifest chunks reach tier 2.
func TestReconcileAtStart(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	dir := t.TempDir()
	backend := fake.New(fake.Options{})
	r := openRig(t, dir, backend, 3)
	s, err := r.st.Stream(3)
	require.NoError(t, err)
	const records = 3000
	writeSealed(t, ctx, s, records)
	require.NoError(t, s.TierLog().Rotate(ctx))
	require.Eventually(t, func() bool {
		l, err := r.remote.ListStream(ctx, 3)
		return err == nil && len(l.ManifestChunks) > 0
	}, 10*time.Second, 10*time.Millisecond, "sealed manifest chunks are uploaded")

	var withCopy, without *core.SegmentInfo
	for _, info := range s.SegmentList() {
		k := types.SegmentKey{Stream: 3, Segment: info.ID}
		switch {
		case info.Resident && info.Footer != nil && withCopy == nil:
			withCopy = &info
		case !info.Resident && without == nil:
			without = &info
			_, err := r.c.Warm().Remove(k)
			require.NoError(t, err)
		}
	}
	require.NotNil(t, withCopy)
	require.NotNil(t, without)
	layout := r.remote.Layout()
	require.NoError(t, r.remote.Delete(ctx, layout.SegmentObjectKey(sk(3, withCopy.ID))))
	require.NoError(t, r.remote.Delete(ctx, layout.SegmentObjectKey(sk(3, without.ID))))
	_, err = r.remote.Put(ctx, tier2.Upload{Key: "streams/3/segments/stray-object", Data: []byte("not ours")})
	require.NoError(t, err)
	r.close(t)

	r = openRig(t, dir, backend, 3)
	defer r.close(t)
	recs := r.c.Reconciliations()
	require.Len(t, recs, 1)
	require.NoError(t, recs[0].Err)
	require.Equal(t, []types.SegmentID{withCopy.ID}, recs[0].Reuploads)
	require.Equal(t, []types.SegmentID{without.ID}, recs[0].Lost)
	require.Contains(t, recs[0].Unknown, "streams/3/segments/stray-object")
	require.Eventually(t, func() bool {
		_, err := r.remote.Stat(ctx, layout.SegmentObjectKey(sk(3, withCopy.ID)))
		return err == nil
	}, 10*time.Second, 10*time.Millisecond, "re-uploaded from the local copy")
	s, err = r.st.Lookup(3)
	require.NoError(t, err)
	ms, _ := s.TierLog().Segment(without.ID)
	require.Equal(t, manifest.NeedsRecovery, ms.Residency, "a segment with no copy left is flagged")
	require.Equal(t, 1.0, testutil.ToFloat64(residencyCollector{r.c}), "aof_needs_recovery_segments of the one stream")
	_, err = r.remote.Stat(ctx, "streams/3/segments/stray-object")
	require.NoError(t, err, "unknown objects are never deleted")
}

// TestRetention: with a byte cap the oldest segments leave every tier
// (tier 0, the warm cache, tier 2) through Tier2DeleteQueued/Tier2Deleted;
// readers start at the new head, and a restart does not bring them back.
func TestRetention(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	dir := t.TempDir()
	backend := &intentFirst{Backend: fake.New(fake.Options{})}
	remote, err := tier2.New(backend, tier2.Config{Logger: hclog.NewNullLogger()})
	require.NoError(t, err)
	r := startRig(t, Config{DataDir: dir, Tier2: remote, ScanInterval: 10 * time.Millisecond,
		Tier0:     budget.Config{MaxBytes: 3 * segSize, Policy: budget.PolicyTier2},
		Retention: Retention{MaxBytes: 3 * segSize}}, core.Config{})
	c := r.c
	s, err := r.st.Stream(2)
	require.NoError(t, err)
	const records = 5000
	for i := range records {
		_, err := s.AppendCtx(ctx, payload(i), core.AppendOptions{})
		require.NoError(t, err)
	}
	require.NoError(t, s.FlushAll(ctx))
	require.NoError(t, s.Seal(ctx)) // no seal may land after the head settles
	// Settled: the sealed segments fit the cap, so retention stops moving the head.
	require.Eventually(t, func() bool {
		var total uint64
		for _, info := range s.SegmentList() {
			if info.Footer != nil {
				total += info.Footer.DurableBytes
			}
		}
		return total <= 3*segSize
	}, 20*time.Second, 10*time.Millisecond)
	head := s.SegmentList()[0]
	require.Greater(t, uint64(head.ID), uint64(1))
	gone := func(id types.SegmentID) bool {
		_, err := remote.Stat(ctx, remote.Layout().SegmentObjectKey(sk(2, uint64(id))))
		_, known := s.TierLog().Segment(id)
		return err != nil && !known && !c.Warm().Contains(types.SegmentKey{Stream: 2, Segment: id})
	}
	// Retirements run as independent jobs: they may finish in any order.
	for id := types.SegmentID(1); id < head.ID; id++ {
		require.Eventually(t, func() bool { return gone(id) }, 10*time.Second, 10*time.Millisecond,
			"segment %d: warm copy, tier-2 object and manifest entry deleted", id)
	}
	rd, err := s.NewReader(core.AtStart())
	require.NoError(t, err)
	rec, err := rd.NextCtx(ctx)
	require.NoError(t, err)
	require.Equal(t, head.BaseRecord, rec.Ordinal, "AtStart is the oldest record kept")
	rd.Close()
	_, err = s.NewReader(core.AtOrdinal(0))
	require.ErrorIs(t, err, core.ErrNotFound)

	backend.mu.Lock()
	require.Positive(t, backend.deletes, "segment objects deleted")
	require.Empty(t, backend.early, "every segment delete came after its queued delete was in the tier-2 commit log")
	backend.mu.Unlock()

	r.stop(t)
	r = startRig(t, Config{DataDir: dir, Tier2: remote, Tier0: budget.Config{Policy: budget.PolicyTier2}}, core.Config{})
	defer r.stop(t)
	s, err = r.st.Lookup(2)
	require.NoError(t, err)
	require.GreaterOrEqual(t, uint64(s.SegmentList()[0].ID), uint64(head.ID), "retired segments stay gone")
}

// intentFirst records the segment deletes that reach it before tier 2's
// commit log of the stream holds the Tier2DeleteQueued of the key
// (docs/adr-fencing.md: a delete follows its intent into the log).
type intentFirst struct {
	*fake.Backend
	mu      sync.Mutex
	deletes int      // guarded by mu
	early   []string // guarded by mu
}

func (b *intentFirst) Delete(ctx context.Context, key string) error {
	layout, _ := tier2.NewLayout("")
	if ref, err := layout.Parse(key); err == nil && ref.Kind == tier2.KindSegment {
		queued := false
		for _, k := range b.Keys() {
			cref, err := layout.Parse(k)
			if err != nil || cref.Kind != tier2.KindManifestChunk || cref.Stream != ref.Stream {
				continue
			}
			_, rc, err := b.Get(ctx, pluginapi.GetRequest{Key: k})
			if err != nil {
				continue
			}
			data, _ := io.ReadAll(rc)
			_ = rc.Close()
			recs, _ := manifest.ChunkRecords(data, cref.ID)
			for _, rec := range recs {
				if q, ok := rec.(manifest.Tier2DeleteQueued); ok && q.Key == key {
					queued = true
				}
			}
		}
		b.mu.Lock()
		b.deletes++
		if !queued {
			b.early = append(b.early, key)
		}
		b.mu.Unlock()
	}
	return b.Backend.Delete(ctx, key)
}

func sumResidency(m map[manifest.Residency]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}

// TestManifestRebuiltFromTiers: a stream whose manifest is lost entirely
// gets it rebuilt from all three tiers (tier-0 files, the warm directory,
// the tier-2 listing), so evicted segments keep their residency and read
// back.
func TestManifestRebuiltFromTiers(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	dir := t.TempDir()
	backend := fake.New(fake.Options{})
	r := openRig(t, dir, backend, 3)
	s, err := r.st.Stream(4)
	require.NoError(t, err)
	const records = 3000
	writeSealed(t, ctx, s, records)
	var cold []types.SegmentID
	for _, info := range s.SegmentList() {
		if !info.Resident {
			cold = append(cold, info.ID)
		}
	}
	require.NotEmpty(t, cold)
	r.close(t)

	require.NoError(t, os.RemoveAll(filepath.Join(dir, "streams/4/manifest")))
	require.NoError(t, os.Remove(filepath.Join(dir, "streams/4/warm/manifest.json")))
	r = openRig(t, dir, backend, 3)
	defer r.close(t)
	rep := r.st.Recovery()
	require.True(t, rep[0].Manifest.Repaired, "rebuilt from ground truth: %+v", rep[0].Manifest)
	s, err = r.st.Lookup(4)
	require.NoError(t, err)
	for _, id := range cold {
		ms, ok := s.TierLog().Segment(id)
		require.True(t, ok, "segment %d", id)
		require.False(t, ms.Tier0, "segment %d", id)
		require.Equal(t, manifest.Tier1Compressed, ms.Tier1.State, "segment %d: the warm artifact is found", id)
		require.NotEmpty(t, ms.Tier2.Key, "segment %d: the tier-2 object is found", id)
		require.True(t, ms.Sealed, "segment %d", id)
	}
	require.Equal(t, records, readAll(t, ctx, s))
}

// writeSealed appends records 0..n-1, seals, and waits until every sealed
// segment is compressed and uploaded.
func writeSealed(t *testing.T, ctx context.Context, s *core.Stream, n int) {
	t.Helper()
	for i := range n {
		_, err := s.AppendCtx(ctx, payload(i), core.AppendOptions{})
		require.NoError(t, err)
	}
	require.NoError(t, s.FlushAll(ctx))
	require.NoError(t, s.Seal(ctx))
	waitUploaded(t, s)
}

// sk is a segment key from plain numbers.
func sk[T ~uint64 | ~int](stream, seg T) types.SegmentKey {
	return types.SegmentKey{Stream: types.StreamID(stream), Segment: types.SegmentID(seg)}
}
