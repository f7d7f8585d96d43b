package segment

import (
	"bytes"
	"testing"
)

// FuzzTailRepair feeds arbitrary segment bytes to what recovery decides
// from a tail segment's bytes past its intact records (ClassifyTail) and to
// the repair an accepted loss makes (fillDamage, as a dry run): neither
// panics, a verdict is consistent with the scan it was given, and filling
// changes only the damaged ranges it reports (after handing their exact
// bytes to quarantine), leaving a chain of frames an index can be built on.
func FuzzTailRepair(f *testing.F) {
	clean := buildSegment(f, 4096, "alpha", "b", "a payload of some length", "last")
	f.Add(clean, int64(HeaderSize))
	flipped := append([]byte(nil), clean...)
	flipped[HeaderSize+RecordSpan(5)+RecordHeaderSize] ^= 1 // the second record's payload
	f.Add(flipped, int64(HeaderSize))
	f.Add(flipped, int64(HeaderSize)+RecordSpan(5)+RecordSpan(1)+8)
	torn := append([]byte(nil), clean...)
	clear(torn[HeaderSize+RecordSpan(5)+RecordSpan(1):][:512])
	f.Add(torn, int64(HeaderSize))
	f.Fuzz(func(t *testing.T, b []byte, proven int64) {
		if len(b) > 1<<16 {
			return
		}
		b = b[:len(b)&^(align-1)]
		if int64(len(b)) < HeaderSize+FooterSize+RecordSpan(1) {
			return
		}
		limit := DataEnd(int64(len(b)))
		proven = min(max(proven, HeaderSize), limit)
		ts := ScanTail(b)
		v := ClassifyTail(b, ts, proven)
		if v.At != ts.End {
			t.Fatalf("verdict at %d, scan ends at %d", v.At, ts.End)
		}
		switch {
		case ts.End < proven && v.Kind != TailDamaged:
			t.Fatalf("intact records end at %d before the proven %d, verdict %s", ts.End, proven, v.Kind)
		case v.Kind == TailClean && ts.DirtyEnd != ts.End:
			t.Fatalf("clean verdict with dirty bytes up to %d past %d", ts.DirtyEnd, ts.End)
		case v.Kind == TailDamaged && v.Resume != 0:
			if _, intact, _, ok := frameAt(b, v.Resume, limit); !ok || !intact || v.Resume <= ts.End {
				t.Fatalf("damage resumes at %d (scan end %d), where no intact frame starts", v.Resume, ts.End)
			}
		}
		c := append([]byte(nil), b...)
		var saved [][2]int64
		fts, filled, err := fillDamage(c, func(off int64, q []byte) error {
			if off < ts.End || off+int64(len(q)) > limit || !bytes.Equal(q, b[off:off+int64(len(q))]) {
				t.Fatalf("quarantined %d bytes at %d that are not the segment's", len(q), off)
			}
			saved = append(saved, [2]int64{off, off + int64(len(q))})
			return nil
		}, noWrite)
		if err != nil {
			t.Fatalf("fillDamage: %v", err)
		}
		if len(saved) != len(filled) {
			t.Fatalf("filled %v, quarantined %v", filled, saved)
		}
		prev := ts.End
		for i, r := range filled {
			if r != saved[i] || r[0] < prev || r[1] > limit {
				t.Fatalf("filled %v, quarantined %v (scan end %d)", filled, saved, ts.End)
			}
			if !bytes.Equal(c[prev:r[0]], b[prev:r[0]]) {
				t.Fatalf("bytes between filled ranges changed")
			}
			prev = r[1]
		}
		if !bytes.Equal(c[:ts.End], b[:ts.End]) || !bytes.Equal(c[prev:], b[prev:]) {
			t.Fatal("filling changed bytes outside the damaged ranges")
		}
		if fts.End < ts.End || fts.Count < ts.Count {
			t.Fatalf("after filling the scan ends at %d with %d records; before at %d with %d", fts.End, fts.Count, ts.End, ts.Count)
		}
		if _, err := BuildIndex(c, "fuzz", fts.End); err != nil {
			t.Fatalf("index of the filled segment: %v", err)
		}
	})
}
