package core

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/aof2/aof2/core/vfs"
)

func TestStreamInfo(t *testing.T) {
	ctx := context.Background()
	cfg := smallConfig(vfs.NewMem())
	cfg.Sync = SyncNone
	st, err := Open("/data", cfg)
	require.NoError(t, err)
	defer st.Close()
	s, err := st.Stream(3)
	require.NoError(t, err)

	in := s.Info()
	require.Equal(t, StreamID(3), in.ID)
	require.Zero(t, in.Records)

	var last RecordID
	for i := range 200 {
		last, err = s.AppendCtx(ctx, payloadFor(i, 20000), AppendOptions{})
		require.NoError(t, err)
	}
	in = s.Info()
	require.Equal(t, uint64(200), in.Records)
	require.Less(t, in.DurableRecords, in.Records, "sync none: nothing flushed yet")
	require.Greater(t, in.Segments, 2)
	require.Equal(t, in.Segments, in.Resident)
	require.GreaterOrEqual(t, in.Sealed, in.Segments-2, "at most two unfinalised segments")

	require.NoError(t, s.Flush(ctx, last))
	in = s.Info()
	require.Equal(t, in.Records, in.DurableRecords)
	require.Equal(t, in.Bytes, in.DurableBytes)
	require.Greater(t, uint64(in.DurableMark), uint64(last))
	require.NoError(t, in.Failed)
}

// TestRecordTimestamps: the default record clock follows the wall clock
// (taken at Open, advanced monotonically) and never goes backwards; an
// explicit Now is used as given.
func TestRecordTimestamps(t *testing.T) {
	cfg := smallConfig(vfs.NewMem())
	st, err := Open("/data", cfg)
	require.NoError(t, err)
	defer st.Close()
	s, err := st.Stream(1)
	require.NoError(t, err)
	var last int64
	for i := range 1000 {
		before := time.Now().UnixNano()
		_, err := s.Append(payloadFor(i, 10), AppendOptions{})
		require.NoError(t, err)
		ts, _ := s.lastTimestamp()
		require.GreaterOrEqual(t, ts, last)
		require.InDelta(t, before, ts, float64(50*time.Millisecond))
		last = ts
	}

	fixed := time.Unix(1_700_000_000, 0)
	cfg = smallConfig(vfs.NewMem())
	cfg.Now = func() time.Time { return fixed }
	st2, err := Open("/data", cfg)
	require.NoError(t, err)
	defer st2.Close()
	s, err = st2.Stream(1)
	require.NoError(t, err)
	_, err = s.Append([]byte("x"), AppendOptions{})
	require.NoError(t, err)
	ts, _ := s.lastTimestamp()
	require.Equal(t, fixed.UnixNano(), ts)
}

func (s *Stream) lastTimestamp() (int64, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.mu.active == nil {
		return 0, false
	}
	_, ts, _ := s.mu.active.w.Last()
	return ts, true
}
