package core

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/aof2/aof2/core/vfs"
)

// TestNodeWALKeptWhenAStreamFailed: records acknowledged through the
// node WAL (their segment bytes not synced), then the stream fails (an
// fsync of its segment returns EIO while sealing). The close skips the
// failed stream's sync, so the WAL must stay: after a power loss the
// next open replays the acknowledged records from it.
func TestNodeWALKeptWhenAStreamFailed(t *testing.T) {
	ctx := context.Background()
	mem := vfs.NewMem()
	w := vfs.Wrap(mem, nil)
	st := walStore(t, w, 1<<30)
	s, err := st.Stream(1)
	require.NoError(t, err)
	o := &oracle{}
	for i := range 10 {
		p := []byte(fmt.Sprintf("record %d", i))
		id, err := s.AppendDurable(ctx, p, AppendOptions{})
		require.NoError(t, err)
		o.ack(o.appended(id, p))
	}
	w.SetInjector(vfs.InjectorFunc(func(op vfs.Op) vfs.Fault {
		if (op.Kind == vfs.OpSync || op.Kind == vfs.OpMsync) && strings.HasPrefix(op.Path, "/data/streams/1/") {
			return vfs.FaultEIO
		}
		return vfs.NoFault
	}))
	require.Error(t, s.Seal(ctx), "the seal's sync fails")
	require.Error(t, s.Err(), "the stream failed")
	w.SetInjector(nil)
	closeErr := st.Close()
	t.Logf("Store.Close after the stream failed: %v", closeErr)
	names, _ := mem.List("/data/wal/segments")
	t.Logf("WAL files left after close: %v", names)

	crashed := mem.CrashClone(vfs.CrashOptions{Rand: rand.New(rand.NewPCG(1, 2))})
	st2, err := Open("/data", Config{FS: crashed, NodeWAL: true, WALCheckpointBytes: 1 << 30, MaxUnflushedBytes: -1})
	require.NoError(t, err)
	defer st2.Close()
	s2, err := st2.Lookup(1)
	require.NoError(t, err)
	require.NoError(t, o.check(s2), "acknowledged records must survive")
}

// batchPastTarget stores an idempotent batch of 10 records of 1,000 bytes
// whole in one segment, past SegmentTargetBytes (the target is checked
// once per batch), acknowledges it through the node WAL and returns the
// store's config, the batch, its result and the disk after a power loss.
func batchPastTarget(t *testing.T) (Config, []BatchRecord, IdempotentResult, *vfs.MemFS) {
	t.Helper()
	ctx := context.Background()
	mem := vfs.NewMem()
	cfg := Config{FS: mem, NodeWAL: true, WALCheckpointBytes: 1 << 30, MaxUnflushedBytes: -1,
		SegmentSize: 1 << 20, SegmentTargetBytes: 4 << 10}
	st, err := Open("/data", cfg)
	require.NoError(t, err)
	s, err := st.Stream(1)
	require.NoError(t, err)
	var recs []BatchRecord
	for i := range 10 {
		recs = append(recs, BatchRecord{Payload: payloadFor(i, 1000)})
	}
	res, err := s.AppendIdempotent(ctx, Producer{ID: 1, Seq: 1}, recs, true)
	require.NoError(t, err)
	require.Len(t, res.IDs, 10)
	require.Equal(t, res.IDs[0].Segment(), res.IDs[9].Segment(), "the batch is in one segment, past the target")
	require.NoError(t, s.Flush(ctx, res.IDs[9]), "acknowledged through the node WAL")
	crashed := mem.CrashClone(vfs.CrashOptions{Rand: rand.New(rand.NewPCG(1, 2))})
	require.NoError(t, st.Close())
	return cfg, recs, res, crashed
}

// TestNodeWALReplayPastTheTargetSize: an idempotent batch is stored
// whole in one segment, past SegmentTargetBytes (the target is checked once
// per batch); its records are acknowledged through the node WAL. After a
// power loss the replay puts them back at their ids: the WAL's ids say
// where a segment ends, not the target.
func TestNodeWALReplayPastTheTargetSize(t *testing.T) {
	cfg, recs, res, crashed := batchPastTarget(t)

	cfg.FS = crashed
	st2, err := Open("/data", cfg)
	require.NoError(t, err)
	defer st2.Close()
	s2, err := st2.Lookup(1)
	require.NoError(t, err)
	require.NoError(t, s2.Info().Refused, "the replay must not refuse the stream")
	got := readEvery(t, s2)
	require.Equal(t, 10, len(got), "every acknowledged record comes back")
	for i, r := range got {
		require.Equal(t, res.IDs[i], r.ID)
		require.Equal(t, recs[i].Payload, r.Payload)
	}
}

// TestNodeWALAcceptLossPastTheTargetSize: the same batch through an
// accepted WAL loss (repair -node-wal -accept-loss): its strict replay keeps
// every record the WAL holds intact, past the target too.
func TestNodeWALAcceptLossPastTheTargetSize(t *testing.T) {
	cfg, _, _, crashed := batchPastTarget(t)
	cfg.FS, cfg.NodeWALAcceptLoss = crashed, true
	st2, err := Open("/data", cfg)
	require.NoError(t, err)
	defer st2.Close()
	t.Logf("accepted loss: %+v", st2.NodeWALLoss())
	s2, err := st2.Lookup(1)
	require.NoError(t, err)
	require.Equal(t, 10, len(readEvery(t, s2)), "acknowledged records the WAL held intact must not be lost")
}

// TestNodeWALReplayAfterTheTargetWasLowered: records acknowledged through
// the node WAL fill a segment past 4 KiB; the store crashes and is reopened
// with segment_target_bytes = 4 KiB (a tunable). The replay puts every
// record back in the resumed tail, past the new target.
func TestNodeWALReplayAfterTheTargetWasLowered(t *testing.T) {
	mem := vfs.NewMem()
	cfg := Config{FS: mem, NodeWAL: true, WALCheckpointBytes: 1 << 30, MaxUnflushedBytes: -1, SegmentSize: 1 << 20}
	st, err := Open("/data", cfg)
	require.NoError(t, err)
	s, err := st.Stream(1)
	require.NoError(t, err)
	w := writeDurable(t, s, 10, 1000)
	require.Equal(t, w.ids[0].Segment(), w.ids[9].Segment())
	crashed := mem.CrashClone(vfs.CrashOptions{Rand: rand.New(rand.NewPCG(1, 2))})
	require.NoError(t, st.Close())

	cfg.FS, cfg.SegmentTargetBytes = crashed, 4<<10
	st2, err := Open("/data", cfg)
	require.NoError(t, err)
	defer st2.Close()
	s2, err := st2.Lookup(1)
	require.NoError(t, err)
	require.NoError(t, s2.Info().Refused, "the replay must not refuse the stream")
	require.Equal(t, 10, len(readEvery(t, s2)))
}

// TestNodeWALReplayAfterTheSegmentSizeWasLowered: a record acknowledged
// through the node WAL, larger than the reopened store's (lowered)
// segment_size allows new appends, is replayed into a segment as large as
// the one it was written into.
func TestNodeWALReplayAfterTheSegmentSizeWasLowered(t *testing.T) {
	ctx := context.Background()
	mem := vfs.NewMem()
	cfg := Config{FS: mem, NodeWAL: true, WALCheckpointBytes: 1 << 30, MaxUnflushedBytes: -1, SegmentSize: 4 << 20}
	st, err := Open("/data", cfg)
	require.NoError(t, err)
	s, err := st.Stream(1)
	require.NoError(t, err)
	p := payloadFor(1, 1500<<10)
	id, err := s.AppendDurable(ctx, p, AppendOptions{})
	require.NoError(t, err)
	crashed := mem.CrashClone(vfs.CrashOptions{Rand: rand.New(rand.NewPCG(1, 2))})
	require.NoError(t, st.Close())

	cfg.FS, cfg.SegmentSize = crashed, 1<<20
	st2, err := Open("/data", cfg)
	require.NoError(t, err)
	defer st2.Close()
	s2, err := st2.Lookup(1)
	require.NoError(t, err)
	require.NoError(t, s2.Info().Refused, "the replay must not refuse the stream")
	rec, err := s2.ReadAt(ctx, id)
	require.NoError(t, err)
	require.Equal(t, p, rec.Payload)
}
