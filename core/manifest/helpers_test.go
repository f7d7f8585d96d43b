package manifest

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/stretchr/testify/require"

	"github.com/aof2/aof2/core/types"
	"github.com/aof2/aof2/core/vfs"
)

const testDir = "data/streams/7"

// manualClock is a Clock whose time and ticks the test drives.
type manualClock struct {
	mu      sync.Mutex
	now     time.Time
	tickers []*manualTicker
}

func newManualClock() *manualClock {
	return &manualClock{now: time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)}
}

func (c *manualClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *manualClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

func (c *manualClock) NewTicker(time.Duration) Ticker {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := &manualTicker{clk: c, c: make(chan time.Time, 1)}
	c.tickers = append(c.tickers, t)
	return t
}

// Tick fires every live ticker once (dropping the tick if one is pending).
func (c *manualClock) Tick() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, t := range c.tickers {
		if !t.stopped {
			select {
			case t.c <- c.now:
			default:
			}
		}
	}
}

// Live returns how many tickers run (created and not stopped).
func (c *manualClock) Live() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, t := range c.tickers {
		if !t.stopped {
			n++
		}
	}
	return n
}

type manualTicker struct {
	clk     *manualClock
	c       chan time.Time
	stopped bool // guarded by clk.mu
}

func (t *manualTicker) C() <-chan time.Time { return t.c }
func (t *manualTicker) Stop() {
	t.clk.mu.Lock()
	defer t.clk.mu.Unlock()
	t.stopped = true
}

// testOpts are deterministic options: small chunks, no timer, no automatic
// snapshots.
func testOpts() Options {
	return Options{ChunkCapacity: MinChunkCapacity, RotationPeriod: -1, SnapshotEveryBytes: -1, LogOnly: true, Clock: newManualClock()}
}

func openT(t testing.TB, fsys vfs.FS, opts Options) *Log {
	t.Helper()
	l, err := Open(context.Background(), fsys, testDir, 7, opts)
	require.NoError(t, err)
	return l
}

// genRecord returns a random appendable record; seq makes it unique, so
// that the fold of a record sequence changes if any record is lost,
// duplicated or reordered (LastLogicalOffset, counters).
func genRecord(r *rand.Rand, seq uint64, maxKey int) Record {
	h := Header{SegmentID: types.SegmentID(r.IntN(6) + 1), LogicalOffset: seq, TimestampMS: 1_700_000_000_000 + seq}
	key := func() string {
		n := 1 + r.IntN(maxKey)
		return fmt.Sprintf("streams/7/segments/%d-%s", seq, strings.Repeat("k", n))
	}
	switch r.IntN(15) {
	case 0:
		return SegmentOpened{Header: h, BaseOffset: r.Uint64(), Epoch: r.Uint32()}
	case 1:
		return SealSegment{Header: h, DurableBytes: r.Uint64(), SegmentCRC64: Hex64(r.Uint64()), ExtID: r.Uint64(), CoordinatorWatermark: r.Uint64(), FlushFailure: r.IntN(2) == 0}
	case 2:
		return CompressionStarted{Header: h, JobID: r.Uint32()}
	case 3:
		return CompressionDone{Header: h, CompressedBytes: r.Uint64(), DictionaryID: r.Uint32()}
	case 4:
		return CompressionFailed{Header: h, Reason: ReasonCode(r.IntN(6))}
	case 5:
		return UploadStarted{Header: h, Key: key()}
	case 6:
		return UploadDone{Header: h, Key: key(), ETag: strings.Repeat("e", r.IntN(40))}
	case 7:
		return UploadFailed{Header: h, Key: key(), Reason: ReasonCode(r.IntN(6))}
	case 8:
		return Tier2DeleteQueued{Header: h, Key: key()}
	case 9:
		return Tier2Deleted{Header: h, Key: key()}
	case 10:
		return HydrationStarted{Header: h, SourceTier: uint64(1 + r.IntN(2))}
	case 11:
		return HydrationDone{Header: h, ResidentBytes: r.Uint64()}
	case 12:
		return HydrationFailed{Header: h, Reason: ReasonCode(r.IntN(6))}
	case 13:
		return LocalEvicted{Header: h, ReclaimedBytes: uint64(r.IntN(1 << 20))}
	default:
		blob := make([]byte, r.IntN(maxKey+1))
		for i := range blob {
			blob[i] = byte(r.Uint32())
		}
		if len(blob) == 0 {
			blob = nil
		}
		return CustomEvent{Header: h, SchemaID: r.Uint32(), Blob: blob}
	}
}

// manualEpochMS is the time of a fresh manualClock: what Append stamps on
// records without a timestamp.
var manualEpochMS = uint64(newManualClock().Now().UnixMilli())

// commitRandom appends n random records one AppendCommit at a time,
// continuing the sequence of recs, and returns the extended slice.
func commitRandom(t testing.TB, l *Log, r *rand.Rand, recs []Record, n, maxKey int) []Record {
	t.Helper()
	for range n {
		rec := genRecord(r, uint64(len(recs)), maxKey)
		recs = append(recs, rec)
		require.NoError(t, l.AppendCommit(context.Background(), rec))
	}
	return recs
}

// fold returns the index of recs applied in order to an empty index, as a
// Log with a fresh manualClock would have stamped them.
func fold(streamID types.StreamID, recs []Record) *Index {
	x := NewIndex(streamID)
	for _, r := range stamped(recs) {
		x.Apply(r)
	}
	return x
}

// stamped returns recs with zero timestamps set as Append sets them.
func stamped(recs []Record) []Record {
	out := make([]Record, len(recs))
	for i, r := range recs {
		if h := r.GetHeader(); h.TimestampMS == 0 {
			h.TimestampMS = manualEpochMS
			r = r.withHeader(h)
		}
		out[i] = r
	}
	return out
}

// frameBytes is the encoded size of recs.
func frameBytes(t testing.TB, recs ...Record) int64 {
	t.Helper()
	var n int64
	for _, r := range recs {
		b, err := appendRecord(nil, r)
		require.NoError(t, err)
		n += int64(len(b))
	}
	return n
}

// jsonLogger returns an hclog logger writing JSON lines to buf.
func jsonLogger(buf *syncBuffer) hclog.Logger {
	return hclog.New(&hclog.LoggerOptions{Output: buf, JSONFormat: true, Level: hclog.Debug})
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
