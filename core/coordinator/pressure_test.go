package coordinator

import (
	"context"
	"errors"
	"io"
	"path"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/aof2/aof2/conformance/fake"
	"github.com/aof2/aof2/core"
	"github.com/aof2/aof2/core/budget"
	"github.com/aof2/aof2/core/manifest"
	"github.com/aof2/aof2/core/segment"
	"github.com/aof2/aof2/core/tier2"
	"github.com/aof2/aof2/core/types"
	"github.com/aof2/aof2/core/vfs"
	"github.com/aof2/aof2/internal/testwait"
)

// Progress under pressure (docs/adr-tier0.md, "Progress: no request
// sequence needs an operator"): the engine and the coordinator together.
// The budget's own model test (core/budget/progress_test.go) explores the
// orders; these replay the sequences on a real store.

// pollTick is how often the tests below look again; no assertion depends
// on it, only how soon a wait notices.
const pollTick = 5 * time.Millisecond

// gaugeOrCounter reads an unlabelled metric from reg (0 when absent).
func gaugeOrCounter(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	require.NoError(t, err)
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			if len(m.GetLabel()) > 0 {
				continue
			}
			if c := m.GetCounter(); c != nil {
				return c.GetValue()
			}
			return m.GetGauge().GetValue()
		}
	}
	return 0
}

// appendPastRollover appends rec once the stream's next segment is
// prepared: it retries while the answer is WouldBlock(Rollover) (the
// preparer or the previous seal is still at work) and returns the first
// other answer.
func appendPastRollover(t *testing.T, s *core.Stream, rec []byte) (core.RecordID, error) {
	t.Helper()
	var id core.RecordID
	var err error
	testwait.Until(t, testwait.Default, pollTick, func() bool {
		id, err = s.Append(rec, core.AppendOptions{})
		return core.KindOf(err) != core.Rollover
	}, "stream %d: an answer other than WouldBlock(Rollover)", s.ID())
	return id, err
}

// waitInTier2 waits until every sealed segment of s is compressed and
// uploaded.
func waitInTier2(t *testing.T, s *core.Stream) {
	t.Helper()
	testwait.Until(t, testwait.Default, pollTick, func() bool {
		for _, info := range s.SegmentList() {
			if info.Footer == nil {
				continue
			}
			if ms, _ := s.TierLog().Segment(info.ID); ms.Tier2.Key == "" || ms.Tier1.State != manifest.Tier1Compressed {
				return false
			}
		}
		return true
	}, "every sealed segment of stream %d in tier 2", s.ID())
}

func newRemote(t testing.TB, backend *fake.Backend) *tier2.Store {
	t.Helper()
	remote, err := tier2.New(backend, tier2.Config{Logger: hclog.NewNullLogger()})
	require.NoError(t, err)
	return remote
}

// TestAdmissionLivelockHeals is the sequence: 1 MiB segments, a
// 2 MiB tier-0 budget, 500 KB appends to streams 1, 2, 1, 1. The fourth
// append needs a new segment while both segments in tier 0 are active:
// it is refused (WouldBlock(Admission)) and, before issue 12, refused
// forever. Now the refusal seals stream 1's full segment, which is
// compressed, uploaded and evicted, and the append goes through with no
// operator. A new stream then finds tier 0 full of two active segments
// nobody writes to (F2): the coordinator asks stream 2 to seal its idle
// segment, and the new stream's first append goes through too.
func TestAdmissionLivelockHeals(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), testwait.Default)
	defer cancel()
	const mib = 1 << 20
	reg := prometheus.NewRegistry()
	remote := newRemote(t, fake.New(fake.Options{}))
	r := startRig(t, Config{DataDir: t.TempDir(), Tier2: remote, ScanInterval: 10 * time.Millisecond, Registerer: reg,
		Tier0: budget.Config{MaxBytes: 2 * mib, Policy: budget.PolicyTier2}}, core.Config{SegmentSize: mib})
	defer r.close(t)
	streams := map[core.StreamID]*core.Stream{}
	for _, id := range []core.StreamID{1, 2, 3} {
		s, err := r.st.Stream(id)
		require.NoError(t, err)
		streams[id] = s
	}
	rec := make([]byte, 500_000)

	for i, id := range []core.StreamID{1, 2, 1} {
		_, err := streams[id].AppendCtx(ctx, rec, core.AppendOptions{})
		require.NoError(t, err, "append %d (stream %d)", i, id)
	}
	st := r.c.Budget().Stats()
	require.EqualValues(t, 2*mib, st.Used, "tier 0 is full of two active segments")

	// The fourth append: refused at first, as before the fix.
	_, err := appendPastRollover(t, streams[1], rec)
	require.Equal(t, core.Admission, core.KindOf(err), "%v", err)
	// Background work alone (seal, compress, upload, evict) lets it in.
	id, err := streams[1].AppendCtx(ctx, rec, core.AppendOptions{})
	require.NoError(t, err, "the fourth append succeeds after background work")
	require.Equal(t, core.SegmentID(2), id.Segment())
	info, ok := streams[1].Segment(1)
	require.True(t, ok)
	require.NotNil(t, info.Footer, "the full segment was sealed")
	require.EqualValues(t, 2, info.Footer.RecordCount)

	// F2: streams 1 and 2 each hold an active segment, nobody writes to
	// stream 2; a new stream's first append.
	_, err = appendPastRollover(t, streams[3], rec)
	require.Equal(t, core.Admission, core.KindOf(err), "%v", err)
	_, err = streams[3].AppendCtx(ctx, rec, core.AppendOptions{})
	require.NoError(t, err, "a new stream's first append succeeds after background work")
	info, ok = streams[2].Segment(1)
	require.True(t, ok)
	require.NotNil(t, info.Footer, "stream 2's idle segment was sealed on the budget's request")
	require.Positive(t, gaugeOrCounter(t, reg, "aof_tier0_seal_requests_total"))

	// Every segment that left tier 0 is in tier 2, and every record is
	// still there.
	for _, s := range streams {
		for _, info := range s.SegmentList() {
			ms, _ := s.TierLog().Segment(info.ID)
			require.True(t, info.Resident || ms.Tier2.Key != "", "stream %d segment %d left tier 0 without being in tier 2", s.ID(), info.ID)
		}
		require.NoError(t, s.FlushAll(ctx))
	}
	// Reading hydrates the evicted segments back into the full tier 0:
	// the scan asks for seals for them too.
	for id, want := range map[core.StreamID]int{1: 3, 2: 1, 3: 1} {
		require.Equal(t, want, countRecords(t, ctx, streams[id]), "stream %d", id)
	}
}

// countRecords reads a stream from its start, hydrating what is needed.
func countRecords(t *testing.T, ctx context.Context, s *core.Stream) int {
	t.Helper()
	rd, err := s.NewReader(core.AtStart())
	require.NoError(t, err)
	defer rd.Close()
	for n := 0; ; n++ {
		_, err := rd.NextCtx(ctx)
		if errors.Is(err, io.EOF) {
			return n
		}
		require.NoError(t, err, "stream %d record %d", s.ID(), n)
	}
}

// writeAndSeal appends records 0..n-1 and seals, without waiting for the
// tiers.
func writeAndSeal(t *testing.T, ctx context.Context, s *core.Stream, n int) {
	t.Helper()
	for i := range n {
		_, err := s.AppendCtx(ctx, payload(i), core.AppendOptions{})
		require.NoError(t, err)
	}
	require.NoError(t, s.FlushAll(ctx))
	require.NoError(t, s.Seal(ctx))
}

// TestDiskHighWatermarkEvictsWhatTier2Holds (F7): with an unlimited tier-0
// budget nothing is ever over budget, so before issue 12 a full disk never
// cleared. Above tier0.disk_high_watermark the coordinator evicts the
// sealed segments tier 2 holds — and only those: segments whose upload is
// failing stay, and so do active ones, and so do warm artifacts while
// tier 2 does not answer. When the usage drops, the pressure ends.
func TestDiskHighWatermarkEvictsWhatTier2Holds(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), testwait.Default)
	defer cancel()
	const total = 1 << 30
	var used atomic.Uint64
	used.Store(total / 2)
	logs := &syncBuf{}
	reg := prometheus.NewRegistry()
	backend := fake.New(fake.Options{})
	r := startRig(t, Config{DataDir: t.TempDir(), Tier2: newRemote(t, backend), ScanInterval: 10 * time.Millisecond, Registerer: reg,
		Logger: hclog.New(&hclog.LoggerOptions{Output: logs, Level: hclog.Info}),
		Tier0:  budget.Config{Policy: budget.PolicyTier2},
		Disk: Disk{HighWatermark: 0.9, LowWatermark: 0.8, Usage: func() (DiskUsage, error) {
			return DiskUsage{Total: total, Free: total - used.Load()}, nil
		}}}, core.Config{})
	defer r.close(t)
	uploaded, err := r.st.Stream(1)
	require.NoError(t, err)
	local, err := r.st.Stream(2)
	require.NoError(t, err)
	writeAndSeal(t, ctx, uploaded, 1500) // a few segments
	waitInTier2(t, uploaded)
	// Stream 2's segment ids are reserved while tier 2 answers
	// (reserve.go): it writes through the failures below.
	reserveNow(t, r.c, sk(2, 1))

	// Uploads fail from now on: stream 2's sealed segments exist only here.
	require.NoError(t, backend.Inject(fake.Fault{Mode: fake.ServerError, Ops: []fake.Op{fake.OpPut, fake.OpPutFile}}))
	writeAndSeal(t, ctx, local, 1500)
	_, err = local.AppendCtx(ctx, payload(0), core.AppendOptions{}) // and an active segment
	require.NoError(t, err)
	testwait.Until(t, testwait.Default, pollTick, func() bool {
		for _, info := range local.SegmentList() {
			if info.Footer != nil && !r.c.Warm().Contains(sk(2, info.ID)) {
				return false
			}
		}
		return true
	}, "stream 2's sealed segments compressed (so that only the missing upload keeps them)")
	for _, s := range []*core.Stream{uploaded, local} {
		for _, info := range s.SegmentList() {
			require.True(t, info.Resident, "below the watermark nothing leaves tier 0 (stream %d segment %d)", s.ID(), info.ID)
		}
	}
	require.Zero(t, gaugeOrCounter(t, reg, "aof_coordinator_disk_pressure"))

	testwait.Until(t, testwait.Default, pollTick, func() bool { return r.remote.Health().State == tier2.BreakerOpen },
		"the failing uploads to open tier 2's breaker")
	used.Store(total / 100 * 95) // above the high watermark; 15 % to free: more than tier 0 holds
	sealedUploaded := 0
	testwait.Until(t, testwait.Default, pollTick, func() bool {
		sealedUploaded = 0
		for _, info := range uploaded.SegmentList() {
			if info.Footer == nil {
				continue
			}
			if info.Resident {
				return false
			}
			sealedUploaded++
		}
		return true
	}, "every sealed segment of stream 1 (in tier 2) evicted under disk pressure")
	require.Greater(t, sealedUploaded, 1)
	// Tier 0 freed less than asked, but tier 2 does not answer (its
	// breaker is open): the warm artifacts are the copies reads can reach,
	// and stay (TestDiskPressureReclaimsWarmArtifacts evicts them).
	for _, info := range uploaded.SegmentList() {
		if info.Footer != nil {
			require.True(t, r.c.Warm().Contains(sk(1, info.ID)), "stream 1 segment %d's warm artifact", info.ID)
		}
	}
	for _, info := range local.SegmentList() {
		ms, _ := local.TierLog().Segment(info.ID)
		require.Empty(t, ms.Tier2.Key, "stream 2 segment %d: its upload fails", info.ID)
		require.True(t, info.Resident, "stream 2 segment %d is not in tier 2: it must stay", info.ID)
		if info.Footer != nil {
			require.True(t, r.c.Warm().Contains(sk(2, info.ID)), "stream 2 segment %d's warm artifact is its only other copy", info.ID)
		}
	}
	require.Equal(t, 1.0, gaugeOrCounter(t, reg, "aof_coordinator_disk_pressure"))
	require.InDelta(t, 0.95, gaugeOrCounter(t, reg, "aof_coordinator_disk_used_ratio"), 0.01)
	require.GreaterOrEqual(t, gaugeOrCounter(t, reg, "aof_tier0_disk_pressure_evictions_total"), float64(sealedUploaded))
	require.Contains(t, logs.String(), "disk pressure: evicting segments other tiers hold")
	require.Contains(t, logs.String(), "reason=high_watermark")

	// The evicted segments read back from the other tiers.
	require.Equal(t, 1500, readAll(t, ctx, uploaded))

	used.Store(total / 2)
	testwait.Until(t, testwait.Default, pollTick, func() bool {
		return gaugeOrCounter(t, reg, "aof_coordinator_disk_pressure") == 0
	}, "the disk pressure to end once usage is below the watermark")
	require.Contains(t, logs.String(), "disk pressure over")
}

// TestDiskPressureReclaimsWarmArtifacts: above the high watermark, with
// more to free than tier 0 holds and tier 2 answering, the warm artifacts
// of the segments tier 2 holds are evicted too (the warm cache has no
// budget of its own here), recorded, and the segments read back from
// tier 2.
func TestDiskPressureReclaimsWarmArtifacts(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), testwait.Default)
	defer cancel()
	const total = 1 << 30
	var used atomic.Uint64
	used.Store(total / 2)
	backend := fake.New(fake.Options{})
	r := startRig(t, Config{DataDir: t.TempDir(), Tier2: newRemote(t, backend), ScanInterval: 10 * time.Millisecond,
		Tier0: budget.Config{Policy: budget.PolicyTier2},
		Disk: Disk{HighWatermark: 0.9, LowWatermark: 0.8, Usage: func() (DiskUsage, error) {
			return DiskUsage{Total: total, Free: total - used.Load()}, nil
		}}}, core.Config{})
	defer r.close(t)
	s, err := r.st.Stream(1)
	require.NoError(t, err)
	writeAndSeal(t, ctx, s, 1500)
	waitInTier2(t, s)

	used.Store(total / 100 * 95)
	testwait.Until(t, testwait.Default, pollTick, func() bool {
		for _, info := range s.SegmentList() {
			ms, _ := s.TierLog().Segment(info.ID)
			if info.Footer != nil && (info.Resident || r.c.Warm().Contains(sk(1, info.ID)) || ms.Residency != manifest.UploadedToTier2) {
				return false
			}
		}
		return true
	}, "every sealed segment's tier-0 file and warm artifact evicted under disk pressure, and recorded so")
	used.Store(total / 2)
	require.Equal(t, 1500, readAll(t, ctx, s))
}

// TestDiskFullEvictsWhatTier2Holds (F7, ENOSPC): the disk is full, so the
// preparation of a stream's next segment fails with ENOSPC (injected by
// the file system) and its writer waits. No watermark is configured and
// the tier-0 budget is unlimited: the stream waiting for space alone
// makes the coordinator evict a sealed segment tier 2 holds, the space
// comes back and the writer goes on.
func TestDiskFullEvictsWhatTier2Holds(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), testwait.Default)
	defer cancel()
	var full atomic.Bool
	var refused, freed atomic.Int64
	fsys := vfs.Wrap(vfs.OS, vfs.InjectorFunc(func(op vfs.Op) vfs.Fault {
		switch {
		case op.Kind == vfs.OpRemove && strings.HasSuffix(op.Path, ".seg"):
			freed.Add(1) // a tier-0 eviction frees a segment's worth
			full.Store(false)
		case full.Load() && strings.HasSuffix(op.Path, ".seg.prep") && (op.Kind == vfs.OpCreate || op.Kind == vfs.OpAllocate):
			refused.Add(1)
			return vfs.FaultNoSpace
		}
		return vfs.NoFault
	}))
	reg := prometheus.NewRegistry()
	r := startRig(t, Config{DataDir: t.TempDir(), FS: fsys, Tier2: newRemote(t, fake.New(fake.Options{})), ScanInterval: 10 * time.Millisecond,
		Registerer: reg, Tier0: budget.Config{Policy: budget.PolicyTier2},
		Disk: Disk{Usage: func() (DiskUsage, error) { return DiskUsage{}, errors.New("no usage in this test") }}}, core.Config{})
	defer r.close(t)
	s, err := r.st.Stream(1)
	require.NoError(t, err)
	writeAndSeal(t, ctx, s, 1500)
	waitInTier2(t, s)
	sealed := len(s.SegmentList())
	require.Zero(t, freed.Load(), "an unlimited budget evicts nothing by itself")

	full.Store(true)
	for i := 1500; i < 3000; i++ {
		_, err := s.AppendCtx(ctx, payload(i), core.AppendOptions{})
		require.NoError(t, err, "record %d: the writer goes on once space is freed", i)
	}
	require.Positive(t, refused.Load(), "a preparation met the full disk")
	require.Positive(t, freed.Load(), "an eviction freed space")
	require.Greater(t, len(s.SegmentList()), sealed)
	evicted := 0
	for _, info := range s.SegmentList() {
		if !info.Resident {
			evicted++
			ms, _ := s.TierLog().Segment(info.ID)
			require.NotEmpty(t, ms.Tier2.Key, "segment %d was evicted without being in tier 2", info.ID)
		}
	}
	require.Positive(t, evicted)
	require.Positive(t, gaugeOrCounter(t, reg, "aof_tier0_disk_pressure_evictions_total"))
	require.NoError(t, s.FlushAll(ctx))
	require.Equal(t, 3000, readAll(t, ctx, s))
}

// TestDiskConfig: the watermarks are fractions, the low one below the high
// one (default 5 points below).
func TestDiskConfig(t *testing.T) {
	for _, tc := range []struct {
		d       Disk
		low     float64
		errPart string
	}{
		{d: Disk{}, low: 0},
		{d: Disk{HighWatermark: 0.9}, low: 0.85},
		{d: Disk{HighWatermark: 0.04}, low: 0.02},
		{d: Disk{HighWatermark: 0.9, LowWatermark: 0.5}, low: 0.5},
		{d: Disk{LowWatermark: 0.5}, low: 0.5},
		{d: Disk{HighWatermark: 1.5}, errPart: "tier0.disk_high_watermark"},
		{d: Disk{HighWatermark: 0.8, LowWatermark: 0.8}, errPart: "tier0.disk_low_watermark"},
		{d: Disk{LowWatermark: -0.1}, errPart: "tier0.disk_low_watermark"},
	} {
		d := tc.d
		err := d.withDefaults(false, "/nowhere")
		if tc.errPart != "" {
			var ce *types.ConfigError
			require.ErrorAs(t, err, &ce, "%+v", tc.d)
			require.Equal(t, tc.errPart, ce.Key)
			continue
		}
		require.NoError(t, err, "%+v", tc.d)
		require.InDelta(t, tc.low, d.LowWatermark, 1e-9, "%+v", tc.d)
		require.Nil(t, d.Usage, "no statfs off the OS file system")
	}
	d := Disk{}
	require.NoError(t, d.withDefaults(true, t.TempDir()))
	require.NotNil(t, d.Usage)
	u, err := d.Usage()
	require.NoError(t, err)
	require.Positive(t, u.Total)
	require.LessOrEqual(t, u.Free, u.Total)
}

// TestSealedSegmentsCostTheirBytes: a sealed segment is charged the room
// its file keeps (records and footer; the seal gave the rest back), not
// its capacity. With nothing evictable (tier 2 never holds a segment
// here), a 4 MiB tier 0 of 1 MiB segments takes ten small sealed segments
// and an active one; charged their capacity, the fifth activation would
// wait for an eviction that never comes.
func TestSealedSegmentsCostTheirBytes(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), testwait.Default)
	defer cancel()
	const mib = 1 << 20
	dir := t.TempDir()
	backend := fake.New(fake.Options{})
	layout, err := tier2.NewLayout("")
	require.NoError(t, err)
	segments := path.Dir(layout.SegmentObjectKey(types.SegmentKey{Stream: 1, Segment: 1})) + "/"
	require.NoError(t, backend.Inject(fake.Fault{Mode: fake.ServerError, Ops: []fake.Op{fake.OpPut, fake.OpPutFile}, KeyPrefix: segments}))
	remote := newRemote(t, backend)
	defer remote.Close(context.Background())
	start := func() *rig {
		return startRig(t, Config{DataDir: dir, Tier2: remote, ScanInterval: 10 * time.Millisecond, Registerer: prometheus.NewRegistry(),
			Tier0: budget.Config{MaxBytes: 4 * mib, Policy: budget.PolicyTier2}}, core.Config{SegmentSize: mib})
	}
	r := start()
	s, err := r.st.Stream(1)
	require.NoError(t, err)
	for i := range 10 {
		_, err := s.AppendCtx(ctx, payload(i), core.AppendOptions{})
		require.NoError(t, err, "segment %d", i+1)
		require.NoError(t, s.Seal(ctx))
	}
	_, err = s.AppendCtx(ctx, payload(10), core.AppendOptions{})
	require.NoError(t, err)
	// The coordinator learns of a seal from the store's events, after
	// Seal returns: wait for the tenth.
	testwait.Until(t, testwait.Default, pollTick, func() bool { return r.c.Budget().Stats().Sealed == 10 },
		"the coordinator to register ten sealed segments")
	st := r.c.Budget().Stats()
	require.Zero(t, st.Evictable, "nothing is safe to evict")
	require.Less(t, st.Used, int64(2*mib), "one active segment and ten sealed ones of a few KiB: %d bytes", st.Used)
	for _, e := range r.c.Budget().Entries() {
		if e.State == "sealed" {
			info, ok := s.Segment(e.Key.Segment)
			require.True(t, ok)
			require.Equal(t, segment.SealedFootprint(info.Capacity, info.Footer.DurableBytes), e.Bytes, "segment %d", e.Key.Segment)
		}
	}

	// A restart registers the sealed segments at their footprint too.
	r.stop(t)
	r = start()
	defer r.stop(t)
	st = r.c.Budget().Stats()
	require.Equal(t, 10, st.Sealed)
	require.Equal(t, 1, st.Active, "a clean close keeps the tail active")
	require.Less(t, st.Used, int64(2*mib), "%d bytes", st.Used)
}

// TestUploadsPause: paused, sealed segments are compressed but not
// uploaded (and the gauge says so); resumed, the scan uploads them all.
// A coordinator without tier 2 refuses the pause.
func TestUploadsPause(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), testwait.Default)
	defer cancel()
	reg := prometheus.NewRegistry()
	r := startRig(t, Config{DataDir: t.TempDir(), Tier2: newRemote(t, fake.New(fake.Options{})), ScanInterval: 10 * time.Millisecond, Registerer: reg,
		Tier0: budget.Config{Policy: budget.PolicyTier2}}, core.Config{})
	defer r.close(t)
	require.NoError(t, r.c.SetUploadsPaused(true))
	require.True(t, r.c.UploadsPaused())
	require.Equal(t, 1.0, gaugeOrCounter(t, reg, "aof_tier2_uploads_paused"))
	s, err := r.st.Stream(1)
	require.NoError(t, err)
	writeAndSeal(t, ctx, s, 20)
	writeAndSeal(t, ctx, s, 20)
	testwait.Until(t, testwait.Default, pollTick, func() bool {
		for _, info := range s.SegmentList() {
			if ms, _ := s.TierLog().Segment(info.ID); info.Footer != nil && ms.Tier1.State != manifest.Tier1Compressed {
				return false
			}
		}
		return true
	}, "the sealed segments compressed")
	// Scans run here, synchronously: one that queued an upload leaves the
	// job queued or running (in the queue until done) or, done, the
	// segment in tier 2; either fails below.
	for range 3 {
		r.c.scan()
	}
	requireNoJob(t, r.c, jobUpload)
	for _, info := range s.SegmentList() {
		ms, _ := s.TierLog().Segment(info.ID)
		require.Empty(t, ms.Tier2.Key, "segment %d uploaded while uploads were paused", info.ID)
	}
	require.NoError(t, r.c.SetUploadsPaused(false))
	require.Equal(t, 0.0, gaugeOrCounter(t, reg, "aof_tier2_uploads_paused"))
	waitInTier2(t, s)

	local := startRig(t, Config{DataDir: t.TempDir(), ScanInterval: 10 * time.Millisecond, Registerer: prometheus.NewRegistry()}, core.Config{})
	defer local.stop(t)
	require.ErrorIs(t, local.c.SetUploadsPaused(true), ErrNoUploads)
}

// TestRetireBelow: an operator's request retires a stream's oldest
// segments through retention (each delete committed first, after its
// upload) down to the segment asked for, and no further; a range reaching
// past the newest segment, and a node without tier 2, are refused.
func TestRetireBelow(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), testwait.Default)
	defer cancel()
	backend := fake.New(fake.Options{})
	r := startRig(t, Config{DataDir: t.TempDir(), Tier2: newRemote(t, backend), ScanInterval: 10 * time.Millisecond, Registerer: prometheus.NewRegistry(),
		Tier0: budget.Config{Policy: budget.PolicyTier2}}, core.Config{})
	defer r.close(t)
	s, err := r.st.Stream(1)
	require.NoError(t, err)
	for range 5 {
		writeAndSeal(t, ctx, s, 10)
	}
	waitInTier2(t, s)
	_, err = r.c.RetireBelow(s, 9)
	require.ErrorIs(t, err, ErrRetireRange)
	n, err := r.c.RetireBelow(s, 4)
	require.NoError(t, err)
	require.Equal(t, 3, n)
	testwait.Until(t, testwait.Default, pollTick, func() bool { return s.SegmentList()[0].ID == 4 }, "segments 1 to 3 retired")
	testwait.Until(t, testwait.Default, pollTick, func() bool { return !hasJob(r.c, jobRetire) }, "segment 3's retire job to finish")
	for range 3 { // scans that would retire segment 4 queue the job, as above
		r.c.scan()
	}
	requireNoJob(t, r.c, jobRetire)
	segs := s.SegmentList()
	require.Equal(t, types.SegmentID(4), segs[0].ID)
	require.Len(t, segs, 2, "segments 4 and 5 stay")
	for id := types.SegmentID(1); id < 4; id++ {
		_, err := backend.Head(ctx, r.remote.Layout().SegmentObjectKey(types.SegmentKey{Stream: 1, Segment: id}))
		require.Error(t, err, "segment %d's tier-2 object deleted", id)
		_, err = s.ReadAt(ctx, core.MakeRecordID(id, 64))
		require.ErrorIs(t, err, core.ErrNotFound)
	}
	require.Equal(t, 20, countRecords(t, ctx, s), "segments 4 and 5 read back")
	ms, ok := s.TierLog().Segment(2)
	require.False(t, ok, "the manifest retired segment 2: %+v", ms)

	local := startRig(t, Config{DataDir: t.TempDir(), ScanInterval: 10 * time.Millisecond, Registerer: prometheus.NewRegistry()}, core.Config{})
	defer local.stop(t)
	ls, err := local.st.Stream(1)
	require.NoError(t, err)
	_, err = local.c.RetireBelow(ls, 1)
	require.ErrorIs(t, err, ErrRetireRange)
}

// hasJob reports whether a job of kind is queued or running.
func hasJob(c *Coordinator, kind jobKind) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	for j := range c.mu.queued {
		if j.kind == kind {
			return true
		}
	}
	return false
}

// requireNoJob fails if a job of kind is queued or running.
func requireNoJob(t *testing.T, c *Coordinator, kind jobKind) {
	t.Helper()
	require.False(t, hasJob(c, kind), "a %s job is queued or running", kind)
}
