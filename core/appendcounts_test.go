package core

import (
	"context"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"

	"github.com/aof2/aof2/core/vfs"
)

// TestAppendCounters: aof_append_records_total and aof_append_bytes_total
// count every way of appending, per stream, and keep their values once
// the streams are closed.
func TestAppendCounters(t *testing.T) {
	ctx := context.Background()
	reg := prometheus.NewRegistry()
	st, s := openStream1(t, Config{FS: vfs.NewMem(), Registerer: reg})
	s2, err := st.Stream(2)
	require.NoError(t, err)
	for range 3 {
		_, err := s.Append([]byte("abcd"), AppendOptions{})
		require.NoError(t, err)
	}
	_, err = s.AppendBatch([][]byte{[]byte("ef"), []byte("ghi")}, AppendOptions{})
	require.NoError(t, err)
	_, err = s.AppendCtx(ctx, []byte("j"), AppendOptions{})
	require.NoError(t, err)
	_, err = s.AppendIdempotent(ctx, Producer{ID: 9, Seq: 1}, []BatchRecord{{Payload: []byte("klmno")}}, true)
	require.NoError(t, err)
	_, err = s2.AppendBatch([][]byte{[]byte("x")}, AppendOptions{})
	require.NoError(t, err)
	_, err = s.AppendBatch([][]byte{[]byte("ok"), nil}, AppendOptions{}) // refused whole: counts nothing
	require.ErrorIs(t, err, ErrEmptyRecord)

	want := `
# HELP aof_append_bytes_total Payload bytes appended.
# TYPE aof_append_bytes_total counter
aof_append_bytes_total{stream_id="1"} 23
aof_append_bytes_total{stream_id="2"} 1
# HELP aof_append_records_total Records appended.
# TYPE aof_append_records_total counter
aof_append_records_total{stream_id="1"} 7
aof_append_records_total{stream_id="2"} 1
`
	names := []string{"aof_append_records_total", "aof_append_bytes_total"}
	require.NoError(t, testutil.GatherAndCompare(reg, strings.NewReader(want), names...))
	require.NoError(t, st.Close())
	require.NoError(t, testutil.GatherAndCompare(reg, strings.NewReader(want), names...), "closed streams keep their counts")
}
