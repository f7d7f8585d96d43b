package tier1

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/stretchr/testify/require"

	"github.com/aof2/aof2/core/segment"
	"github.com/aof2/aof2/core/types"
	"github.com/aof2/aof2/core/vfs"
)

var (
	services = []string{"api-gateway", "billing", "auth", "search", "inventory", "checkout", "notifier"}
	levels   = []string{"INFO", "INFO", "INFO", "DEBUG", "WARN", "ERROR"}
	paths    = []string{"/v1/orders", "/v1/orders/{id}", "/v1/users/{id}", "/healthz", "/v2/search", "/v1/cart/items"}
	msgs     = []string{"request completed", "cache miss", "upstream timeout, retrying", "user authenticated",
		"payment authorised", "rate limit applied", "slow query detected"}
)

// logLine returns a realistic JSON log line: repeated keys and vocabulary,
// varying numbers, ids and timestamps.
func logLine(r *rand.Rand, i int) []byte {
	return fmt.Appendf(nil, `{"ts":"2026-03-%02dT%02d:%02d:%02d.%06dZ","level":%q,"service":%q,"host":"ip-10-0-%d-%d",`+
		`"trace_id":"%016x%016x","span_id":"%016x","method":"GET","path":%q,"status":%d,"latency_ms":%.3f,`+
		`"bytes":%d,"user_id":%d,"seq":%d,"msg":%q}`,
		1+r.IntN(28), r.IntN(24), r.IntN(60), r.IntN(60), r.IntN(1000000),
		levels[r.IntN(len(levels))], services[r.IntN(len(services))], r.IntN(8), r.IntN(256),
		r.Uint64(), r.Uint64(), r.Uint64(), paths[r.IntN(len(paths))], []int{200, 200, 200, 201, 204, 404, 500}[r.IntN(7)],
		r.ExpFloat64()*40, r.IntN(1<<16), r.IntN(100000), i, msgs[r.IntN(len(msgs))])
}

type written struct {
	off     int64
	payload []byte
}

type testSegment struct {
	path    string
	stream  types.StreamID
	seg     types.SegmentID
	foot    segment.Footer
	records []written
}

func (s testSegment) key() types.SegmentKey {
	return types.SegmentKey{Stream: s.stream, Segment: s.seg}
}

func (s testSegment) expected() Expected {
	return Expected{Key: s.key(), SegmentCRC: s.foot.SegmentCRC}
}

func (s testSegment) source() Source { return Source{Stream: s.stream, Path: s.path, Segment: s.seg} }

// writeSegment writes and seals a segment of the given capacity under
// <dataDir>/streams/<stream>/segments, filling about fill bytes of it with
// log lines (a negative fill writes until the segment is full).
func writeSegment(t testing.TB, fsys vfs.FS, dataDir string, stream types.StreamID, seg types.SegmentID, capacity, fill int64, seed uint64) testSegment {
	t.Helper()
	dir := filepath.Join(dataDir, "streams", strconv.FormatUint(uint64(stream), 10), "segments")
	require.NoError(t, vfs.MkdirAllSync(fsys, dir))
	p, err := segment.Prepare(fsys, filepath.Join(dir, segment.PrepName(seg)), capacity, segment.PrepareFallocate, segment.WritePwrite)
	require.NoError(t, err)
	w, err := p.Activate(segment.Header{StreamID: stream, SegmentID: seg, CreatedAt: int64(seg)})
	require.NoError(t, err)
	r := rand.New(rand.NewPCG(seed, uint64(seg)))
	ts := testSegment{path: w.Path(), stream: stream, seg: seg}
	for i := 0; fill < 0 || w.End() < fill; i++ {
		line := logLine(r, i)
		off, err := w.Append(line, int64(i), uint64(i))
		if err == segment.ErrFull {
			break
		}
		require.NoError(t, err)
		ts.records = append(ts.records, written{off: off, payload: line})
	}
	ts.foot, err = w.Seal(segment.SealParams{SealedAt: 1})
	require.NoError(t, err)
	require.NoError(t, w.Close())
	require.NoError(t, fsys.SyncDir(dir))
	return ts
}

func readAll(t testing.TB, fsys vfs.FS, path string) []byte {
	t.Helper()
	b, err := vfs.ReadFile(fsys, path)
	require.NoError(t, err)
	return b
}

func openFile(t testing.TB, fsys vfs.FS, path string) *Artifact {
	t.Helper()
	f, err := fsys.Open(path)
	require.NoError(t, err)
	size, err := f.Size()
	require.NoError(t, err)
	a, err := OpenReaderAt(f, size, path)
	require.NoError(t, err)
	a.onClose = f.Close
	return a
}

func exists(t testing.TB, fsys vfs.FS, path string) bool {
	t.Helper()
	_, err := fsys.Stat(path)
	if vfs.IsNotExist(err) {
		return false
	}
	require.NoError(t, err)
	return true
}

// noTemps asserts no temporary file is left in dir.
func noTemps(t testing.TB, fsys vfs.FS, dir string) {
	t.Helper()
	names, err := fsys.List(dir)
	if vfs.IsNotExist(err) {
		return
	}
	require.NoError(t, err)
	for _, n := range names {
		require.NotContains(t, n, TempSuffix, "leftover temporary file in %s", dir)
	}
}

// value reads a counter's or gauge's current value.
func value(t testing.TB, m prometheus.Metric) float64 {
	t.Helper()
	var out dto.Metric
	require.NoError(t, m.Write(&out))
	switch {
	case out.Counter != nil:
		return out.Counter.GetValue()
	case out.Gauge != nil:
		return out.Gauge.GetValue()
	}
	t.Fatalf("not a counter or gauge")
	return 0
}

func asErr[T error](err error, target *T) bool { return errors.As(err, target) }

func rngFor(i uint64) *rand.Rand { return rand.New(rand.NewPCG(i, 99)) }
