package core

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/aof2/aof2/core/vfs"
	"github.com/aof2/aof2/internal/testwait"
)

// TestPowerLossTornProducerRound: a group commit writes several entries
// to the producer log with one write and one fdatasync. The power is cut
// at that fdatasync (the round fails: nothing of it was stored or
// answered), and the write is torn at sector granularity, as an unsynced
// write may be: the round's first entry keeps its first bytes, later
// ones are zero (or the reverse). Recovery must take that as a torn tail
// and keep every entry synced before it: every earlier request is
// answered as a duplicate with its ids, and both requests of the torn
// round are appended once on retry.
func TestPowerLossTornProducerRound(t *testing.T) {
	for seed := uint64(0); seed < 16; seed++ {
		t.Run(fmt.Sprint("seed", seed), func(t *testing.T) { tornProducerRound(t, seed) })
	}
}

func tornProducerRound(t *testing.T, seed uint64) {
	ctx, cancel := context.WithTimeout(context.Background(), testwait.Default)
	defer cancel()
	mem := vfs.NewMem()
	// The power goes at the producer log's next fdatasync once armed: it
	// and every later operation fail.
	var armed, cut atomic.Bool
	fsys := vfs.Wrap(mem, vfs.InjectorFunc(func(op vfs.Op) vfs.Fault {
		if armed.Load() && op.Kind == vfs.OpSync && strings.Contains(op.Path, producerLogName) {
			// (Contains: after a rewrite the handle is named producers.log.tmp.)
			cut.Store(true)
		}
		if cut.Load() {
			return vfs.FaultEIO
		}
		return vfs.NoFault
	}))
	st, s := openStream1(t, smallConfig(fsys))
	// Durable requests, one per round, until the next round's first entry
	// crosses the first sector boundary (offset 512) of the log.
	var acked [][]RecordID
	for pid := uint64(1); ; pid++ {
		s.mu.Lock()
		size := s.prod.size
		s.mu.Unlock()
		if size+52 > 512 {
			break
		}
		res, err := s.AppendIdempotent(ctx, Producer{ID: pid, Seq: 1}, batch(fmt.Sprint("a", pid)), true)
		require.NoError(t, err)
		require.NoError(t, s.Flush(ctx, res.IDs[0]))
		acked = append(acked, res.IDs)
	}
	// One round with two requests (as two callers queued together would
	// make), cut at its fdatasync.
	p1, p2 := uint64(len(acked)+1), uint64(len(acked)+2)
	armed.Store(true)
	var reqs []*producerReq
	for _, pid := range []uint64{p1, p2} {
		recs := batch(fmt.Sprint("b", pid))
		recs[0].Timestamp = 1
		r := &producerReq{e: producerEntry{producer: pid, seq: 1, records: 1, fingerprint: fingerprint(recs)}, recs: recs}
		r.reset()
		reqs = append(reqs, r)
	}
	s.producerRound(reqs)
	for _, r := range reqs {
		require.Error(t, r.err, "the round's fdatasync failed: nothing answered")
	}
	_ = st.Close()
	crashed := mem.CrashClone(vfs.CrashOptions{Rand: rand.New(rand.NewPCG(seed, 7)), KeepProb: 1, Tear: true})

	st, s = openStream1(t, smallConfig(crashed))
	defer st.Close()
	for i, ids := range acked {
		res, err := s.AppendIdempotent(ctx, Producer{ID: uint64(i + 1), Seq: 1}, batch(fmt.Sprint("a", i+1)), true)
		require.NoError(t, err, "producer %d, acknowledged before the cut", i+1)
		require.True(t, res.Duplicate)
		require.Equal(t, ids, res.IDs)
	}
	for _, pid := range []uint64{p1, p2} {
		recs := batch(fmt.Sprint("b", pid))
		recs[0].Timestamp = 1
		res, err := s.AppendIdempotent(ctx, Producer{ID: pid, Seq: 1}, recs, true)
		require.NoError(t, err, "producer %d, the torn round's retry", pid)
		require.False(t, res.Duplicate)
	}
	require.Len(t, readAll(t, s), len(acked)+2)
}
