package coordinator

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/aof2/aof2/conformance/fake"
	"github.com/aof2/aof2/core"
	"github.com/aof2/aof2/core/segment"
	"github.com/aof2/aof2/core/types"
)

// TestHealSealedSegmentFromOtherTiers: a sealed tier-0 segment damaged
// while the host was down (header, footer, truncation) used to break the
// whole stream or wedge compression. Recovery checks it against the
// manifest, sets the damaged copy aside and reads the segment from the
// copy tiers 1 and 2 hold: every record reads back, nothing else changes.
func TestHealSealedSegmentFromOtherTiers(t *testing.T) {
	for _, tc := range []struct {
		name   string
		damage func(t *testing.T, path string)
	}{
		{"header flipped", func(t *testing.T, path string) { flipByte(t, path, 20) }},
		{"footer crc flipped", func(t *testing.T, path string) { flipByte(t, path, segment.DataEnd(fileSize(t, path))+72) }},
		{"truncated", func(t *testing.T, path string) { require.NoError(t, os.Truncate(path, fileSize(t, path)/2+100)) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			dir := t.TempDir()
			backend := fake.New(fake.Options{})
			r := openRig(t, dir, backend, 64)
			s := writeUploaded(t, ctx, r, 7, 0, 1500)
			segs := s.SegmentList()
			require.Greater(t, len(segs), 2)
			victim := segs[1]
			require.NotNil(t, victim.Footer)
			want := readAll(t, ctx, s)
			r.close(t)

			tc.damage(t, victim.Path)
			r = openRig(t, dir, backend, 64)
			defer r.close(t)
			var rep core.RecoveryReport
			for _, x := range r.st.Recovery() {
				if x.Stream == 7 {
					rep = x
				}
			}
			require.Contains(t, rep.Healed, victim.ID, "the damaged copy is reported")
			s, err := r.st.Lookup(7)
			require.NoError(t, err, "the stream opens")
			require.Equal(t, want, readAll(t, ctx, s), "every record reads back, the healed segment from tier 1/2")
			names, err := os.ReadDir(filepath.Dir(victim.Path))
			require.NoError(t, err)
			kept := false
			for _, n := range names {
				kept = kept || strings.HasPrefix(n.Name(), filepath.Base(victim.Path)+core.DamagedSuffix)
			}
			require.True(t, kept, "the damaged copy is kept for inspection")
			_, err = s.AppendDurable(ctx, payload(9999), core.AppendOptions{})
			require.NoError(t, err)
		})
	}
}

// TestRepairOnRead: damage inside the records of a sealed segment (a
// flipped payload byte: that record; a flipped record header: the whole
// segment) used to read CORRUPT forever although tiers 1 and 2 hold the
// segment verified. A read that meets it has the copy replaced from the
// warm artifact or tier 2 and goes on; the damaged file is kept.
func TestRepairOnRead(t *testing.T) {
	for _, tc := range []struct {
		name string
		at   func(info core.SegmentInfo, first core.RecordID) int64
		warm bool // the warm copy is kept (else only tier 2 holds it)
	}{
		{"payload flip, from tier 1", func(_ core.SegmentInfo, first core.RecordID) int64 {
			return int64(first.Offset()) + segment.RecordHeaderSize + 40
		}, true},
		{"record header flip, from tier 2", func(_ core.SegmentInfo, first core.RecordID) int64 { return int64(first.Offset()) + 1 }, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			dir := t.TempDir()
			backend := fake.New(fake.Options{})
			r := openRig(t, dir, backend, 64)
			s := writeUploaded(t, ctx, r, 7, 0, 1500)
			segs := s.SegmentList()
			require.Greater(t, len(segs), 2)
			victim := segs[1]
			rd, err := s.NewReader(core.AtOrdinal(victim.BaseRecord + 3))
			require.NoError(t, err)
			rec, err := rd.NextCtx(ctx)
			require.NoError(t, err)
			rd.Close()
			if !tc.warm {
				_, err := r.c.Warm().Remove(types.SegmentKey{Stream: 7, Segment: victim.ID})
				require.NoError(t, err)
			}
			want := readAll(t, ctx, s)
			r.close(t)

			flipByte(t, victim.Path, tc.at(victim, rec.ID))
			r = openRig(t, dir, backend, 64)
			defer r.close(t)
			s, err = r.st.Lookup(7)
			require.NoError(t, err)
			got, err := s.ReadAt(ctx, rec.ID)
			require.NoError(t, err, "a point read repairs the copy")
			require.Equal(t, string(payload(int(victim.BaseRecord)+3)), string(got.Payload))
			require.Equal(t, want, readAll(t, ctx, s), "every record reads back")
			names, err := os.ReadDir(filepath.Dir(victim.Path))
			require.NoError(t, err)
			kept := false
			for _, n := range names {
				kept = kept || strings.HasPrefix(n.Name(), filepath.Base(victim.Path)+core.DamagedSuffix)
			}
			require.True(t, kept, "the damaged copy is kept for inspection")
		})
	}
}

func flipByte(t *testing.T, path string, off int64) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	require.NoError(t, err)
	defer f.Close()
	b := make([]byte, 1)
	_, err = f.ReadAt(b, off)
	require.NoError(t, err)
	b[0] ^= 0x40
	_, err = f.WriteAt(b, off)
	require.NoError(t, err)
}

func fileSize(t *testing.T, path string) int64 {
	t.Helper()
	fi, err := os.Stat(path)
	require.NoError(t, err)
	return fi.Size()
}
