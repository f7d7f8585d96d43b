package core

import (
	"bytes"
	"encoding/binary"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/aof2/aof2/core/checksum"
)

// FuzzProducerRound: a version 2 producer log is rounds; every round that
// decodes re-encodes (appendProducerRound) to its very bytes, so a round
// whose checksum holds is never read as other entries than were written.
// The valid prefix decodeProducerLog reports is made of such rounds.
func FuzzProducerRound(f *testing.F) {
	e1 := producerEntry{producer: 1, seq: 2, records: 2, fingerprint: 3, ids: []RecordID{64, 96}}
	e2 := producerEntry{producer: 4, seq: 5, records: 1, fingerprint: 6, ids: []RecordID{128}}
	e3 := producerEntry{producer: 7, seq: 1, records: 3, fingerprint: 0}
	f.Add(appendProducerRound(nil, []producerEntry{e1}))
	f.Add(appendProducerRound(nil, []producerEntry{e1, e2, e3}))
	f.Add(appendProducerRound(appendProducerRound(nil, []producerEntry{e2}), []producerEntry{e3}))
	f.Add(make([]byte, producerFrameSize+producerFrameSize+producerBodyFixed))
	f.Fuzz(func(t *testing.T, b []byte) {
		// The fuzzer rarely guesses a checksum; reseal half of the inputs
		// so that the entries behind the checksums are exercised.
		if len(b) > 0 && b[len(b)-1]&1 == 1 {
			b = resealRound(append([]byte(nil), b...))
		}
		es, n, err := decodeProducerRound(b)
		if err == nil {
			require.LessOrEqual(t, n, len(b))
			require.Equal(t, b[:n], appendProducerRound(nil, es), "round decodes to %+v", es)
		}
		// The same bytes as a log: its valid prefix re-encodes round by round.
		log := append(producerLogHeader(), b...)
		all, valid, err := decodeProducerLog(log)
		if err != nil {
			return
		}
		require.GreaterOrEqual(t, valid, producerHeaderSize)
		out := producerLogHeader()
		var got []producerEntry
		for off := producerHeaderSize; off < valid; {
			es, k, err := decodeProducerRound(log[off:valid])
			require.NoError(t, err, "round at %d of the valid prefix", off)
			out = appendProducerRound(out, es)
			got = append(got, es...)
			off += k
		}
		require.True(t, bytes.Equal(log[:valid], out), "valid prefix does not re-encode")
		require.Equal(t, len(all), len(got))
		if len(all) > 0 {
			require.Equal(t, all, got)
		}
	})
}

// resealRound fixes the checksums of the round framed at the start of b,
// and of the entry frames its length covers, whatever they hold.
func resealRound(b []byte) []byte {
	if len(b) < producerFrameSize {
		return b
	}
	n := int(binary.LittleEndian.Uint32(b))
	if n > len(b)-producerFrameSize {
		return b
	}
	body := b[producerFrameSize : producerFrameSize+n]
	for off := 0; off+producerFrameSize <= len(body); {
		m := int(binary.LittleEndian.Uint32(body[off:]))
		if m > len(body)-off-producerFrameSize {
			break
		}
		binary.LittleEndian.PutUint32(body[off+4:], checksum.Fold32(checksum.Sum64(body[off+producerFrameSize:off+producerFrameSize+m])))
		off += producerFrameSize + m
	}
	binary.LittleEndian.PutUint32(b[4:], producerRoundChecksum(b))
	return b
}
