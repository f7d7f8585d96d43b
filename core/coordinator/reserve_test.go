package coordinator

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"

	"github.com/aof2/aof2/conformance/fake"
	"github.com/aof2/aof2/core"
	"github.com/aof2/aof2/core/tier2"
	"github.com/aof2/aof2/core/types"
	"github.com/aof2/aof2/internal/testwait"
)

// reserveRecord is the record the tests below write: about ten to a
// segSize segment, so that they go through many segments quickly.
var reserveRecord = make([]byte, 100<<10)

// startReserveRig is a rig whose reservations cover r segment ids, on a
// tier 2 over backend that retries and recovers quickly.
func startReserveRig(t *testing.T, dir string, backend *fake.Backend, r int) *rig {
	t.Helper()
	remote, err := tier2.New(backend, tier2.Config{Logger: hclog.NewNullLogger(), AttemptTimeout: time.Second,
		Backoff: tier2.Backoff{Initial: time.Millisecond, Max: 5 * time.Millisecond, Attempts: 2}, Breaker: tier2.BreakerConfig{Cooldown: 20 * time.Millisecond}})
	require.NoError(t, err)
	return startRig(t, Config{DataDir: dir, Tier2: remote, ScanInterval: 10 * time.Millisecond, ReserveSegments: r}, core.Config{})
}

// reservationIDs lists the reservation objects tier 2 (the fake) holds of
// a stream, ascending.
func reservationIDs(t *testing.T, r *rig, backend *fake.Backend, stream types.StreamID) []types.SegmentID {
	t.Helper()
	var ids []types.SegmentID
	for _, key := range backend.Keys() {
		ref, err := r.remote.Layout().Parse(key)
		if err == nil && ref.Kind == tier2.KindReservation && ref.Stream == stream {
			ids = append(ids, types.SegmentID(ref.ID))
		}
	}
	slices.Sort(ids)
	return ids
}

// newestSegment is the id of the stream's newest segment (0: none).
func newestSegment(s *core.Stream) types.SegmentID {
	segs := s.SegmentList()
	if len(segs) == 0 {
		return 0
	}
	return segs[len(segs)-1].ID
}

// reserveNow has the coordinator reserve k's segment id in tier 2, as a
// stream's first append would, without writing: tests that then take
// tier 2 away write within that reservation.
func reserveNow(t *testing.T, c *Coordinator, k types.SegmentKey) {
	t.Helper()
	testwait.Until(t, testwait.Default, pollTick, func() bool { return c.admitReserved(k) == nil },
		"segment %d of stream %d reserved in tier 2", k.Segment, k.Stream)
}

func reservationsStored(r *rig, outcome string) float64 {
	return testutil.ToFloat64(r.c.m.reservations.WithLabelValues(outcome))
}

// TestReservationsCoverEverySegment: a stream writing many segments only
// ever activates ids tier 2 holds a reservation through, with one
// reservation per ReserveSegments segments (made ahead, in the
// background), not one per segment; each deletes the one it supersedes.
func TestReservationsCoverEverySegment(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), testwait.Default)
	defer cancel()
	const R = 4
	backend := fake.New(fake.Options{})
	r := startReserveRig(t, t.TempDir(), backend, R)
	defer r.close(t)
	s, err := r.st.Stream(1)
	require.NoError(t, err)
	for len(s.SegmentList()) < 30 {
		_, err := s.AppendCtx(ctx, reserveRecord, core.AppendOptions{})
		require.NoError(t, err)
		top := newestSegment(s)
		ids := reservationIDs(t, r, backend, 1)
		require.NotEmpty(t, ids, "segment %d active without a reservation", top)
		require.LessOrEqual(t, top, ids[len(ids)-1], "segment %d active beyond the highest reservation", top)
	}
	top := newestSegment(s)
	for _, info := range s.SegmentList() {
		require.LessOrEqual(t, info.ID, top)
	}
	stored := reservationsStored(r, "ok")
	require.GreaterOrEqual(t, stored, float64(top)/R, "ids 1..%d need about %d reservations", top, top/R)
	require.LessOrEqual(t, stored, float64(top)/R+2, "one reservation per %d segments, not one per segment", R)
	require.Zero(t, reservationsStored(r, "failed"))
	testwait.Until(t, testwait.Default, pollTick, func() bool {
		return len(reservationIDs(t, r, backend, 1)) == 1
	}, "superseded reservations deleted: %v left", reservationIDs(t, r, backend, 1))
	require.GreaterOrEqual(t, reservationIDs(t, r, backend, 1)[0], top)
}

// TestReservationPrecedesActivation: a segment id is activated only once
// tier 2 holds its reservation. With tier 2 refusing every Put, a new
// stream's first segment waits (WouldBlock(Admission), ErrReservationPending);
// later, writes go on within the reservation and the first segment past
// it waits; each time, once tier 2 is back, the scan's retry lets the
// writer through.
func TestReservationPrecedesActivation(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), testwait.Default)
	defer cancel()
	const R = 2
	backend := fake.New(fake.Options{})
	r := startReserveRig(t, t.TempDir(), backend, R)
	defer r.close(t)
	s, err := r.st.Stream(1) // tier 2 is listed while it answers
	require.NoError(t, err)
	putsFail := fake.Fault{Mode: fake.ServerError, Ops: []fake.Op{fake.OpPut, fake.OpPutFile}}
	require.NoError(t, backend.Inject(putsFail))

	short, cancelShort := context.WithTimeout(ctx, 300*time.Millisecond)
	_, err = s.AppendCtx(short, reserveRecord, core.AppendOptions{})
	cancelShort()
	require.ErrorIs(t, err, context.DeadlineExceeded)
	require.ErrorIs(t, err, ErrReservationPending)
	require.Equal(t, core.Admission, core.KindOf(err))
	require.Empty(t, s.SegmentList(), "no segment is activated before its id is reserved")
	require.Empty(t, reservationIDs(t, r, backend, 1))
	require.Positive(t, reservationsStored(r, "failed"))

	backend.ClearFaults()
	id, err := s.AppendCtx(ctx, reserveRecord, core.AppendOptions{})
	require.NoError(t, err, "tier 2 is back: the scan retries the reservation")
	require.Equal(t, core.SegmentID(1), id.Segment())
	require.Equal(t, []types.SegmentID{R}, reservationIDs(t, r, backend, 1))

	require.NoError(t, backend.Inject(putsFail))
	var blocked error
	for blocked == nil {
		_, blocked = appendPastRollover(t, s, reserveRecord)
		require.LessOrEqual(t, newestSegment(s), types.SegmentID(R), "a segment past the reservation was activated")
	}
	require.ErrorIs(t, blocked, ErrReservationPending)
	require.Equal(t, core.Admission, core.KindOf(blocked))
	require.ErrorContains(t, blocked, "stream 1, segment 3")
	require.Equal(t, types.SegmentID(R), newestSegment(s), "writes went on within the reservation")
	require.Equal(t, []types.SegmentID{R}, reservationIDs(t, r, backend, 1))

	backend.ClearFaults()
	id, err = s.AppendCtx(ctx, reserveRecord, core.AppendOptions{})
	require.NoError(t, err, "tier 2 is back: the scan retries the reservation")
	require.Equal(t, core.SegmentID(R+1), id.Segment())
	ids := reservationIDs(t, r, backend, 1)
	require.NotEmpty(t, ids)
	require.GreaterOrEqual(t, ids[len(ids)-1], id.Segment())
}

// TestReservationsLearnedAtRestart: reconciliation at start learns the
// highest reservation tier 2 holds (a segment it covers is admitted with
// no new reservation) and deletes the ones below it.
func TestReservationsLearnedAtRestart(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), testwait.Default)
	defer cancel()
	const R = 4
	dir := t.TempDir()
	backend := fake.New(fake.Options{})
	r := startReserveRig(t, dir, backend, R)
	s, err := r.st.Stream(1)
	require.NoError(t, err)
	for newestSegment(s) < 2 {
		_, err := s.AppendCtx(ctx, reserveRecord, core.AppendOptions{})
		require.NoError(t, err)
	}
	top := newestSegment(s)
	require.NoError(t, s.FlushAll(ctx))
	// Superseded reservations a crash left, and a high one.
	for _, upto := range []types.SegmentID{7, 9, 1000} {
		_, err := r.remote.Reserve(ctx, 1, upto, 16)
		require.NoError(t, err)
	}
	r.close(t)

	r = startReserveRig(t, dir, backend, R)
	defer r.close(t)
	recs := r.c.Reconciliations()
	require.Len(t, recs, 1)
	require.NoError(t, recs[0].Err)
	require.Equal(t, types.SegmentID(1000), recs[0].Reserved)
	require.Equal(t, []types.SegmentID{1000}, reservationIDs(t, r, backend, 1), "superseded reservations deleted at start")

	s, err = r.st.Lookup(1)
	require.NoError(t, err)
	for newestSegment(s) < top+3 {
		_, err := s.AppendCtx(ctx, reserveRecord, core.AppendOptions{})
		require.NoError(t, err)
	}
	require.Zero(t, reservationsStored(r, "ok"), "segments the learnt reservation covers need no new one")
	require.Equal(t, []types.SegmentID{1000}, reservationIDs(t, r, backend, 1))
}

// TestAdmissionWithoutTier2: without a tier 2 nothing is reserved and
// admission is the budget's alone.
func TestAdmissionWithoutTier2(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), testwait.Default)
	defer cancel()
	r := startRig(t, Config{DataDir: t.TempDir(), ScanInterval: 10 * time.Millisecond, ReserveSegments: 2}, core.Config{})
	defer r.stop(t)
	require.NoError(t, r.c.AdmitSegment(sk(9, 5), segSize), "an id far ahead is admitted")
	s, err := r.st.Stream(1)
	require.NoError(t, err)
	for newestSegment(s) < 5 {
		_, err := s.AppendCtx(ctx, reserveRecord, core.AppendOptions{})
		require.NoError(t, err)
	}
	r.c.rsv.mu.Lock()
	require.Empty(t, r.c.rsv.m)
	r.c.rsv.mu.Unlock()
	require.Zero(t, reservationsStored(r, "ok")+reservationsStored(r, "failed"))
}

// TestReserveSegmentsConfig: 0 is the default, 16; a negative count is a
// configuration error.
func TestReserveSegmentsConfig(t *testing.T) {
	cfg, err := Config{DataDir: t.TempDir()}.withDefaults()
	require.NoError(t, err)
	require.Equal(t, 16, cfg.ReserveSegments)
	_, err = Config{DataDir: t.TempDir(), ReserveSegments: -1}.withDefaults()
	var ce *types.ConfigError
	require.ErrorAs(t, err, &ce)
	require.Equal(t, "coordinator.reserve_segments", ce.Key)
}
