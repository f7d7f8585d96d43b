package server

import (
	"bytes"
	"context"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/aof2/aof2/core"
)

// TestWriteReadJSON: the read answer written record by record is the
// readJSON document, byte for byte, and every record's bytes go back to
// the read budget once written.
func TestWriteReadJSON(t *testing.T) {
	big := bytes.Repeat([]byte("x<&>"), httpWriteChunk/2) // several chunks
	rec := func(i uint64, p []byte) core.Record {
		return core.Record{ID: core.RecordID(1<<32 + i*100), Ordinal: i, Timestamp: int64(i) * 1e9, ExtID: i, Payload: p}
	}
	for _, tc := range []struct {
		name string
		res  readResult
		text bool
	}{
		{"empty at the end", readResult{end: true}, false},
		{"next by id", readResult{records: []core.Record{rec(0, []byte("a")), rec(1, []byte("b"))}, next: atID(1<<32 + 200)}, false},
		{"next by ordinal, text", readResult{records: []core.Record{rec(4, []byte("héllo")), rec(5, []byte{0xff})}, next: atOrdinal(6), end: true}, true},
		{"large records", readResult{records: []core.Record{rec(0, big), rec(1, big), rec(2, []byte("c"))}, next: atOrdinal(3)}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			want := readJSON{Records: make([]recordJSON, len(tc.res.records)), End: tc.res.end}
			var held int64
			for i, r := range tc.res.records {
				r.Payload = bytes.Clone(r.Payload)
				want.Records[i] = recordToJSON(r, tc.text)
				held += int64(len(r.Payload) + perRecordFraming)
			}
			switch tc.res.next.kind {
			case posID:
				want.Next.From = recordToJSON(core.Record{ID: tc.res.next.id}, false).ID
			case posOrdinal:
				want.Next.Ordinal = new(tc.res.next.ordinal)
			}
			expected := httptest.NewRecorder()
			writeJSON(expected, 200, want)

			b := newReadBudget(1<<30, time.Minute, nil)
			h := b.newHold(context.Background())
			if held > 0 {
				require.NoError(t, h.wait(context.Background(), held))
			}
			got := httptest.NewRecorder()
			writeReadJSON(got, tc.res, tc.text, h, func() {})
			require.Equal(t, expected.Body.String(), got.Body.String())
			require.Equal(t, "application/json", got.Header().Get("Content-Type"))
			require.Zero(t, b.held.Load(), "written records are given back")
		})
	}
}
