package core

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/aof2/aof2/core/vfs"
)

// TestReaderAtStartOnEmptyFollowerStream: a reader (or tailer) opened
// AtStart on an empty follower stream starts on the first followed
// segment, whatever record it starts at (the writer's retention may have
// dropped the head: replica firstLive); before, it looked up ordinal 0,
// found nothing and returned io.EOF for ever.
func TestReaderAtStartOnEmptyFollowerStream(t *testing.T) {
	ctx := context.Background()
	mem := vfs.NewMem()
	cold := &copyCold{fs: mem, copies: map[SegmentID][]byte{}}

	// The writer: two sealed segments of 5 records each.
	wcfg := smallConfig(mem)
	wcfg.Tiering = cold
	w, err := Open("/w", wcfg)
	require.NoError(t, err)
	ws, err := w.Stream(1)
	require.NoError(t, err)
	var want []string
	for seg := range 2 {
		for i := range 5 {
			p := fmt.Sprintf("segment %d record %d", seg+1, i)
			_, err := ws.AppendDurable(ctx, []byte(p), AppendOptions{})
			require.NoError(t, err)
			want = append(want, p)
		}
		require.NoError(t, ws.Seal(ctx))
	}
	cold.save(t, ws, 1)
	cold.save(t, ws, 2)
	require.NoError(t, w.Close())

	// The replica: its stream is empty; it follows from segment 2 (the
	// writer's retention dropped segment 1).
	rcfg := smallConfig(mem)
	rcfg.Tiering = cold
	rcfg.Follower = func() error { return errors.New("replica") }
	r, err := Open("/r", rcfg)
	require.NoError(t, err)
	defer r.Close()
	rs, err := r.FollowStream(1)
	require.NoError(t, err)

	early, err := rs.NewReader(AtStart())
	require.NoError(t, err)
	defer early.Close()
	tail, err := rs.Tail(AtStart())
	require.NoError(t, err)
	defer tail.Close()

	h, f, err := cold.Describe(ctx, SegmentKey{Stream: 1, Segment: 2})
	require.NoError(t, err)
	require.Equal(t, uint64(5), h.BaseRecord)
	require.NoError(t, rs.Follow(ctx, h, f, Remote{Key: "k"}))

	// A reader opened now reads segment 2.
	late, err := rs.NewReader(AtStart())
	require.NoError(t, err)
	defer late.Close()
	rec, err := late.NextCtx(ctx)
	require.NoError(t, err)
	require.Equal(t, want[5], string(rec.Payload))
	require.Equal(t, uint64(5), rec.Ordinal)

	// The reader opened before the first segment must see it too.
	rec, err = early.NextCtx(ctx)
	require.NotErrorIs(t, err, io.EOF, "the reader opened AtStart on the empty stream never sees the followed segment")
	require.NoError(t, err)
	require.Equal(t, want[5], string(rec.Payload))

	trec, err := tail.TryNext()
	require.NoError(t, err, "the tailer opened AtStart on the empty stream never sees the followed segment")
	require.Equal(t, want[5], string(trec.Payload))
}

// TestConcurrentSeekAndTail: an appender (pwrite, rollovers) runs
// while readers open at random ordinals and tailers follow; every record
// returned must carry the ordinal its payload names, and a tailer's
// record must be durable (or published) when returned.
func TestConcurrentSeekAndTail(t *testing.T) {
	for _, mode := range []string{"pwrite", "mmap"} {
		t.Run(mode, func(t *testing.T) {
			ctx := context.Background()
			mem := vfs.NewMem()
			cfg := smallConfig(mem)
			cfg.Sync = SyncInterval
			cfg.FlushInterval = 200 * 1000 // 0.2ms
			cfg.InitialSegmentSize = 64 << 10
			cfg.SegmentTargetBytes = 40 << 10
			if mode == "mmap" {
				cfg.WriteMode = 1
			}
			st, err := Open("/d", cfg)
			require.NoError(t, err)
			defer st.Close()
			s, err := st.Stream(1)
			require.NoError(t, err)
			n := uint64(8000)
			if testing.Short() {
				n = 2000
			}
			done := make(chan struct{})
			go func() {
				defer close(done)
				for i := range n {
					p := fmt.Appendf(nil, "%08d-%s", i, make([]byte, i%300))
					for {
						_, err := s.Append(p, AppendOptions{})
						if err == nil {
							break
						}
						if !errors.Is(err, ErrWouldBlock) {
							t.Error(err)
							return
						}
					}
				}
			}()
			check := func(rec Record) error {
				var k uint64
				if _, err := fmt.Sscanf(string(rec.Payload[:8]), "%08d", &k); err != nil {
					return fmt.Errorf("payload %q: %v", rec.Payload[:8], err)
				}
				if k != rec.Ordinal {
					return fmt.Errorf("record %s has ordinal %d but payload of record %d", rec.ID, rec.Ordinal, k)
				}
				return nil
			}
			errs := make(chan error, 64)
			var wg sync.WaitGroup
			for g := range 4 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					seed := uint64(g + 1)
					for {
						select {
						case <-done:
							return
						default:
						}
						seed = seed*6364136223846793005 + 1442695040888963407
						s.mu.Lock()
						total := s.mu.records
						s.mu.Unlock()
						ord := (seed >> 33) % (total + 1)
						r, err := s.NewReader(AtOrdinal(ord))
						if err != nil {
							errs <- fmt.Errorf("NewReader(%d): %w", ord, err)
							return
						}
						for j := 0; j < 50; j++ {
							rec, err := r.Next()
							if err == io.EOF {
								break
							}
							if err == nil {
								err = check(rec)
							}
							if err == nil && j == 0 && rec.Ordinal != ord {
								err = fmt.Errorf("reader at ordinal %d returned ordinal %d first", ord, rec.Ordinal)
							}
							if err != nil {
								errs <- err
								r.Close()
								return
							}
						}
						r.Close()
					}
				}()
			}
			for range 2 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					tl, err := s.Tail(AtStart())
					if err != nil {
						errs <- err
						return
					}
					defer tl.Close()
					want := uint64(0)
					for want < n {
						rec, err := tl.TryNext()
						if KindOf(err) == Tail {
							select {
							case <-done:
								if s.durableRecs.Load() >= n {
									_ = s.FlushAll(ctx)
								}
							default:
							}
							continue
						}
						if err == nil {
							err = check(rec)
						}
						if err == nil && rec.Ordinal != want {
							err = fmt.Errorf("tail: ordinal %d, want %d", rec.Ordinal, want)
						}
						if err == nil && uint64(rec.ID) >= max(s.durableMark.Load(), s.publishedMark.Load()) {
							err = fmt.Errorf("tail returned %s, not durable (mark %s)", rec.ID, RecordID(s.durableMark.Load()))
						}
						if err != nil {
							errs <- err
							return
						}
						want++
					}
				}()
			}
			<-done
			require.NoError(t, s.FlushAll(ctx))
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Error(err)
			}
		})
	}
}
