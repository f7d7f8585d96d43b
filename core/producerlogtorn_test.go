package core

import (
	"encoding/binary"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/aof2/aof2/core/vfs"
)

// TestProducerLogTornRound: whatever a power cut keeps of the last round's
// sectors (each one new or still zero, the size kept), the log decodes to
// the rounds synced before it, or to all of them when every sector of the
// round was kept; the same with the round written through MemFS and
// crashed by CrashClone. Version 1 of the format could not tell the
// torn entries of a group commit from damage.
func TestProducerLogTornRound(t *testing.T) {
	var durable []producerEntry
	b := producerLogHeader()
	for i := range 9 {
		e := producerEntry{producer: uint64(i + 1), seq: 1, records: 1, fingerprint: 7, ids: []RecordID{RecordID(64 * (i + 1))}}
		durable = append(durable, e)
		b = appendProducerRound(b, []producerEntry{e})
	}
	synced := len(b)
	var round []producerEntry
	for i := range 20 {
		round = append(round, producerEntry{producer: uint64(100 + i), seq: 1, records: 2, fingerprint: 9, ids: []RecordID{RecordID(4096 + 64*i), RecordID(4096 + 64*i + 32)}})
	}
	live := appendProducerRound(b, round)
	const sector = 512
	first, last := synced/sector, (len(live)-1)/sector
	require.Greater(t, last-first, 1, "the round spans three sectors or more")
	for mask := 0; mask < 1<<(last-first+1); mask++ {
		torn := slices.Clone(live)
		for i := first; i <= last; i++ {
			if mask&(1<<(i-first)) == 0 { // this sector kept its old contents
				lo, hi := max(i*sector, synced), min((i+1)*sector, len(torn))
				clear(torn[lo:hi])
			}
		}
		es, n, err := decodeProducerLog(torn)
		require.NoError(t, err, "sectors kept %b", mask)
		if mask == 1<<(last-first+1)-1 {
			require.Equal(t, len(live), n)
			require.Equal(t, append(slices.Clone(durable), round...), es)
			continue
		}
		require.Equal(t, synced, n, "sectors kept %b", mask)
		require.Equal(t, durable, es)
	}

	// Through MemFS: synced rounds, then the round written, not synced.
	for seed := uint64(0); seed < 64; seed++ {
		mem := vfs.NewMem()
		require.NoError(t, mem.MkdirAll("/d", 0o755))
		require.NoError(t, mem.SyncDir("/"))
		f, err := mem.Create("/d/" + producerLogName)
		require.NoError(t, err)
		_, err = f.WriteAt(b, 0)
		require.NoError(t, err)
		require.NoError(t, f.Datasync())
		require.NoError(t, mem.SyncDir("/d"))
		_, err = f.WriteAt(live[synced:], int64(synced))
		require.NoError(t, err)
		rng := rand.New(rand.NewPCG(seed, 1))
		crashed := mem.CrashClone(vfs.CrashOptions{Rand: rng, KeepProb: rng.Float64(), Tear: true})
		got, err := vfs.ReadFile(crashed, "/d/"+producerLogName)
		require.NoError(t, err)
		es, n, err := decodeProducerLog(got)
		require.NoError(t, err, "seed %d", seed)
		if n != len(live) {
			require.Equal(t, synced, n, "seed %d", seed)
			require.Equal(t, durable, es)
		}
	}
}

// TestProducerLogDamageBeforeLastRound: a byte changed in any round but the
// last (bytes that were synced: a later round was written after them) is
// damage, never a torn tail; the last round's own damage is the torn tail
// a power cut could leave.
func TestProducerLogDamageBeforeLastRound(t *testing.T) {
	b := producerLogHeader()
	var ends []int
	for i := range 4 {
		es := []producerEntry{{producer: uint64(i + 1), seq: 1, records: 1, fingerprint: 7, ids: []RecordID{RecordID(64 * (i + 1))}}}
		if i == 2 { // a group commit's round
			es = append(es, producerEntry{producer: 50, seq: 3, records: 1, fingerprint: 8, ids: []RecordID{RecordID(64*(i+1) + 32)}})
		}
		b = appendProducerRound(b, es)
		ends = append(ends, len(b))
	}
	lastStart := ends[len(ends)-2]
	for off := producerHeaderSize; off < len(b); off++ {
		for _, v := range []byte{0x00, 0xff} {
			if b[off] == v {
				continue
			}
			d := slices.Clone(b)
			d[off] = v
			es, n, err := decodeProducerLog(d)
			if off < lastStart {
				require.ErrorIs(t, err, ErrCorrupt, "byte %d set to %#x", off, v)
				continue
			}
			require.NoError(t, err, "byte %d set to %#x", off, v)
			require.Equal(t, lastStart, n)
			require.Len(t, es, 4)
		}
	}
	// A version 1 log (an older build's) still reads.
	v1 := producerLogHeader()
	binary.LittleEndian.PutUint32(v1[8:], producerLogVersion1)
	e := producerEntry{producer: 1, seq: 1, records: 1, fingerprint: 7, ids: []RecordID{64}}
	v1 = appendProducerEntry(v1, e)
	es, n, err := decodeProducerLog(v1)
	require.NoError(t, err)
	require.Equal(t, len(v1), n)
	require.Equal(t, []producerEntry{e}, es)
}
