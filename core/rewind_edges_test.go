package core

import (
	"context"
	"math/rand/v2"
	"path/filepath"
	"runtime/debug"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/aof2/aof2/core/manifest"
	"github.com/aof2/aof2/core/segment"
	"github.com/aof2/aof2/core/vfs"
)

// replayedConfig is a store of 1 MiB segments whose records carry the
// log's positions (ext ids) and whose tail the log replays, as a cluster
// member's: a damaged tail may be rewound.
func replayedConfig(fsys vfs.FS) Config {
	return Config{FS: fsys, SegmentSize: segment.MinCapacity, InitialSegmentSize: segment.MinCapacity, Sync: SyncNone,
		TailReplayed: true, RequireExtID: true}
}

// appendLogged appends record i of the log (ext id 10+i) to s.
func appendLogged(t *testing.T, s *Stream, i int) RecordID {
	t.Helper()
	id, err := s.AppendCtx(context.Background(), payloadFor(i, 120), AppendOptions{ExtID: uint64(10 + i), Timestamp: int64(1000 + i)})
	require.NoError(t, err)
	return id
}

// TestRewindPastTheFirstSegmentSurvivesACrash: a damaged tail that is not
// the stream's first segment is rewound; a crash right after the rewind
// (before the replay's first mark refresh) reopens the tail resumed, not
// damaged again: the rewind's durable mark counts the segment's records,
// not the stream's (a mark that fails its checks is skipped for the older
// one, which proves the dropped bytes).
func TestRewindPastTheFirstSegmentSurvivesACrash(t *testing.T) {
	ctx := context.Background()
	mem := vfs.NewMem()
	cfg := replayedConfig(mem)
	st, err := Open("/d", cfg)
	require.NoError(t, err)
	s, err := st.Stream(1)
	require.NoError(t, err)
	var ids []RecordID
	for i := range 100 {
		ids = append(ids, appendLogged(t, s, i))
	}
	require.NoError(t, s.Seal(ctx)) // segment 1 sealed: segment 2's base record is 100
	for i := 100; i < 110; i++ {
		ids = append(ids, appendLogged(t, s, i))
	}
	require.NoError(t, s.FlushAll(ctx))
	path := tailPath(t, s)
	require.NoError(t, st.Close())
	require.Equal(t, ids[100].Segment(), ids[109].Segment())
	require.NotEqual(t, ids[99].Segment(), ids[100].Segment())

	// A flipped payload bit in segment 2's third record.
	off := int(ids[102].Offset()) + segment.RecordHeaderSize + 9
	damageFile(t, mem, path, func(b []byte) []byte { b[off] ^= 0x10; return b })

	st, err = Open("/d", cfg)
	require.NoError(t, err)
	s, err = st.Lookup(1)
	require.NoError(t, err)
	require.NotNil(t, st.Recovery()[0].Damage)
	rep, err := s.RewindDamagedTail(ctx)
	require.NoError(t, err)
	require.Equal(t, int64(ids[102].Offset()), rep.Offset)
	require.Nil(t, s.Info().Refused)

	// A crash right after the rewind.
	crashed := cfg
	crashed.FS = mem.CrashClone(vfs.CrashOptions{Rand: rand.New(rand.NewPCG(1, 7))})
	require.NoError(t, st.Close())
	mark, err := segment.ReadMark(crashed.FS, filepath.Join(filepath.Dir(path), segment.MarkFile))
	require.NoError(t, err)
	t.Logf("mark read after the crash: %+v (rewound to %d bytes)", *mark, rep.Offset)

	st, err = Open("/d", crashed)
	require.NoError(t, err)
	defer st.Close()
	require.Nil(t, st.Recovery()[0].Damage, "the rewound tail is found damaged again")
}

// TestRewindRefusesATailCutShort: a tail file cut short has lost the size
// that told its capacity, and the capacity decides where the replayed
// records roll over: extended to another, they would get other ids than on
// the other members. The rewind refuses it and leaves the file as it was;
// the stream stays damaged (the member is wiped and rejoins).
func TestRewindRefusesATailCutShort(t *testing.T) {
	ctx := context.Background()
	mem := vfs.NewMem()
	cfg := replayedConfig(mem)
	st, err := Open("/d", cfg)
	require.NoError(t, err)
	s, err := st.Stream(1)
	require.NoError(t, err)
	for i := range 5000 { // about 720 KB of the 1 MiB segment
		appendLogged(t, s, i)
	}
	require.NoError(t, s.FlushAll(ctx))
	path := tailPath(t, s)
	require.NoError(t, st.Close())
	damageFile(t, mem, path, func(b []byte) []byte { return b[:300_000] })

	st, err = Open("/d", cfg)
	require.NoError(t, err)
	defer st.Close()
	s, err = st.Lookup(1)
	require.NoError(t, err)
	require.NotNil(t, st.Recovery()[0].Damage)
	_, err = s.RewindDamagedTail(ctx)
	require.ErrorContains(t, err, "cut short")
	require.ErrorIs(t, s.Info().Refused, ErrDamaged, "the stream stays damaged")
	b, err := vfs.ReadFile(mem, path)
	require.NoError(t, err)
	require.Len(t, b, 300_000, "the file is left as it was")
}

// TestRewindLeavesOtherDamageRefusing: a stream with a lost sealed segment
// (its header damaged, no other tier) and a damaged tail. Rewinding the
// tail does not make the stream take appends while the lost segment's loss
// is not accepted, as an accepted loss of one damage does not.
func TestRewindLeavesOtherDamageRefusing(t *testing.T) {
	ctx := context.Background()
	mem := vfs.NewMem()
	cfg := replayedConfig(mem)
	st, err := Open("/d", cfg)
	require.NoError(t, err)
	s, err := st.Stream(1)
	require.NoError(t, err)
	var ids []RecordID
	for i := range 50 {
		ids = append(ids, appendLogged(t, s, i))
	}
	require.NoError(t, s.Seal(ctx))
	first := tailPath(t, s)
	for i := 50; i < 100; i++ {
		ids = append(ids, appendLogged(t, s, i))
	}
	require.NoError(t, s.FlushAll(ctx))
	tail := tailPath(t, s)
	require.NotEqual(t, first, tail)
	require.NoError(t, st.Close())

	damageFile(t, mem, first, func(b []byte) []byte { b[3] ^= 0xff; return b }) // its header: unreadable, lost
	off := int(ids[70].Offset()) + segment.RecordHeaderSize + 9
	damageFile(t, mem, tail, func(b []byte) []byte { b[off] ^= 0x10; return b }) // the tail: damaged

	st, err = Open("/d", cfg)
	require.NoError(t, err)
	defer st.Close()
	s, err = st.Lookup(1)
	require.NoError(t, err)
	rec := st.Recovery()[0]
	require.NotNil(t, rec.Damage)
	require.Len(t, rec.Lost, 1, "segment 1 is lost")
	_, err = s.RewindDamagedTail(ctx)
	require.NoError(t, err)
	_, err = s.ReadAt(ctx, ids[10])
	require.ErrorIs(t, err, ErrCorrupt, "segment 1 is still lost")
	require.ErrorIs(t, s.Info().Refused, ErrDamaged, "the lost segment 1 still refuses appends after the tail's rewind")
}

// damagedOnDisk writes 100 records to stream 1 of a store on the real
// file system (mmap'd segments), closes it, flips a payload bit of record
// 60 and reopens it: the tail is damaged.
func damagedOnDisk(t *testing.T, cfg Config) (*Store, *Stream, []RecordID) {
	t.Helper()
	dir := t.TempDir()
	st, err := Open(dir, cfg)
	require.NoError(t, err)
	s, err := st.Stream(1)
	require.NoError(t, err)
	var ids []RecordID
	for i := range 100 {
		ids = append(ids, appendLogged(t, s, i))
	}
	require.NoError(t, s.FlushAll(context.Background()))
	path := tailPath(t, s)
	require.NoError(t, st.Close())
	off := int(ids[60].Offset()) + segment.RecordHeaderSize + 9
	damageFile(t, vfs.OS, path, func(b []byte) []byte { b[off] ^= 0x10; return b })
	st, err = Open(dir, cfg)
	require.NoError(t, err)
	s, err = st.Lookup(1)
	require.NoError(t, err)
	require.NotNil(t, st.Recovery()[0].Damage)
	return st, s, ids
}

// readKeptRecords reads records 10 to 59 (those before the damage) with
// r, turning a fault on unmapped memory into a test failure instead of a
// crash of the process.
func readKeptRecords(t *testing.T, r *Reader) {
	t.Helper()
	old := debug.SetPanicOnFault(true)
	defer debug.SetPanicOnFault(old)
	defer func() {
		if p := recover(); p != nil {
			t.Fatalf("a reader opened before the change read through the unmapped segment: %v", p)
		}
	}()
	for i := 10; i < 60; i++ { // the records before the damage, kept by the change
		rec, err := r.Next()
		require.NoError(t, err, "record %d", i)
		require.Equal(t, payloadFor(i, 120), rec.Payload, "record %d", i)
	}
}

// TestReaderAcrossRewind: a reader reading the records before the damage
// of a damaged tail while the tail is rewound goes on from the rewound
// segment (the rewind unmapped the view it held).
func TestReaderAcrossRewind(t *testing.T) {
	st, s, _ := damagedOnDisk(t, replayedConfig(vfs.OS))
	defer st.Close()
	r, err := s.NewReader(AtStart())
	require.NoError(t, err)
	defer r.Close()
	for range 10 {
		_, err := r.Next()
		require.NoError(t, err)
	}
	_, err = s.RewindDamagedTail(context.Background())
	require.NoError(t, err)
	readKeptRecords(t, r)
}

// TestReaderAcrossAcceptLoss: the same while an operator accepts the loss
// online (the admin API's AcceptLoss): before, the reader read through the
// unmapped view and faulted, which kills the host.
func TestReaderAcrossAcceptLoss(t *testing.T) {
	cfg := replayedConfig(vfs.OS)
	cfg.TailReplayed = false
	st, s, _ := damagedOnDisk(t, cfg)
	defer st.Close()
	r, err := s.NewReader(AtStart())
	require.NoError(t, err)
	defer r.Close()
	for range 10 {
		_, err := r.Next()
		require.NoError(t, err)
	}
	_, err = s.AcceptLoss(context.Background())
	require.NoError(t, err)
	readKeptRecords(t, r)
}

// TestRewindCrashBeforeItsRecord: a power loss during the rewind, as its
// tail_rewound record is written to the manifest. The rewind zeroes the
// dropped bytes only after the record, so the next open shows the damage
// or the record: the damage never vanishes without a trace.
func TestRewindCrashBeforeItsRecord(t *testing.T) {
	ctx := context.Background()
	mem := vfs.NewMem()
	cfg := replayedConfig(mem)
	cfg.DurableMarkInterval = time.Hour
	st, err := Open("/d", cfg)
	require.NoError(t, err)
	s, err := st.Stream(1)
	require.NoError(t, err)
	var ids []RecordID
	for i := range 100 {
		ids = append(ids, appendLogged(t, s, i))
		if i == 9 {
			require.NoError(t, s.FlushAll(ctx)) // the mark proves these 10 records, and no more for an hour
		}
	}
	require.NoError(t, s.FlushAll(ctx))
	path := tailPath(t, s)
	// A power loss after every record was synced; later a bit of record 60
	// flips on disk.
	disk := mem.CrashClone(vfs.CrashOptions{Rand: rand.New(rand.NewPCG(1, 2))})
	require.NoError(t, st.Close())
	off := int(ids[60].Offset()) + segment.RecordHeaderSize + 9
	damageFile(t, disk, path, func(b []byte) []byte { b[off] ^= 0x10; return b })

	var armed atomic.Bool
	var crashed *vfs.MemFS
	fsys := vfs.Wrap(disk, vfs.InjectorFunc(func(op vfs.Op) vfs.Fault {
		if armed.Load() && crashed == nil && op.Kind == vfs.OpWrite && strings.Contains(op.Path, ".mlog") {
			crashed = disk.CrashClone(vfs.CrashOptions{Rand: rand.New(rand.NewPCG(3, 4))}) // power lost here
		}
		return vfs.NoFault
	}))
	cfg.FS = fsys
	st, err = Open("/d", cfg)
	require.NoError(t, err)
	s, err = st.Lookup(1)
	require.NoError(t, err)
	dmg := st.Recovery()[0].Damage
	require.NotNil(t, dmg)
	require.Equal(t, int64(ids[60].Offset()), dmg.Offset)
	armed.Store(true)
	_, err = s.RewindDamagedTail(ctx)
	require.NoError(t, err)
	require.NoError(t, st.Close())
	require.NotNil(t, crashed, "the rewind wrote its manifest record")

	cfg.FS = crashed
	st, err = Open("/d", cfg)
	require.NoError(t, err)
	defer st.Close()
	events, err := customEvents[RewindReport](ctx, crashed, "/d/streams/1", 1, manifest.SchemaTailRewound)
	require.NoError(t, err)
	names, _ := crashed.List(filepath.Dir(path))
	t.Logf("after the crash: damage %v, tail_rewound records %d, files %v, records %d", st.Recovery()[0].Damage, len(events), names, func() uint64 {
		s, _ := st.Lookup(1)
		return s.Info().Records
	}())
	require.True(t, st.Recovery()[0].Damage != nil || len(events) > 0, "the damage vanished: no damage found, no tail_rewound record")
}
