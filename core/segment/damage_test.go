package segment

import (
	"errors"
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/aof2/aof2/core/types"
	"github.com/aof2/aof2/core/vfs"
)

// buildSegment returns a segment's bytes holding n records (record i's
// payload is size(i) bytes of a pattern) and their offsets.
func patternSegment(n int, size func(int) int) ([]byte, []int64) {
	b := make([]byte, MinCapacity)
	h := Header{StreamID: 1, SegmentID: 2, CreatedAt: 1}
	h.Encode(b)
	off := int64(HeaderSize)
	var offs []int64
	for i := range n {
		p := make([]byte, size(i))
		for j := range p {
			p[j] = byte(i + j + 1)
		}
		copy(p, fmt.Sprintf("r%d", i))
		EncodeRecordHeader(b[off:], p, int64(i), uint64(i))
		copy(b[off+RecordHeaderSize:], p)
		offs = append(offs, off)
		off += RecordSpan(len(p))
	}
	return b, offs
}

func fixed(n int) func(int) int { return func(int) int { return n } }

func TestClassifyTail(t *testing.T) {
	end := func(offs []int64, n int) int64 { return offs[n-1] + RecordSpan(700) }
	for _, tc := range []struct {
		name   string
		damage func(b []byte, offs []int64) // what happened to the 40 records
		proven func(offs []int64) int64
		kind   TailKind
		at     func(offs []int64) int64
		resume func(offs []int64) int64
	}{
		{name: "clean", damage: func([]byte, []int64) {}, kind: TailClean, at: func(o []int64) int64 { return end(o, 40) }},
		{name: "clean but the mark proves more", damage: func([]byte, []int64) {}, proven: func(o []int64) int64 { return end(o, 40) + 64 },
			kind: TailDamaged, at: func(o []int64) int64 { return end(o, 40) }},
		{name: "torn: the last record's end never written", damage: func(b []byte, o []int64) {
			clear(b[o[39]+RecordHeaderSize+100 : end(o, 40)])
		}, kind: TailTorn, at: func(o []int64) int64 { return o[39] }},
		{name: "torn: later records persisted, an earlier one's sector did not", damage: func(b []byte, o []int64) {
			s := (o[30] + 511) / 512 * 512
			clear(b[s : s+512])
		}, proven: func(o []int64) int64 { return o[25] }, kind: TailTorn, at: func(o []int64) int64 { return o[30] - 0 }},
		{name: "torn: the next header never written, later bytes did", damage: func(b []byte, o []int64) {
			clear(b[o[35] : o[35]+RecordHeaderSize])
		}, kind: TailTorn, at: func(o []int64) int64 { return o[35] }},
		{name: "damage: a flipped payload byte, intact records after", damage: func(b []byte, o []int64) {
			b[o[20]+RecordHeaderSize+300] ^= 0x10
		}, kind: TailDamaged, at: func(o []int64) int64 { return o[20] }, resume: func(o []int64) int64 { return o[21] }},
		{name: "damage: a flipped header byte", damage: func(b []byte, o []int64) {
			b[o[5]+9] ^= 0x01 // the timestamp
		}, kind: TailDamaged, at: func(o []int64) int64 { return o[5] }, resume: func(o []int64) int64 { return o[6] }},
		{name: "damage: a zeroed sector in proven records", damage: func(b []byte, o []int64) {
			s := (o[10] + 511) / 512 * 512
			clear(b[s : s+512])
		}, proven: func(o []int64) int64 { return end(o, 40) }, kind: TailDamaged, at: func(o []int64) int64 { return o[10] }},
		{name: "damage: a zeroed header in proven records", damage: func(b []byte, o []int64) {
			clear(b[o[12] : o[12]+RecordHeaderSize])
		}, proven: func(o []int64) int64 { return end(o, 40) }, kind: TailDamaged, at: func(o []int64) int64 { return o[12] }, resume: func(o []int64) int64 { return o[13] }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, offs := patternSegment(40, fixed(700))
			tc.damage(b, offs)
			proven := int64(HeaderSize)
			if tc.proven != nil {
				proven = tc.proven(offs)
			}
			v := ClassifyTail(b, ScanTail(b), proven)
			require.Equal(t, tc.kind, v.Kind, v.Reason)
			require.Equal(t, tc.at(offs), v.At, v.Reason)
			if tc.resume != nil {
				require.Equal(t, tc.resume(offs), v.Resume, v.Reason)
			}
		})
	}
}

// TestFillerFrames: a filler over a damaged range keeps the chain walkable
// and the ids after it; it is no record (no ordinal, never read).
func TestFillerFrames(t *testing.T) {
	b, offs := patternSegment(10, func(i int) int { return 100 + 40*i })
	// Records 3 and 4 are lost: a filler covers exactly their span.
	lo, hi := offs[3], offs[5]
	fill, err := EncodeFiller(hi-lo, []byte("lost"))
	require.NoError(t, err)
	copy(b[lo:], fill)
	ts := ScanTail(b)
	require.Equal(t, uint64(8), ts.Count, "the filler is not a record")
	limit := ts.End
	require.Equal(t, offs[9]+RecordSpan(100+40*9), limit, "the scan walks past the filler")

	rec, err := ReadRecord(b, "seg", offs[2], limit)
	require.NoError(t, err)
	rec, err = ReadRecord(b, "seg", rec.Next(), limit)
	require.NoError(t, err)
	require.Equal(t, offs[5], rec.Offset, "a sequential read steps over the filler")

	ix, err := BuildIndex(b, "seg", limit)
	require.NoError(t, err)
	ord, err := Locate(b, ix, "seg", offs[5], limit)
	require.NoError(t, err)
	require.Equal(t, uint64(3), ord, "ordinals count records only")
	_, err = Locate(b, ix, "seg", offs[3], limit)
	require.ErrorIs(t, err, types.ErrInvalidRecordID, "a filler is not a record")
	off, err := LocateOrdinal(b, ix, "seg", 3, limit)
	require.NoError(t, err)
	require.Equal(t, offs[5], off)

	offsets, end := Intact(b, HeaderSize, limit)
	require.Len(t, offsets, 8)
	require.Equal(t, limit, end)

	_, err = EncodeFiller(20, nil)
	require.Error(t, err)
	b[lo+RecordHeaderSize] ^= 1 // a damaged filler is damage like any frame
	ts = ScanTail(b)
	require.Equal(t, lo, ts.End)
	var ce *types.CorruptError
	_, err = ReadRecord(b, "seg", lo, limit)
	require.True(t, errors.As(err, &ce))
}

// TestPlaceRecords: records another copy holds go back into a damaged
// segment only where they continue its intact records, and a record the
// segment already holds must be the same one.
func TestPlaceRecords(t *testing.T) {
	const size = 100
	full, offs := patternSegment(10, fixed(size))
	payload := func(i int) []byte {
		return append([]byte(nil), full[offs[i]+RecordHeaderSize:offs[i]+RecordHeaderSize+size]...)
	}
	placed := func(from, to int) []Placed {
		var out []Placed
		for i := from; i < to; i++ {
			out = append(out, Placed{Offset: offs[i], Payload: payload(i), TS: int64(i), Ext: uint64(i)})
		}
		return out
	}
	changed := placed(5, 10)
	changed[0].Payload = []byte("not what the segment holds")
	huge := placed(6, 7)
	huge[0].Payload = make([]byte, MinCapacity)
	for _, tc := range []struct {
		name       string
		recs       []Placed
		n          int
		count      uint64
		quarantine bool
	}{
		{"continues the intact records", placed(4, 10), 6, 10, true},
		{"a held record differs", changed, 0, 6, false},
		{"a gap before the first", placed(7, 10), 0, 6, false},
		{"larger than the segment", huge, 0, 6, false},
		{"nothing to place", nil, 0, 6, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := append([]byte(nil), full...)
			clear(b[offs[6]:])
			copy(b[offs[6]:], "torn bytes") // past the intact records
			fsys := vfs.NewMem()
			require.NoError(t, vfs.WriteFileAtomic(fsys, "/seg", b))
			ts := ScanTail(b)
			require.Equal(t, uint64(6), ts.Count)
			var saved [][]byte
			got, left, n, err := PlaceRecords(fsys, "/seg", ts, nil, tc.recs, func(off int64, q []byte) error {
				require.Equal(t, offs[6], off)
				saved = append(saved, q)
				return nil
			})
			require.NoError(t, err)
			require.Empty(t, left)
			require.Equal(t, tc.n, n)
			require.Equal(t, tc.count, got.Count)
			after, err := vfs.ReadFile(fsys, "/seg")
			require.NoError(t, err)
			require.Equal(t, tc.count, ScanTail(after).Count, "the file holds what the scan says")
			if tc.quarantine {
				require.Len(t, saved, 1)
				require.Equal(t, []byte("torn bytes"), saved[0][:10])
				require.Equal(t, full[:offs[9]+RecordSpan(size)], after[:offs[9]+RecordSpan(size)])
			} else {
				require.Empty(t, saved)
				require.Equal(t, b, after, "nothing written")
			}
		})
	}
}

// TestPlaceRecordsHealsFilledRange: records that cover the end of a range
// FillDamage filled replace the filler there (what they do not cover stays
// a filler), and the scan walks them as records again.
func TestPlaceRecordsHealsFilledRange(t *testing.T) {
	const size = 100
	full, offs := patternSegment(10, fixed(size))
	placed := func(from, to int) []Placed {
		var out []Placed
		for i := from; i < to; i++ {
			p := append([]byte(nil), full[offs[i]+RecordHeaderSize:offs[i]+RecordHeaderSize+size]...)
			out = append(out, Placed{Offset: offs[i], Payload: p, TS: int64(i), Ext: uint64(i)})
		}
		return out
	}
	for _, tc := range []struct {
		name  string
		recs  []Placed
		n     int
		count uint64
		left  [][2]int64
	}{
		{"the whole range", placed(2, 10), 8, 10, nil},
		{"the range alone", placed(3, 5), 2, 8, nil},
		{"its end", placed(4, 10), 6, 9, [][2]int64{{offs[3], offs[4]}}},
		{"not to its end", placed(3, 4), 0, 6, [][2]int64{{offs[3], offs[5]}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := append([]byte(nil), full...)
			b[offs[3]+RecordHeaderSize+7] ^= 1 // records 3 and 4 damaged
			b[offs[4]+RecordHeaderSize+7] ^= 1
			clear(b[offs[8]:]) // 8 and 9 never reached the segment
			require.Equal(t, tc.left == nil, HealsWhole(b, tc.recs, offs[8]), "the dry run agrees")
			fsys := vfs.NewMem()
			require.NoError(t, vfs.WriteFileAtomic(fsys, "/seg", b))
			ts, filled, err := FillDamage(fsys, "/seg", func(int64, []byte) error { return nil })
			require.NoError(t, err)
			require.Equal(t, [][2]int64{{offs[3], offs[5]}}, filled)
			require.Equal(t, uint64(6), ts.Count)
			got, left, n, err := PlaceRecords(fsys, "/seg", ts, filled, tc.recs, func(int64, []byte) error { return nil })
			require.NoError(t, err)
			require.Equal(t, tc.n, n)
			require.Equal(t, tc.count, got.Count)
			if tc.left == nil {
				require.Empty(t, left)
			} else {
				require.Equal(t, tc.left, left)
			}
			after, err := vfs.ReadFile(fsys, "/seg")
			require.NoError(t, err)
			require.Equal(t, tc.count, ScanTail(after).Count)
			if tc.left == nil {
				last := tc.recs[len(tc.recs)-1]
				upTo := last.Offset + RecordSpan(len(last.Payload))
				require.Equal(t, full[:upTo], after[:upTo], "healed byte for byte")
			}
		})
	}
}
