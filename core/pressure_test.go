package core

import (
	"context"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/aof2/aof2/core/types"
	"github.com/aof2/aof2/core/vfs"
	"github.com/aof2/aof2/internal/testwait"
)

// refusingTier refuses admissions while refuse is set and records seals.
type refusingTier struct {
	copyCold
	mu      sync.Mutex
	refuse  bool
	refused []SegmentKey
	sealed  []SegmentID
}

func (r *refusingTier) AdmitSegment(k SegmentKey, _ int64) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.refuse {
		r.refused = append(r.refused, k)
		return &WouldBlock{Kind: Admission, Cause: types.ErrWouldBlock}
	}
	return nil
}

func (r *refusingTier) SegmentSealed(_ *Stream, info SegmentInfo) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.sealed = append(r.sealed, info.ID)
}

func (r *refusingTier) set(refuse bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.refuse = refuse
}

func (r *refusingTier) sealedIDs() []SegmentID {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]SegmentID(nil), r.sealed...)
}

// TestRefusedRolloverSealsFullSegment (issue 12 §3, P1): a rollover whose
// admission is refused seals the full segment anyway, so that it can leave
// tier 0; the writer's next attempt, once admitted, goes on in the next
// segment.
func TestRefusedRolloverSealsFullSegment(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), testwait.Default)
	defer cancel()
	mem := vfs.NewMem()
	tier := &refusingTier{copyCold: copyCold{fs: mem, copies: map[SegmentID][]byte{}}}
	cfg := shortConfig(mem)
	cfg.Tiering = tier
	cfg.InitialSegmentSize = cfg.SegmentSize // whole segments: this is about admission, not growth
	st, err := Open("/data", cfg)
	require.NoError(t, err)
	defer st.Close()
	s, err := st.Stream(1)
	require.NoError(t, err)
	rec := make([]byte, 400<<10)
	_, err = s.Append(rec, AppendOptions{})
	require.NoError(t, err)
	_, err = s.Append(rec, AppendOptions{})
	require.NoError(t, err)
	tier.set(true)
	var blocked error
	for blocked == nil || KindOf(blocked) == Rollover {
		state := s.stateN.wait()
		if _, blocked = s.Append(rec, AppendOptions{}); KindOf(blocked) == Rollover {
			testwait.Recv(t, state, testwait.Default, "the next segment to be prepared")
		}
	}
	require.Equal(t, Admission, KindOf(blocked), "%v", blocked)
	require.Equal(t, []SegmentKey{{Stream: 1, Segment: 2}}, tier.refused)

	// The full segment is being sealed, not left active.
	s.mu.Lock()
	sealing, active := s.mu.sealing, s.mu.active
	s.mu.Unlock()
	require.True(t, active == nil, "the full segment is no longer active")
	require.True(t, sealing != nil && sealing.id == 1, "the full segment went to the sealing slot")
	require.NoError(t, s.Seal(ctx), "waits for the seal in progress")
	// Tiering hears of the seal just after it is published.
	testwait.Until(t, testwait.Default, time.Millisecond, func() bool { return slices.Equal([]SegmentID{1}, tier.sealedIDs()) },
		"the tiering to hear of segment 1's seal (%v)", tier.sealedIDs())
	info, ok := s.Segment(1)
	require.True(t, ok)
	require.NotNil(t, info.Footer)
	require.EqualValues(t, 2, info.Footer.RecordCount)

	tier.set(false)
	id, err := s.AppendCtx(ctx, rec, AppendOptions{})
	require.NoError(t, err)
	require.Equal(t, SegmentID(2), id.Segment())
	require.NoError(t, s.FlushAll(ctx))
	n, err := countRecords(s)
	require.NoError(t, err)
	require.Equal(t, 3, n)
}

// TestSealActive: the coordinator's seal request seals the active segment
// without waiting; a stale id is a no-op; another seal still running is
// ErrSegmentBusy; a closed stream answers its error.
func TestSealActive(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), testwait.Default)
	defer cancel()
	w := vfs.Wrap(vfs.NewMem(), nil)
	st, err := Open("/data", shortConfig(w))
	require.NoError(t, err)
	s, err := st.Stream(1)
	require.NoError(t, err)
	_, err = s.Append([]byte("one"), AppendOptions{})
	require.NoError(t, err)
	require.NoError(t, s.SealActive(1))
	require.NoError(t, s.Seal(ctx), "waits for the seal SealActive started")
	info, ok := s.Segment(1)
	require.True(t, ok)
	require.NotNil(t, info.Footer)
	require.NoError(t, s.SealActive(1), "no longer active: nothing to do")

	// Segment 2 fills and rolls over to 3 while its seal cannot finish
	// (the disk is full for metadata): sealing 3 must wait.
	w.SetInjector(vfs.OnMatch(0, func(op vfs.Op) bool {
		return op.Kind == vfs.OpCreate && !strings.Contains(op.Path, ".seg")
	}, vfs.FaultNoSpace, true))
	big := make([]byte, 400<<10)
	for {
		state := s.stateN.wait()
		id, err := s.Append(big, AppendOptions{})
		if err == nil && id.Segment() == 3 {
			break
		}
		if err != nil {
			require.Equal(t, Rollover, KindOf(err), "%v", err)
			testwait.Recv(t, state, testwait.Default, "the next segment to be prepared")
		}
	}
	require.ErrorIs(t, s.SealActive(3), ErrSegmentBusy)
	w.SetInjector(nil)
	require.NoError(t, s.Seal(ctx))
	require.NoError(t, s.SealActive(3))
	require.NoError(t, s.Seal(ctx))
	info, ok = s.Segment(3)
	require.True(t, ok)
	require.NotNil(t, info.Footer)

	require.NoError(t, st.Close())
	require.ErrorIs(t, s.SealActive(4), ErrClosed)
}

// TestSealActiveIdleStream: SealActive on a stream whose syncer went idle
// (the case segment.max_age is for: a stream nobody writes to) seals the
// segment by itself, with no later append or Seal to start the syncer.
func TestSealActiveIdleStream(t *testing.T) {
	cfg := shortConfig(vfs.NewMem())
	cfg.syncLinger = time.Millisecond
	st, err := Open("/data", cfg)
	require.NoError(t, err)
	defer st.Close()
	s, err := st.Stream(1)
	require.NoError(t, err)
	_, err = s.AppendDurable(context.Background(), []byte("one"), AppendOptions{})
	require.NoError(t, err)
	testwait.Until(t, testwait.Default, time.Millisecond, func() bool { return !s.syncRunning.Load() }, "the syncer to go idle")
	require.NoError(t, s.SealActive(1))
	testwait.Until(t, testwait.Default, time.Millisecond, func() bool {
		info, ok := s.Segment(1)
		return ok && info.Footer != nil
	}, "the seal SealActive started to finish")
}

// TestWaitingForSpace: a stream whose next segment cannot be prepared for
// want of space says so, with a segment's worth to free, and writers get
// WouldBlock(Admission) wrapping ErrNoSpace; once space is back the
// preparer's retry succeeds, the writer goes on and the stream no longer
// waits.
func TestWaitingForSpace(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), testwait.Default)
	defer cancel()
	w := vfs.Wrap(vfs.NewMem(), vfs.OnMatch(0, func(op vfs.Op) bool {
		return op.Kind == vfs.OpCreate && strings.HasSuffix(op.Path, ".seg.prep")
	}, vfs.FaultNoSpace, true))
	cfg := shortConfig(w)
	st, err := Open("/data", cfg)
	require.NoError(t, err)
	defer st.Close()
	s, err := st.Stream(1)
	require.NoError(t, err)
	testwait.Until(t, testwait.Default, time.Millisecond, func() bool {
		_, waiting := s.WaitingForSpace()
		return waiting
	}, "the stream to report it waits for space")
	need, _ := s.WaitingForSpace()
	require.Equal(t, cfg.SegmentSize, need)
	_, err = s.Append([]byte("x"), AppendOptions{})
	require.Equal(t, Admission, KindOf(err), "%v", err)
	require.ErrorIs(t, err, ErrNoSpace)

	w.SetInjector(nil) // space is back
	_, err = s.AppendCtx(ctx, []byte("x"), AppendOptions{})
	require.NoError(t, err)
	_, waiting := s.WaitingForSpace()
	require.False(t, waiting)
}
