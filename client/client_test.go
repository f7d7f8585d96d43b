package client_test

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/aof2/aof2/client"
	"github.com/aof2/aof2/core"
	"github.com/aof2/aof2/core/segment"
	"github.com/aof2/aof2/host/server"
	"github.com/aof2/aof2/host/server/servertest"
)

// rollingConfig rolls segments over every 64 KiB.
func rollingConfig() core.Config {
	return core.Config{SegmentSize: segment.MinCapacity, SegmentTargetBytes: 64 << 10}
}

func connect(t *testing.T, h *servertest.Host, opts ...client.Option) *client.Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := client.Dial(ctx, h.GRPCAddr, opts...) // loopback: plaintext by default
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func payload(i, size int) []byte {
	p := make([]byte, size)
	for j := range p {
		p[j] = byte(i*13 + j)
	}
	copy(p, fmt.Sprintf("rec-%06d", i))
	return p
}

func TestAppendAndReadAcrossRollovers(t *testing.T) {
	h := servertest.Start(t, rollingConfig(), server.Options{})
	c := connect(t, h)
	ctx := ctxT(t)
	const n, size = 60, 8 << 10

	var ids []client.RecordID
	for i, k := 0, 0; i < n; k++ {
		var got []client.RecordID
		var err error
		switch k % 3 {
		case 0: // a durable batch
			got, err = c.Append(ctx, 4, payload(i, size), payload(i+1, size), payload(i+2, size))
		case 1: // one record that does not wait for durability
			got, err = c.AppendNoWait(ctx, 4, payload(i, size))
		case 2: // records with their own timestamps and ext ids
			got, err = c.AppendRecords(ctx, 4, []client.Record{
				{Payload: payload(i, size), Timestamp: int64(i), ExtID: uint64(i)},
				{Payload: payload(i+1, size), Timestamp: int64(i), ExtID: uint64(i)},
			}, false)
		}
		require.NoError(t, err)
		ids = append(ids, got...)
		i += len(got)
	}
	ids = ids[:n]
	require.GreaterOrEqual(t, ids[n-1].Segment()-ids[0].Segment(), client.SegmentID(3), "several rollovers")
	_, err := c.Flush(ctx, 4)
	require.NoError(t, err)

	readFrom := func(from client.Position, page int) []client.Record {
		var out []client.Record
		for {
			res, err := c.Read(ctx, 4, from, page)
			require.NoError(t, err)
			out = append(out, res.Records...)
			if res.End {
				return out
			}
			require.NotEmpty(t, res.Records)
			from = res.Next
		}
	}
	check := func(got []client.Record, from int) {
		t.Helper()
		require.Len(t, got, len(ids)-from)
		for k, r := range got {
			i := from + k
			require.Equal(t, ids[i], r.ID)
			require.Equal(t, uint64(i), r.Ordinal)
			require.Equal(t, payload(i, size), r.Payload)
		}
	}
	check(readFrom(client.AtStart(), 7), 0)
	check(readFrom(client.Position{}, 0), 0)
	check(readFrom(client.AtID(ids[17]), 5), 17)
	check(readFrom(client.AtOrdinal(33), 100), 33)
	check(readFrom(client.AtOrdinal(n), 10), n)

	// Records 4 and 5 came from AppendRecords (k = 2).
	res, err := c.Read(ctx, 4, client.AtOrdinal(4), 1)
	require.NoError(t, err)
	require.Equal(t, int64(4), res.Records[0].Timestamp)
	require.Equal(t, uint64(4), res.Records[0].ExtID)
	next, ok := res.Next.ID()
	require.True(t, ok, "the next record was peeked: resume by id")
	require.Equal(t, ids[5], next)
}

func TestAppender(t *testing.T) {
	h := servertest.Start(t, rollingConfig(), server.Options{})
	c := connect(t, h)
	ctx := ctxT(t)

	a, err := c.NewAppender(ctx, 8)
	require.NoError(t, err)
	for i := 0; i < 50; i += 2 {
		require.NoError(t, a.Send(payload(i, 4<<10), payload(i+1, 4<<10)))
	}
	require.NoError(t, a.SendRecords([]client.Record{{Payload: []byte("last"), ExtID: 9}}, true))
	sum, err := a.CloseAndFlush()
	require.NoError(t, err)
	require.Equal(t, 51, sum.Count)
	require.True(t, sum.Durable)
	info, err := c.Info(ctx, 8)
	require.NoError(t, err)
	require.Equal(t, uint64(51), info.DurableRecords)
	res, err := c.Read(ctx, 8, client.AtID(sum.LastID), 10)
	require.NoError(t, err)
	require.Len(t, res.Records, 1)
	require.Equal(t, "last", string(res.Records[0].Payload))
	require.Equal(t, uint64(50), res.Records[0].Ordinal)

	// Only opted-out batches: nothing waited for.
	a, err = c.NewAppender(ctx, 8)
	require.NoError(t, err)
	require.NoError(t, a.SendRecords([]client.Record{{Payload: []byte("x")}}, true))
	sum, err = a.CloseAndFlush()
	require.NoError(t, err)
	require.Equal(t, 1, sum.Count)
	require.False(t, sum.Durable)

	// An empty call.
	a, err = c.NewAppender(ctx, 8)
	require.NoError(t, err)
	sum, err = a.CloseAndFlush()
	require.NoError(t, err)
	require.Zero(t, sum.Count)

	// Abort leaves what was received appended.
	a, err = c.NewAppender(ctx, 8)
	require.NoError(t, err)
	a.Abort()
	_, err = a.CloseAndFlush()
	require.ErrorIs(t, err, context.Canceled)
}

func TestTail(t *testing.T) {
	h := servertest.Start(t, rollingConfig(), server.Options{})
	c := connect(t, h)
	ctx := ctxT(t)
	_, err := c.Append(ctx, 2, []byte("old"))
	require.NoError(t, err)
	info, err := c.Info(ctx, 2)
	require.NoError(t, err)

	tl, err := c.Tail(ctx, 2, client.AtOrdinal(info.Records))
	require.NoError(t, err)
	defer tl.Close()

	// Nothing new yet: a short wait times out and the tail stays usable.
	wctx, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	_, err = tl.Next(wctx)
	cancel()
	require.ErrorIs(t, err, context.DeadlineExceeded)

	const n = 40
	go func() {
		for i := 0; i < n; i++ {
			if _, err := c.Append(ctx, 2, payload(i, 6<<10)); err != nil {
				t.Errorf("append %d: %v", i, err)
				return
			}
		}
	}()
	i := 0
	for r, err := range tl.All(ctx) {
		require.NoError(t, err)
		require.Equal(t, uint64(i+1), r.Ordinal)
		require.Equal(t, payload(i, 6<<10), r.Payload)
		if i++; i == n {
			break
		}
	}
	tl.Close()
	_, err = tl.Next(ctx)
	require.Error(t, err, "closed")

	// From the start, the tail replays everything durable.
	tl2, err := c.Tail(ctx, 2, client.AtStart())
	require.NoError(t, err)
	defer tl2.Close()
	r, err := tl2.Next(ctx)
	require.NoError(t, err)
	require.Equal(t, "old", string(r.Payload))
}

func TestStreamOps(t *testing.T) {
	h := servertest.Start(t, rollingConfig(), server.Options{})
	c := connect(t, h)
	ctx := ctxT(t)
	for _, id := range []client.StreamID{9, 3} {
		_, err := c.AppendNoWait(ctx, id, []byte("a"), []byte("b"))
		require.NoError(t, err)
	}
	in, err := c.Flush(ctx, 3)
	require.NoError(t, err)
	require.Equal(t, client.StreamID(3), in.ID)
	require.Equal(t, uint64(2), in.DurableRecords)
	require.Positive(t, in.MaxRecordSize)
	require.Empty(t, in.Failed)

	in, err = c.Seal(ctx, 3)
	require.NoError(t, err)
	require.Equal(t, 1, in.Sealed)
	ids, err := c.Append(ctx, 3, []byte("c"))
	require.NoError(t, err)
	in, err = c.Info(ctx, 3)
	require.NoError(t, err)
	require.Equal(t, 2, in.Segments)
	require.Equal(t, uint64(3), in.Records)
	require.Greater(t, in.DurableMark, ids[0])

	list, err := c.Streams(ctx)
	require.NoError(t, err)
	require.Equal(t, []client.StreamID{3, 9}, list.IDs)
	require.Empty(t, list.Broken)
}

func TestAdmin(t *testing.T) {
	h := servertest.Start(t, rollingConfig(), server.Options{})
	c := connect(t, h)
	ctx := ctxT(t)
	for i := 0; i < 30; i++ {
		_, err := c.Append(ctx, 1, payload(i, 8<<10))
		require.NoError(t, err)
	}
	_, err := c.Append(ctx, 2, []byte("x"))
	require.NoError(t, err)

	doc, err := c.Dump(ctx)
	require.NoError(t, err)
	require.True(t, json.Valid(doc))

	all, err := c.Segments(ctx, client.SegmentFilter{})
	require.NoError(t, err)
	one := client.StreamID(1)
	mine, err := c.Segments(ctx, client.SegmentFilter{Stream: &one, Tier: "tier0"})
	require.NoError(t, err)
	require.Len(t, all, len(mine)+1)
	require.GreaterOrEqual(t, len(mine), 3)
	for i, r := range mine {
		require.Equal(t, one, r.Stream)
		require.True(t, r.Tier0)
		require.Equal(t, i < len(mine)-1, r.Sealed, "all but the active one are sealed")
	}

	var got []client.HydrateProgress
	err = c.Hydrate(ctx, 1, mine[1].Segment, mine[2].Segment, func(p client.HydrateProgress) { got = append(got, p) })
	require.NoError(t, err)
	require.Equal(t, []client.HydrateProgress{{Done: 1, Total: 2, Segment: mine[1].Segment}, {Done: 2, Total: 2, Segment: mine[2].Segment}}, got)
	require.NoError(t, c.Hydrate(ctx, 1, 0, 0, nil))

	snap, err := c.SnapshotManifest(ctx, 1)
	require.NoError(t, err)
	require.Positive(t, snap.ID)
	require.GreaterOrEqual(t, snap.Segments, len(mine))
	require.Positive(t, snap.Bytes)
	again, err := c.SnapshotManifest(ctx, 1)
	require.NoError(t, err)
	require.Greater(t, again.ID, snap.ID)
	_, err = c.SnapshotManifest(ctx, 99)
	require.ErrorIs(t, err, core.ErrUnknownStream)
}

// TestConcurrentDurableAppends: many callers at once, each acknowledged
// only once durable, none lost or duplicated.
func TestConcurrentDurableAppends(t *testing.T) {
	h := servertest.Start(t, rollingConfig(), server.Options{})
	c := connect(t, h)
	ctx := ctxT(t)
	const writers, each = 16, 25
	errs := make(chan error, writers)
	idsCh := make(chan []client.RecordID, writers)
	for w := 0; w < writers; w++ {
		go func() {
			var mine []client.RecordID
			for i := 0; i < each; i++ {
				ids, err := c.Append(ctx, 1, payload(w*each+i, 512))
				if err != nil {
					errs <- err
					return
				}
				mine = append(mine, ids...)
			}
			idsCh <- mine
			errs <- nil
		}()
	}
	seen := map[client.RecordID]bool{}
	for w := 0; w < writers; w++ {
		require.NoError(t, <-errs)
	}
	for w := 0; w < writers; w++ {
		for _, id := range <-idsCh {
			require.False(t, seen[id])
			seen[id] = true
		}
	}
	in, err := c.Info(ctx, 1)
	require.NoError(t, err)
	require.Equal(t, uint64(writers*each), in.DurableRecords)
}
