package coordinator

import (
	"context"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/aof2/aof2/conformance/fake"
	"github.com/aof2/aof2/core"
	"github.com/aof2/aof2/core/types"
)

// TestReadAtSameRecordInEveryTier: Stream.ReadAt of one id answers the
// same record (id, timestamp, ext id, payload) whether the segment is in
// tier 0, only in the warm cache or only in tier 2; only a read in tier 0
// knows the ordinal (a cold point read does not walk the segment).
func TestReadAtSameRecordInEveryTier(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	r := openRig(t, t.TempDir(), fake.New(fake.Options{}), 3)
	defer r.close(t)
	s, err := r.st.Stream(7)
	require.NoError(t, err)
	for i := range 1500 {
		_, err := s.AppendCtx(ctx, payload(i), core.AppendOptions{ExtID: uint64(1000 + i)})
		require.NoError(t, err)
	}
	require.NoError(t, s.Seal(ctx))
	waitUploaded(t, s)

	// Every record as a scan sees it (hydrating what is cold).
	var want []core.Record
	rd, err := s.NewReader(core.AtStart())
	require.NoError(t, err)
	for {
		rec, err := rd.NextCtx(ctx)
		if errors.Is(err, io.EOF) {
			break
		}
		require.NoError(t, err)
		rec.Payload = append([]byte(nil), rec.Payload...)
		want = append(want, rec)
	}
	rd.Close()
	require.Len(t, want, 1500)

	check := func(tier string) int {
		t.Helper()
		cold := 0
		for _, w := range want {
			info, ok := s.Segment(w.ID.Segment())
			require.True(t, ok)
			if !info.Resident {
				cold++
			}
			got, err := s.ReadAt(ctx, w.ID)
			require.NoError(t, err, "%s: record %s", tier, w.ID)
			if !info.Resident {
				require.Zero(t, got.Ordinal, "%s: record %s: a cold point read knows no ordinal", tier, w.ID)
				got.Ordinal = w.Ordinal
			}
			require.Equal(t, fields(w), fields(got), "%s: record %s (segment resident: %v)", tier, w.ID, info.Resident)
		}
		return cold
	}
	require.Positive(t, check("warm cache"), "some reads hit segments out of tier 0")

	// Only tier 2 holds the segments out of tier 0 now.
	for _, info := range s.SegmentList() {
		k := types.SegmentKey{Stream: 7, Segment: info.ID}
		if !info.Resident && r.c.Warm().Contains(k) {
			_, err := r.c.Warm().Remove(k)
			require.NoError(t, err)
		}
	}
	require.Positive(t, check("tier 2"), "some reads hit segments out of tier 0")
}

// fields is a Record as a comparable value that prints short.
func fields(r core.Record) [5]any {
	return [5]any{r.ID, r.Ordinal, r.Timestamp, r.ExtID, string(r.Payload[:min(len(r.Payload), 14)]) + fmt.Sprintf("… (%d bytes, crc %#x)", len(r.Payload), crc32.ChecksumIEEE(r.Payload))}
}
