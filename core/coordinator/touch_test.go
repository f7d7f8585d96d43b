package coordinator

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/aof2/aof2/conformance/fake"
	"github.com/aof2/aof2/core"
)

// TestReadsOrderEviction: a reader moving onto a sealed segment makes it
// the most recently used, so the next eviction takes another one.
func TestReadsOrderEviction(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	r := openRig(t, t.TempDir(), fake.New(fake.Options{}), 4)
	defer r.close(t)
	s, err := r.st.Stream(2)
	require.NoError(t, err)
	resident := func() []core.SegmentID {
		var out []core.SegmentID
		for _, info := range s.SegmentList() {
			if info.Resident {
				out = append(out, info.ID)
			}
		}
		return out
	}
	n := 0
	newest := func() core.SegmentID {
		if l := s.SegmentList(); len(l) > 0 {
			return l[len(l)-1].ID
		}
		return 0
	}
	write := func(segments int) {
		last := newest()
		for newest() < last+core.SegmentID(segments) {
			_, err := s.AppendCtx(ctx, payload(n), core.AppendOptions{})
			require.NoError(t, err)
			n++
		}
		require.NoError(t, s.FlushAll(ctx))
		waitUploaded(t, s)
		// Evicting bytes are no longer counted as used, but their files go
		// only when the eviction job runs: wait for both.
		require.Eventually(t, func() bool {
			st := r.c.Budget().Stats()
			return st.Used <= 4*segSize && st.Evicting == 0
		}, 10*time.Second, 5*time.Millisecond)
	}
	write(8)
	before := resident()
	require.GreaterOrEqual(t, len(before), 3)
	oldest := before[0]

	rd, err := s.NewReader(core.AtID(core.MakeRecordID(oldest, 64)))
	require.NoError(t, err)
	_, err = rd.NextCtx(ctx)
	require.NoError(t, err)
	rd.Close() // unpinned: only its recency protects it now

	write(1)
	after := resident()
	require.Contains(t, after, oldest, "the segment just read is not the eviction victim")
	require.NotContains(t, after, before[1], "the least recently used one is")
}
