package core

import (
	"context"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/aof2/aof2/core/manifest"
	"github.com/aof2/aof2/core/segment"
	"github.com/aof2/aof2/core/vfs"
)

// TestRewindDamagedTail: with Config.TailReplayed, a damaged tail is taken
// back to its last intact record before the damage; the caller's log
// appending the same records again gives each the id it had, the dropped
// bytes are kept in a quarantine file, the manifest records the rewind,
// and the next open finds nothing damaged.
func TestRewindDamagedTail(t *testing.T) {
	for _, tc := range []struct {
		name   string
		damage func(t *testing.T, fsys vfs.FS, path string, ids []RecordID)
		bad    int // the first record the damage took
	}{
		{"flipped payload", func(t *testing.T, fsys vfs.FS, path string, ids []RecordID) {
			off := int(ids[60].Offset()) + segment.RecordHeaderSize + 9
			damageFile(t, fsys, path, func(b []byte) []byte { b[off] ^= 0x10; return b })
		}, 60},
		{"zeroed sector", func(t *testing.T, fsys vfs.FS, path string, ids []RecordID) {
			off := (int(ids[30].Offset()) + 511) / 512 * 512
			damageFile(t, fsys, path, func(b []byte) []byte { clear(b[off : off+512]); return b })
		}, -1},
		{"first record", func(t *testing.T, fsys vfs.FS, path string, ids []RecordID) {
			off := int(ids[0].Offset()) + 3
			damageFile(t, fsys, path, func(b []byte) []byte { b[off] ^= 0x01; return b })
		}, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			mem := vfs.NewMem()
			cfg := Config{FS: mem, SegmentSize: segment.MinCapacity, InitialSegmentSize: segment.MinCapacity, Sync: SyncNone,
				TailReplayed: true, RequireExtID: true}
			st, err := Open("/d", cfg)
			require.NoError(t, err)
			s, err := st.Stream(1)
			require.NoError(t, err)
			// Record i is the log's: two records per entry from 10 on.
			appendRecord := func(s *Stream, i int) RecordID {
				id, err := s.Append(payloadFor(i, 120), AppendOptions{ExtID: uint64(10 + i/2), Timestamp: int64(1000 + i)})
				require.NoError(t, err)
				return id
			}
			var ids []RecordID
			for i := range 100 {
				ids = append(ids, appendRecord(s, i))
			}
			require.NoError(t, s.FlushAll(ctx))
			path := tailPath(t, s)
			require.NoError(t, st.Close())
			tc.damage(t, mem, path, ids)

			st, err = Open("/d", cfg)
			require.NoError(t, err)
			s, err = st.Lookup(1)
			require.NoError(t, err)
			dmg := st.Recovery()[0].Damage
			require.NotNil(t, dmg)
			bad := tc.bad
			if bad < 0 {
				for bad = 0; bad < len(ids) && int64(ids[bad].Offset()) < dmg.Offset; bad++ {
				}
			}
			require.Equal(t, int64(ids[bad].Offset()), dmg.Offset)
			wantExt := uint64(0)
			if bad > 0 {
				wantExt = uint64(10 + (bad-1)/2)
			}
			require.Equal(t, wantExt, s.Info().LastExtID, "the last intact record's ext_id, where the caller's log resumes")

			rep, err := s.RewindDamagedTail(ctx)
			require.NoError(t, err)
			require.Equal(t, dmg.Offset, rep.Offset)
			require.Equal(t, uint64(bad), rep.Records)
			require.Equal(t, wantExt, rep.LastExtID)
			require.Positive(t, rep.Dropped)
			q, err := vfs.ReadFile(mem, filepath.Join(filepath.Dir(path), rep.Quarantine))
			require.NoError(t, err)
			require.Len(t, q, int(rep.Dropped))
			require.Nil(t, s.Info().Refused)
			require.Equal(t, wantExt, s.Info().LastExtID)
			_, err = s.RewindDamagedTail(ctx)
			require.ErrorIs(t, err, ErrNotDamaged)

			// The log replays from the entry of the last intact record; a
			// crash cuts the replay: what was not synced is lost, and the
			// open after it resumes the tail (the mark proves no more than
			// the kept records), not damage again.
			half := bad + (len(ids)-bad)/2
			for i := bad; i < half; i++ {
				require.Equal(t, ids[i], appendRecord(s, i), "record %d replayed at its id", i)
			}
			crashed := cfg
			crashed.FS = mem.CrashClone(vfs.CrashOptions{Rand: rand.New(rand.NewPCG(uint64(bad), 7))})
			events, err := customEvents[RewindReport](ctx, mem, "/d/streams/1", 1, manifest.SchemaTailRewound)
			require.NoError(t, err)
			require.Equal(t, []RewindReport{rep}, events, "the rewind is in the manifest")
			require.NoError(t, st.Close())

			// reopen opens the crashed store, which must find no damage.
			reopen := func() (*Store, *Stream) {
				st, err := Open("/d", crashed)
				require.NoError(t, err)
				require.Nil(t, st.Recovery()[0].Damage)
				s, err := st.Lookup(1)
				require.NoError(t, err)
				return st, s
			}
			st, s = reopen()
			from := int(s.Info().Records)
			require.GreaterOrEqual(t, from, bad)
			for i := from; i < len(ids); i++ {
				require.Equal(t, ids[i], appendRecord(s, i), "record %d replayed at its id after the crash", i)
			}
			require.NoError(t, st.Close())

			st, s = reopen()
			defer st.Close()
			got := readEvery(t, s)
			require.Len(t, got, len(ids))
			for i, r := range got {
				require.Equal(t, ids[i], r.ID)
				require.Equal(t, payloadFor(i, 120), r.Payload, "record %d", i)
			}
		})
	}
}

// TestRewindNeedsAReplayingLog: without Config.TailReplayed nothing gives
// back what a rewind would drop; the stream stays damaged.
func TestRewindNeedsAReplayingLog(t *testing.T) {
	mem := vfs.NewMem()
	cfg := Config{FS: mem, SegmentSize: segment.MinCapacity, InitialSegmentSize: segment.MinCapacity}
	st, err := Open("/d", cfg)
	require.NoError(t, err)
	s, err := st.Stream(1)
	require.NoError(t, err)
	w := writeDurable(t, s, 40, 100)
	path := tailPath(t, s)
	require.NoError(t, st.Close())
	flipIn(20)(t, mem, path, w)
	st, err = Open("/d", cfg)
	require.NoError(t, err)
	defer st.Close()
	s, err = st.Lookup(1)
	require.NoError(t, err)
	_, err = s.RewindDamagedTail(context.Background())
	require.ErrorIs(t, err, ErrNotReplayed)
	require.ErrorIs(t, s.Info().Refused, ErrDamaged, "still damaged")
	require.Equal(t, fmt.Sprint(w.ids[20].Offset()), fmt.Sprint(st.Recovery()[0].Damage.Offset))
}
