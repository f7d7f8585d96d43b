package core

import (
	"context"
	"errors"
	"math/rand/v2"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/aof2/aof2/core/segment"
	"github.com/aof2/aof2/core/vfs"
	"github.com/aof2/aof2/internal/testwait"
)

// The tests below pin what a stream costs: its disk follows the bytes it
// holds (small first segments, the next one prepared only once the active
// one is half full), and an idle stream runs no goroutine of its own. They
// also cover recovery of the small and growing segments this brings.

// prepFiles lists the prepared (not yet activated) files of stream id.
func prepFiles(t *testing.T, fsys vfs.FS, st *Store, id StreamID) []string {
	t.Helper()
	names, err := fsys.List(filepath.Join(st.streamDir(id), "segments"))
	require.NoError(t, err)
	var out []string
	for _, n := range names {
		if segment.IsPrepName(n) {
			out = append(out, n)
		}
	}
	return out
}

func capacities(s *Stream) []int64 {
	var out []int64
	for _, g := range s.SegmentList() {
		out = append(out, g.Capacity)
	}
	return out
}

// TestNewStreamDiskFollowsBytes: on the defaults (64 MiB segments) a new
// stream holding one record allocates one 64 KiB segment and a few
// directory blocks: well under 1 MiB of st_blocks. It used to allocate
// two whole segments (the active one and the prepared next), 128 MiB.
// A restart does not prepare a next segment for a stream that is not
// filling either.
func TestNewStreamDiskFollowsBytes(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	st, err := Open(dir, Config{})
	require.NoError(t, err)
	s, err := st.Stream(1)
	require.NoError(t, err)
	_, err = s.AppendDurable(ctx, []byte("x"), AppendOptions{})
	require.NoError(t, err)

	blocks, _ := diskUsage(t, st.streamDir(1))
	require.Less(t, blocks, int64(1<<20), "a stream with one record allocates %d bytes of disk", blocks)
	require.Equal(t, []int64{segment.MinFileCapacity}, capacities(s))
	require.Empty(t, prepFiles(t, vfs.OS, st, 1), "no next segment prepared for a stream that is not filling")
	require.NoError(t, st.Close())

	st, err = Open(dir, Config{})
	require.NoError(t, err)
	defer st.Close()
	s, err = st.Lookup(1)
	require.NoError(t, err)
	require.Empty(t, prepFiles(t, vfs.OS, st, 1), "nor after a restart")
	blocks, _ = diskUsage(t, st.streamDir(1))
	require.Less(t, blocks, int64(1<<20), "after a restart: %d bytes", blocks)
	_, err = s.AppendDurable(ctx, []byte("y"), AppendOptions{})
	require.NoError(t, err)
	require.Len(t, readAll(t, s), 2)
}

// TestRestartPreparesNothing: opening a store writes no segment file
// (opening is not writing), whether the stream's last segment is sealed or
// its tail is past half (where an append would prepare the next); the
// first append that needs a file prepares it.
func TestRestartPreparesNothing(t *testing.T) {
	for _, tc := range []struct {
		name     string
		records  int // 1 KB each, in a 64 KiB first segment
		seal     bool
		wantNext SegmentID
	}{
		{"last segment sealed", 1, true, 2},
		{"tail past half", 40, false, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			mem := vfs.NewMem()
			st, err := Open("/d", Config{FS: mem})
			require.NoError(t, err)
			s, err := st.Stream(1)
			require.NoError(t, err)
			for i := range tc.records {
				_, err = s.AppendDurable(ctx, payloadFor(i, 1000), AppendOptions{})
				require.NoError(t, err)
			}
			if tc.seal {
				require.NoError(t, s.Seal(ctx))
			}
			require.NoError(t, st.Close())
			dir := filepath.Join("/d", "streams", "1", "segments")
			before, err := mem.List(dir)
			require.NoError(t, err)

			st, err = Open("/d", Config{FS: mem})
			require.NoError(t, err)
			defer st.Close()
			s, err = st.Lookup(1)
			require.NoError(t, err)
			s.mu.Lock()
			preparing := s.mu.next != nil || s.mu.prepRunning
			s.mu.Unlock()
			require.False(t, preparing, "the restart started no preparation")
			after, err := mem.List(dir)
			require.NoError(t, err)
			require.Equal(t, before, after, "no segment file prepared by the restart")
			id, err := s.AppendCtx(ctx, []byte("y"), AppendOptions{})
			require.NoError(t, err)
			require.Equal(t, tc.wantNext, id.Segment())
			require.NoError(t, s.Flush(ctx, id))
			require.Len(t, readAll(t, s), tc.records+1)
		})
	}
}

// TestRestartWithManySealedSegments: from inspectParallel segment files on
// recovery inspects several at a time; the catalog comes out in order and
// every record reads back.
func TestRestartWithManySealedSegments(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	mem := vfs.NewMem()
	cfg := Config{FS: mem, SegmentSize: segment.MinCapacity, Sync: SyncNone}
	st, err := Open("/d", cfg)
	require.NoError(t, err)
	s, err := st.Stream(1)
	require.NoError(t, err)
	n := inspectParallel + 6
	for i := range n {
		_, err := s.AppendCtx(ctx, payloadFor(i, 100+i), AppendOptions{})
		require.NoError(t, err)
		require.NoError(t, s.Seal(ctx))
	}
	require.NoError(t, st.Close())

	st, err = Open("/d", cfg)
	require.NoError(t, err)
	defer st.Close()
	s, err = st.Lookup(1)
	require.NoError(t, err)
	segs := s.SegmentList()
	require.Len(t, segs, n)
	recs := readAll(t, s)
	require.Len(t, recs, n)
	for i, g := range segs {
		require.Equal(t, SegmentID(i+1), g.ID)
		require.Equal(t, payloadFor(i, 100+i), recs[i].Payload)
	}
}

// TestSegmentsGrowToSegmentSize: a stream's segments double from 64 KiB to
// the segment size; the next one is prepared once the active one is half
// full, so appends roll over without waiting; everything reads back, also
// after a restart, which resumes the small active segment it finds.
func TestSegmentsGrowToSegmentSize(t *testing.T) {
	for _, mode := range []segment.WriteMode{segment.WritePwrite, segment.WriteMmap} {
		t.Run(mode.String(), func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), testwait.Default)
			defer cancel()
			mem := vfs.NewMem()
			cfg := Config{FS: mem, SegmentSize: segment.MinCapacity, Sync: SyncNone, WriteMode: mode}
			cfg.fastFill = -1 // doubling only: TestFastStreamsSkipSizes checks the other rule
			st, err := Open("/d", cfg)
			require.NoError(t, err)
			s, err := st.Stream(1)
			require.NoError(t, err)

			var ids []RecordID
			var payloads [][]byte
			add := func() {
				t.Helper()
				p := payloadFor(len(ids), 4000)
				id, err := s.AppendCtx(ctx, p, AppendOptions{})
				require.NoError(t, err)
				ids, payloads = append(ids, id), append(payloads, p)
			}
			add()
			require.Empty(t, prepFiles(t, mem, st, 1), "one record: nothing prepared")
			for activeEnd(s) < segment.MinFileCapacity/2 {
				add()
			}
			testwait.Until(t, testwait.Default, time.Millisecond, func() bool {
				return len(prepFiles(t, mem, st, 1)) == 1
			}, "the next segment to be prepared once the first is half full")
			size, err := fileSize(mem, filepath.Join(st.streamDir(1), "segments", segment.PrepName(2)))
			require.NoError(t, err)
			require.Equal(t, int64(2*segment.MinFileCapacity), size, "the next segment is twice the size")

			for ids[len(ids)-1].Segment() < 7 {
				add()
			}
			require.Equal(t, []int64{64 << 10, 128 << 10, 256 << 10, 512 << 10, 1 << 20, 1 << 20, 1 << 20}, capacities(s))
			check := func(s *Stream) {
				t.Helper()
				recs := readAll(t, s)
				require.Len(t, recs, len(ids))
				for i, r := range recs {
					require.Equal(t, ids[i], r.ID)
					require.Equal(t, payloads[i], r.Payload)
				}
			}
			check(s)
			require.NoError(t, st.Close())

			st, err = Open("/d", cfg)
			require.NoError(t, err)
			defer st.Close()
			s, err = st.Lookup(1)
			require.NoError(t, err)
			check(s)
			rep := st.Recovery()[0]
			require.Equal(t, SegmentID(7), rep.TailSegment)
			require.Equal(t, []int64{64 << 10, 128 << 10, 256 << 10, 512 << 10, 1 << 20, 1 << 20, 1 << 20}, capacities(s))
			add()
			require.Equal(t, SegmentID(7), ids[len(ids)-1].Segment(), "appends go on in the resumed segment")
			check(s)
		})
	}
}

// TestFastStreamsSkipSizes: a stream whose segments fill within fastFill
// of their activation grows them sixteen-fold instead of doubling, from
// its second rollover (one fast fill is not enough: a burst into a new
// stream keeps the doubling), up to SegmentSize; one that fills slowly
// keeps doubling, and so does every stream in cluster mode.
func TestFastStreamsSkipSizes(t *testing.T) {
	doubling := []int64{64 << 10, 128 << 10, 256 << 10, 512 << 10, 1 << 20}
	for _, c := range []struct {
		name         string
		fastFill     time.Duration
		tailReplayed bool // a cluster's nodes cut one log into the same segments
		want         []int64
	}{
		{"fast", time.Hour, false, []int64{64 << 10, 128 << 10, 2 << 20, 4 << 20, 4 << 20}},
		{"slow", time.Nanosecond, false, doubling},
		{"fast, cluster", time.Hour, true, doubling},
	} {
		t.Run(c.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), testwait.Default)
			defer cancel()
			cfg := Config{FS: vfs.NewMem(), SegmentSize: 4 << 20, Sync: SyncNone, TailReplayed: c.tailReplayed}
			cfg.fastFill = c.fastFill
			st, err := Open("/d", cfg)
			require.NoError(t, err)
			defer st.Close()
			s, err := st.Stream(1)
			require.NoError(t, err)
			for i := 0; ; i++ {
				id, err := s.AppendCtx(ctx, payloadFor(i, 4000), AppendOptions{})
				require.NoError(t, err)
				if id.Segment() == SegmentID(len(c.want)) {
					break
				}
			}
			require.Equal(t, c.want, capacities(s))
		})
	}
}

// TestQuietStreamDropsAnOversizedPreparedFile: a stream that filled fast
// has a large next file prepared; sealed (as segment.max_age seals a stream
// that went quiet) before it needed it, the file is replaced by one sized
// for the bytes the stream holds.
func TestQuietStreamDropsAnOversizedPreparedFile(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), testwait.Default)
	defer cancel()
	mem := vfs.NewMem()
	cfg := Config{FS: mem, SegmentSize: 4 << 20, Sync: SyncNone}
	cfg.fastFill = time.Hour
	st, err := Open("/d", cfg)
	require.NoError(t, err)
	defer st.Close()
	s, err := st.Stream(1)
	require.NoError(t, err)
	i := 0
	for ; ; i++ {
		id, err := s.AppendCtx(ctx, payloadFor(i, 4000), AppendOptions{})
		require.NoError(t, err)
		if id.Segment() == 2 && 2*(activeEnd(s)-segment.HeaderSize) >= segment.DataEnd(128<<10)-segment.HeaderSize {
			break // the 128 KiB second segment is half full: its successor gets prepared
		}
	}
	prepared := filepath.Join(st.streamDir(1), "segments", segment.PrepName(3))
	sizeIs := func(want int64) func() bool {
		return func() bool {
			n, err := fileSize(mem, prepared)
			return err == nil && n == want
		}
	}
	testwait.Until(t, testwait.Default, time.Millisecond, sizeIs(2<<20), "a 2 MiB file prepared for a stream that fills fast")
	require.NoError(t, s.Seal(ctx))
	testwait.Until(t, testwait.Default, time.Millisecond, sizeIs(256<<10), "after the seal, a file sized for what the stream holds (twice its newest segment's bytes)")
	id, err := s.AppendCtx(ctx, payloadFor(i+1, 4000), AppendOptions{})
	require.NoError(t, err)
	require.Equal(t, SegmentID(3), id.Segment())
	require.Equal(t, int64(256<<10), capacities(s)[2])
}

func activeEnd(s *Stream) int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.mu.active.w.End()
}

func fileSize(fsys vfs.FS, path string) (int64, error) {
	f, err := fsys.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	return f.Size()
}

// TestRecordLargerThanThePreparedSegment: a record that does not fit the
// prepared file gets a file that does. Append does not wait for it (it
// answers WouldBlock(Rollover)); AppendCtx does.
func TestRecordLargerThanThePreparedSegment(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), testwait.Default)
	defer cancel()
	st, err := Open("/d", Config{FS: vfs.NewMem(), SegmentSize: segment.MinCapacity})
	require.NoError(t, err)
	defer st.Close()
	s, err := st.Stream(1)
	require.NoError(t, err)
	big := payloadFor(1, 200<<10)
	_, err = s.Append(big, AppendOptions{})
	require.Equal(t, Rollover, KindOf(err), "the prepared 64 KiB file cannot take 200 KiB: %v", err)
	id, err := s.AppendCtx(ctx, big, AppendOptions{})
	require.NoError(t, err)
	require.Equal(t, SegmentID(1), id.Segment(), "the too-small file was replaced, not skipped")
	require.Equal(t, []int64{256 << 10}, capacities(s))

	largest := payloadFor(2, s.MaxRecordSize())
	id, err = s.AppendCtx(ctx, largest, AppendOptions{})
	require.NoError(t, err)
	require.Equal(t, SegmentID(2), id.Segment())
	require.Equal(t, []int64{256 << 10, segment.MinCapacity}, capacities(s))
	require.NoError(t, s.FlushAll(ctx))
	recs := readAll(t, s)
	require.Len(t, recs, 2)
	require.Equal(t, largest, recs[1].Payload)
}

// TestSegmentIDsNeverReused: ids go up by one per activated segment,
// across replaced prepared files, seals and restarts; each id names one
// file, and every file's header carries the id of its name.
func TestSegmentIDsNeverReused(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), testwait.Default)
	defer cancel()
	mem := vfs.NewMem()
	cfg := Config{FS: mem, SegmentSize: segment.MinCapacity, Sync: SyncAlways}
	var all []RecordID
	step := func(st *Store, sizes ...int) {
		t.Helper()
		s, err := st.Stream(1)
		require.NoError(t, err)
		for _, n := range sizes {
			id, err := s.AppendCtx(ctx, payloadFor(len(all), n), AppendOptions{})
			require.NoError(t, err)
			if len(all) > 0 {
				prev := all[len(all)-1].Segment()
				require.True(t, id.Segment() == prev || id.Segment() == prev+1, "segment %d after %d", id.Segment(), prev)
			}
			all = append(all, id)
		}
		require.NoError(t, s.FlushAll(ctx))
	}
	st, err := Open("/d", cfg)
	require.NoError(t, err)
	step(st, 40000)    // segment 1 (64 KiB) past half: segment 2 prepared at 128 KiB
	step(st, 300<<10)  // too large for it: replaced by a 512 KiB file, still id 2
	step(st, 100, 100) // segment 2
	s, err := st.Stream(1)
	require.NoError(t, err)
	require.NoError(t, s.Seal(ctx))
	step(st, 100) // segment 3, after the seal
	require.NoError(t, st.Close())
	for range 3 {
		st, err = Open("/d", cfg)
		require.NoError(t, err)
		step(st, 100)
		s, err = st.Stream(1)
		require.NoError(t, err)
		require.NoError(t, s.Seal(ctx))
		require.NoError(t, st.Close())
	}
	st, err = Open("/d", cfg)
	require.NoError(t, err)
	defer st.Close()
	s, err = st.Lookup(1)
	require.NoError(t, err)
	require.Len(t, readAll(t, s), len(all))
	segs := s.SegmentList()
	require.Equal(t, all[len(all)-1].Segment(), segs[len(segs)-1].ID)
	for i, g := range segs {
		require.Equal(t, SegmentID(i+1), g.ID, "ids are consecutive from 1")
	}
	require.Equal(t, int64(512<<10), segs[1].Capacity)
	names, err := mem.List(filepath.Join(st.streamDir(1), "segments"))
	require.NoError(t, err)
	seen := map[SegmentID]string{}
	for _, n := range names {
		name, ok := segment.ParseFileName(n)
		if !ok {
			continue
		}
		require.NotContains(t, seen, name.SegmentID, "%s and %s share an id", seen[name.SegmentID], n)
		seen[name.SegmentID] = n
		info, err := segment.Inspect(mem, filepath.Join(st.streamDir(1), "segments", n), name, 1)
		require.NoError(t, err)
		require.Equal(t, name.SegmentID, info.Header.SegmentID)
	}
	require.Len(t, seen, len(segs))
}

// TestPowerLossInSmallSegment: power is lost while the active segment is
// a 64 KiB one (unsynced bytes partly kept, sometimes torn); recovery
// resumes it with every acknowledged record, and the stream grows on from
// there.
func TestPowerLossInSmallSegment(t *testing.T) {
	for seed := range uint64(8) {
		for _, mode := range []segment.WriteMode{segment.WritePwrite, segment.WriteMmap} {
			ctx := context.Background()
			rng := rand.New(rand.NewPCG(seed, 77))
			mem := vfs.NewMem()
			cfg := Config{FS: mem, SegmentSize: segment.MinCapacity, Sync: SyncNone, WriteMode: mode}
			st, err := Open("/d", cfg)
			require.NoError(t, err)
			s, err := st.Stream(1)
			require.NoError(t, err)
			o := &oracle{}
			for i := range 10 {
				p := payloadFor(i, 1000)
				id, err := s.Append(p, AppendOptions{})
				require.NoError(t, err)
				n := o.appended(id, p)
				if i%3 == 0 {
					require.NoError(t, s.Flush(ctx, id))
					o.ack(n)
				}
			}
			clone := mem.CrashClone(vfs.CrashOptions{Rand: rng, KeepProb: rng.Float64(), Tear: seed%2 == 0})
			_ = st.Close()

			cfg.FS = clone
			st, err = Open("/d", cfg)
			require.NoError(t, err, "seed %d %v", seed, mode)
			s, err = st.Lookup(1)
			require.NoError(t, err)
			rep := st.Recovery()[0]
			require.Equal(t, SegmentID(1), rep.TailSegment, "seed %d %v", seed, mode)
			require.Equal(t, []int64{segment.MinFileCapacity}, capacities(s))
			require.NoError(t, o.check(s), "seed %d %v", seed, mode)
			n, err := countRecords(s)
			require.NoError(t, err)
			o.truncateTo(n)
			for i := range 100 {
				p := payloadFor(100+i, 1000)
				id, err := s.AppendDurable(ctx, p, AppendOptions{})
				require.NoError(t, err)
				o.ack(o.appended(id, p))
			}
			// The crash was unclean: the tail was sealed at recovery and
			// appends went on in a new segment (sized from what the tail
			// holds), then one twice its size.
			require.Equal(t, []int64{64 << 10, 64 << 10, 128 << 10}, capacities(s), "seed %d %v", seed, mode)
			require.NoError(t, o.check(s))
			require.NoError(t, st.Close())
		}
	}
}

// TestUnsealedSmallSegmentIsResealed: the seal of a 64 KiB segment fails
// after the 128 KiB one after it took records; recovery reseals the small
// one (its records line up with the next header) and keeps both.
func TestUnsealedSmallSegmentIsResealed(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), testwait.Default)
	defer cancel()
	mem := vfs.NewMem()
	first := segment.FileName(1, 0, 0)[:20] // the prepared file's name too: the wrapper knows files by it
	fsys := vfs.Wrap(mem, vfs.InjectorFunc(func(op vfs.Op) vfs.Fault {
		if op.Kind == vfs.OpWrite && strings.HasPrefix(filepath.Base(op.Path), first) && op.Off == segment.DataEnd(segment.MinFileCapacity) {
			return vfs.FaultEIO // the footer of segment 1
		}
		return vfs.NoFault
	}))
	cfg := Config{FS: fsys, SegmentSize: segment.MinCapacity, Sync: SyncAlways, WriteMode: segment.WritePwrite}
	st, err := Open("/d", cfg)
	require.NoError(t, err)
	s, err := st.Stream(1)
	require.NoError(t, err)
	o := &oracle{}
	for i := 0; ; i++ {
		p := payloadFor(i, 3000)
		id, err := s.AppendCtx(ctx, p, AppendOptions{})
		if err != nil {
			require.ErrorIs(t, err, ErrStreamFailed)
			break
		}
		n := o.appended(id, p)
		if err := s.Flush(ctx, id); err != nil {
			require.ErrorIs(t, err, ErrStreamFailed)
			break
		}
		o.ack(n)
		if id.Segment() == 2 {
			// The seal of segment 1 runs after the round that acknowledged
			// this record: wait for it to fail.
			testwait.Until(t, testwait.Default, time.Millisecond, func() bool { return s.Err() != nil },
				"the seal of segment 1 to fail")
		}
	}
	_ = st.Close()

	cfg.FS = mem
	st, err = Open("/d", cfg)
	require.NoError(t, err)
	defer st.Close()
	rep := st.Recovery()[0]
	require.Equal(t, []SegmentID{1}, rep.Repaired, "%+v", rep)
	require.Equal(t, SegmentID(2), rep.TailSegment)
	s, err = st.Lookup(1)
	require.NoError(t, err)
	// The preparer may have reserved segment 3 before the stream stopped:
	// its id is then never used, an empty placeholder takes it.
	next := SegmentID(3 + len(rep.Placeholders))
	require.Subset(t, []SegmentID{3}, rep.Placeholders, "%+v", rep)
	require.Equal(t, []int64{64 << 10, 128 << 10}, capacities(s)[:2], "%+v", rep)
	require.Len(t, capacities(s), 2+len(rep.Placeholders))
	require.NotNil(t, s.SegmentList()[0].Footer, "segment 1 resealed")
	require.NoError(t, o.check(s))
	id, err := s.AppendDurable(ctx, []byte("after"), AppendOptions{})
	require.NoError(t, err)
	// The stream stopped uncleanly: its tail is sealed at recovery and
	// appends go on in the next segment (docs/tiering.md#damage).
	require.Equal(t, next, id.Segment())
}

// TestIdleStreamRunsNoGoroutine: the syncer and the preparer exit once
// there is nothing to do, and start again with the next work, under every
// sync policy.
func TestIdleStreamRunsNoGoroutine(t *testing.T) {
	for _, policy := range []SyncPolicy{SyncAlways, SyncInterval, SyncNone} {
		t.Run(policy.String(), func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), testwait.Default)
			defer cancel()
			cfg := Config{FS: vfs.NewMem(), SegmentSize: segment.MinCapacity, Sync: policy, syncLinger: time.Millisecond}
			st, err := Open("/d", cfg)
			require.NoError(t, err)
			defer st.Close()
			s, err := st.Stream(1)
			require.NoError(t, err)
			idle := func() bool {
				s.mu.Lock()
				defer s.mu.Unlock()
				return !s.syncRunning.Load() && !s.mu.prepRunning
			}
			for round := range 3 {
				var last RecordID
				for i := range 20 {
					last, err = s.Append(payloadFor(i, 3000), AppendOptions{})
					require.NoError(t, err)
				}
				if policy == SyncNone {
					require.NoError(t, s.Flush(ctx, last))
				} else {
					// Nobody flushes: the syncer, started by the appends,
					// makes them durable on its own.
					testwait.Until(t, testwait.Default, time.Millisecond, func() bool { return s.durableMark.Load() > uint64(last) },
						"round %d: the syncer to make the appends durable", round)
				}
				testwait.Until(t, testwait.Default, time.Millisecond, idle, "round %d: the stream's goroutines to exit", round)
			}
			require.NoError(t, s.Seal(ctx))
			testwait.Until(t, testwait.Default, time.Millisecond, idle, "the goroutines to exit after a seal")
		})
	}
}

// TestSyncerStartStopUnderLoad: with syncers exiting as soon as they are
// idle, concurrent durable appenders never lose a wake-up; run it with
// -race.
func TestSyncerStartStopUnderLoad(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), testwait.Default)
	defer cancel()
	cfg := Config{FS: vfs.NewMem(), SegmentSize: segment.MinCapacity, Sync: SyncAlways, syncLinger: time.Nanosecond}
	st, err := Open("/d", cfg)
	require.NoError(t, err)
	defer st.Close()
	s, err := st.Stream(1)
	require.NoError(t, err)
	const writers, each = 6, 150
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				if _, err := s.AppendDurable(ctx, payloadFor(w*each+i, 1+(i*97)%5000), AppendOptions{}); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	require.Len(t, readAll(t, s), writers*each)
	require.Greater(t, len(s.SegmentList()), 3, "the load rolled over several growing segments")
	require.False(t, errors.Is(s.Err(), ErrStreamFailed))
}
