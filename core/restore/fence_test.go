package restore_test

import (
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/aof2/aof2/conformance/fake"
	"github.com/aof2/aof2/core"
	"github.com/aof2/aof2/core/coordinator"
	"github.com/aof2/aof2/core/restore"
	"github.com/aof2/aof2/core/tier2"
	"github.com/aof2/aof2/core/types"
	"github.com/aof2/aof2/internal/testseed"
	"github.com/aof2/aof2/internal/testwait"
	"github.com/aof2/aof2/pluginapi"
)

// countingBackend counts the successful writes of each key.
type countingBackend struct {
	*fake.Backend
	mu     sync.Mutex
	writes map[string]int
}

func (c *countingBackend) count(key string, err error) {
	if err == nil {
		c.mu.Lock()
		c.writes[key]++
		c.mu.Unlock()
	}
}

func (c *countingBackend) Put(ctx context.Context, req pluginapi.PutRequest, body io.Reader) (pluginapi.ObjectInfo, error) {
	info, err := c.Backend.Put(ctx, req, body)
	c.count(req.Key, err)
	return info, err
}

func (c *countingBackend) PutFile(ctx context.Context, req pluginapi.PutRequest, path string) (pluginapi.ObjectInfo, error) {
	info, err := c.Backend.PutFile(ctx, req, path)
	c.count(req.Key, err)
	return info, err
}

// TestTakeoverOneHistory, 20 times with random timing: node A writes
// durable records to two streams; at a random moment node B takes the
// prefix over. A is fenced at its next tier-2 mutation (its appends then
// fail with ErrFenced) and mutates nothing more; no tier-2 object is
// written twice. B restores the prefix and serves every record A
// acknowledged that reached tier 2 with its id (the others lie in the
// segments restore reports lost), and appends after them; once B
// stopped, a third node restoring the prefix sees that same history, A's
// records and B's.
func TestTakeoverOneHistory(t *testing.T) {
	seed := testseed.From(t, "AOF2_TAKEOVER_SEED")
	rng := rand.New(rand.NewPCG(seed, seed))
	for i := range 20 {
		takeoverOnce(t, i, time.Duration(50+rng.IntN(400))*time.Millisecond)
	}
}

func takeoverOnce(t *testing.T, run int, after time.Duration) {
	ctx, cancel := context.WithTimeout(context.Background(), testwait.Default)
	defer cancel()
	fb := fake.New(fake.Options{})
	cb := &countingBackend{Backend: fb, writes: map[string]int{}}
	a := startNodeOver(t, t.TempDir(), cb, manifestOpts)

	var mu sync.Mutex
	var acked []written
	var wg sync.WaitGroup
	fenced := make(chan error, 2)
	for _, sid := range []types.StreamID{1, 2} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s, err := a.st.Stream(sid)
			if err != nil {
				fenced <- err
				return
			}
			for i := 0; ; i++ {
				p := payload(sid, i)
				id, err := s.AppendDurable(ctx, p, core.AppendOptions{})
				if err != nil {
					fenced <- err
					return
				}
				mu.Lock()
				acked = append(acked, written{sid, id, p})
				mu.Unlock()
			}
		}()
	}
	time.Sleep(after)
	bDir := t.TempDir()
	rec, err := coordinator.Takeover(ctx, nil, bDir, newRemoteOver(t, cb))
	require.NoError(t, err)
	require.Equal(t, uint64(2), rec.Epoch)
	testwait.Until(t, testwait.Default, 5*time.Millisecond, func() bool { return a.c.Fenced() != nil }, "run %d: A fenced", run)
	wg.Wait()
	for range 2 {
		require.ErrorIs(t, <-fenced, core.ErrFenced, "run %d: A's appends end fenced", run)
	}
	a.stop(t) // waits for A's one mutation in flight, if any
	before := objectsByKey(fb)

	_, err = restore.Run(ctx, restoreCfg(bDir, fb, t), nil)
	require.NoError(t, err, "run %d", run)
	b := startNodeOver(t, bDir, cb, manifestOpts)
	var bAcked []written
	for _, sid := range []types.StreamID{1, 2} {
		s, err := b.st.Lookup(sid)
		if errors.Is(err, core.ErrUnknownStream) && !slices.ContainsFunc(acked, func(w written) bool { return w.stream == sid }) {
			// A was fenced before tier 2 held the stream's first
			// segment-id reservation: it handed out no id in it.
			s, err = b.st.Stream(sid)
		}
		require.NoError(t, err, "run %d: stream %d", run, sid)
		for i := range 200 {
			p := payload(sid, 100000+i)
			id, err := s.AppendDurable(ctx, p, core.AppendOptions{})
			require.NoError(t, err)
			bAcked = append(bAcked, written{sid, id, p})
		}
		require.NoError(t, s.Seal(ctx))
		testwait.Until(t, testwait.Default, 5*time.Millisecond, func() bool { return uploaded(s) }, "run %d: B's stream %d uploaded", run, sid)
	}
	b.stop(t)
	for k, n := range cb.writes {
		if k != tier2.WriterKey {
			require.LessOrEqual(t, n, 1, "run %d: %s written %d times", run, k, n)
		}
	}
	for k, etag := range before {
		info, ok := fb.Stored(k)
		if ok && k != tier2.WriterKey {
			require.Equal(t, etag, info.ETag, "run %d: %s replaced", run, k)
		}
	}

	// A third node restores the history A and B wrote.
	cDir := t.TempDir()
	rep, err := takeoverAndRestore(ctx, t, cDir, fb)
	require.NoError(t, err, "run %d", run)
	lost := map[types.StreamID][]types.SegmentID{}
	for _, sr := range rep.Streams {
		lost[sr.Stream] = sr.Lost
	}
	c := startNodeOver(t, cDir, fb, manifestOpts)
	defer c.stop(t)
	for _, w := range append(acked, bAcked...) {
		s, err := c.st.Lookup(w.stream)
		require.NoError(t, err)
		rec, err := s.ReadAt(ctx, w.id)
		if err != nil && isLost(lost[w.stream], w.id.Segment()) {
			continue // acknowledged by A, never uploaded: lost with A
		}
		require.NoError(t, err, "run %d: stream %d record %s", run, w.stream, w.id)
		require.Equal(t, w.payload, rec.Payload, "run %d: stream %d record %s", run, w.stream, w.id)
	}
}

func isLost(ids []types.SegmentID, id types.SegmentID) bool {
	for _, l := range ids {
		if l == id {
			return true
		}
	}
	return false
}

func objectsByKey(b *fake.Backend) map[string]string {
	out := map[string]string{}
	for _, k := range b.Keys() {
		info, _ := b.Stored(k)
		out[k] = info.ETag
	}
	return out
}

// TestRecordedLostIDsStayTaken: the ids a restore recorded as lost in tier
// 2 stay taken by every later restore, even one with a smaller reservation
// window, and later restores lay them out exactly as recorded.
func TestRecordedLostIDsStayTaken(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), testwait.Default)
	defer cancel()
	b := fake.New(fake.Options{})
	writeStreams(t, b, manifestOpts, 1)
	rep, err := takeoverAndRestore(ctx, t, t.TempDir(), b)
	require.NoError(t, err)
	first := rep.Streams[0].Lost
	require.NotEmpty(t, first)

	cDir := t.TempDir()
	_, err = coordinator.Takeover(ctx, nil, cDir, newRemote(t, b))
	require.NoError(t, err)
	cfg := restoreCfg(cDir, b, t)
	cfg.ReserveSegments = 2
	rep, err = restore.Run(ctx, cfg, nil)
	require.NoError(t, err)
	require.Subset(t, rep.Streams[0].Lost, first, "every id recorded lost is lost again")
	c := startNode(t, cDir, b)
	defer c.stop(t)
	s, err := c.st.Lookup(1)
	require.NoError(t, err)
	id, err := s.AppendDurable(ctx, []byte("after"), core.AppendOptions{})
	require.NoError(t, err)
	require.Greater(t, id.Segment(), first[len(first)-1], "a new segment takes an id after every recorded lost one")
}

// TestRestoreCountsThePreviousWritersReserveWindow: the previous writer
// reserved with a larger tier2.reserve_segments (64) than the restoring
// host's (16). Its next reservation, in flight at the takeover, could
// reach 64 ids past the highest one listed, and it may have handed out
// ids in it: the restore counts the window the reservation records, so
// no id up to there is given to a new segment.
func TestRestoreCountsThePreviousWritersReserveWindow(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), testwait.Default)
	defer cancel()
	b := fake.New(fake.Options{})
	writeStreams(t, b, manifestOpts, 1)
	remote := newRemote(t, b)
	l, err := remote.ListStream(ctx, 1)
	require.NoError(t, err)
	highest := l.Reserved() + 1
	_, err = remote.Reserve(ctx, 1, highest, 64) // the previous writer's, window 64
	require.NoError(t, err)

	dir := t.TempDir()
	rep, err := takeoverAndRestore(ctx, t, dir, b) // this host: window 16
	require.NoError(t, err)
	lost := rep.Streams[0].Lost
	require.NotEmpty(t, lost)
	require.Equal(t, highest+64, lost[len(lost)-1], "ids up to the previous writer's window past its highest reservation are lost")
	c := startNode(t, dir, b)
	defer c.stop(t)
	s, err := c.st.Lookup(1)
	require.NoError(t, err)
	id, err := s.AppendDurable(ctx, []byte("after"), core.AppendOptions{})
	require.NoError(t, err)
	require.Greater(t, id.Segment(), highest+64, "a new segment takes an id past every one the previous writer may have handed out")
}

// TestRestoreRefusesAnImplausibleReservation: a reservation key far past
// every id the stream's tier 2 names (a stray or damaged key: no writer
// reserves billions of ids ahead) is refused, naming the key, instead of
// planning every id up to it as an entry and a lost record.
func TestRestoreRefusesAnImplausibleReservation(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), testwait.Default)
	defer cancel()
	b := fake.New(fake.Options{})
	writeStreams(t, b, manifestOpts, 1)
	_, err := newRemote(t, b).Reserve(ctx, 1, 4_000_000_000, 16)
	require.NoError(t, err)
	_, err = takeoverAndRestore(ctx, t, t.TempDir(), b)
	require.ErrorIs(t, err, restore.ErrImplausibleID)
	require.ErrorContains(t, err, "reservations/00000000004000000000.rsv")
}
