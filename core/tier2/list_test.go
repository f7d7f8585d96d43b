package tier2

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/aof2/aof2/conformance/fake"
	"github.com/aof2/aof2/core/types"
	"github.com/aof2/aof2/pluginapi"
)

func TestListStream(t *testing.T) {
	e := newEnv(t, fake.Options{}, func(c *Config) { c.Prefix = "pfx" })
	ctx := context.Background()
	for seg := uint64(1); seg <= 3; seg++ {
		_, err := e.store.UploadSegment(ctx, sk(1, seg), writeFile(t, payload(100, byte(seg))), SegmentInfo{RecordCount: seg, BaseRecord: 10 * seg})
		require.NoError(t, err)
	}
	_, err := e.store.UploadManifestChunk(ctx, 1, 0, payload(10, 1))
	require.NoError(t, err)
	_, err = e.store.UploadSnapshot(ctx, 1, 4, SnapshotPosition{}, payload(10, 2))
	require.NoError(t, err)
	_, err = e.store.UploadSegment(ctx, sk(10, 1), writeFile(t, payload(10, 3)), SegmentInfo{}) // stream 10 shares the "1" digit
	require.NoError(t, err)
	e.rawPut("pfx/streams/1/segments/junk.tmp", []byte("x"), nil)
	e.rawPut("pfx/streams/1/segments/00000000000000000009.seg.zst", []byte("y"), map[string]string{MetaCRC64: "zz"})
	e.rawPut("other/streams/1/segments/00000000000000000001.seg.zst", []byte("z"), nil)

	// A failed page is retried from the last key seen.
	require.NoError(t, e.fake.Inject(fake.Fault{Mode: fake.ServerError, Ops: []fake.Op{fake.OpList}, Count: 1}))
	l, err := e.store.ListStream(ctx, 1)
	require.NoError(t, err)
	require.Len(t, l.Segments, 4)
	for i, s := range l.Segments[:3] {
		assert.Equal(t, Ref{KindSegment, 1, uint64(i + 1)}, s.Ref)
		require.NoError(t, s.MetaErr)
		assert.Equal(t, uint64(i+1), s.Meta.RecordCount)
		assert.Equal(t, uint64(10*(i+1)), s.Meta.BaseRecord)
	}
	assert.Error(t, l.Segments[3].MetaErr, "malformed metadata is reported")
	require.Len(t, l.ManifestChunks, 1)
	assert.Equal(t, uint64(0), l.ManifestChunks[0].Ref.ID)
	require.Len(t, l.Snapshots, 1)
	assert.Equal(t, uint64(4), l.Snapshots[0].Ref.ID)
	require.Len(t, l.Unknown, 1)
	assert.Equal(t, "pfx/streams/1/segments/junk.tmp", l.Unknown[0].Info.Key)
	assert.Equal(t, 1.0, e.requests(ClassList, OutcomeUnavailable))
}

func TestListStreamPages(t *testing.T) {
	e := newEnv(t, fake.Options{}, nil)
	for i := uint64(0); i < 2500; i++ {
		e.rawPut(e.store.Layout().ManifestChunkKey(3, i), []byte{byte(i)}, nil)
	}
	// Fail the listing after its first page.
	h := &pagedFail{Backend: e.fake}
	st, err := New(h, Config{Clock: e.clock, Logger: e.store.log})
	require.NoError(t, err)
	l, err := st.ListStream(context.Background(), 3)
	require.NoError(t, err)
	require.Len(t, l.ManifestChunks, 2500)
	for i, c := range l.ManifestChunks {
		require.Equal(t, uint64(i), c.Ref.ID)
	}
	assert.Equal(t, 2, h.calls)
	assert.Equal(t, l.ManifestChunks[999].Info.Key, h.secondStart, "resumed after the last key seen")
}

type pagedFail struct {
	pluginapi.Backend
	calls       int
	secondStart string
}

func (p *pagedFail) List(ctx context.Context, req pluginapi.ListRequest, page func([]pluginapi.ObjectInfo) error) error {
	p.calls++
	if p.calls > 1 {
		p.secondStart = req.StartAfter
		return p.Backend.List(ctx, req, page)
	}
	pages := 0
	err := p.Backend.List(ctx, req, func(objs []pluginapi.ObjectInfo) error {
		if pages == 1 {
			return &pluginapi.Error{Code: pluginapi.CodeUnavailable, Message: "connection reset"}
		}
		pages++
		return page(objs)
	})
	return err
}

func TestDeleteIsIdempotent(t *testing.T) {
	e := newEnv(t, fake.Options{}, nil)
	ctx := context.Background()
	up, err := e.store.UploadSegment(ctx, sk(2, 1), writeFile(t, payload(10, 1)), SegmentInfo{})
	require.NoError(t, err)
	require.NoError(t, e.fake.Inject(fake.Fault{Mode: fake.ServerError, Ops: []fake.Op{fake.OpDelete}, Count: 1}))
	require.NoError(t, e.store.DeleteSegment(ctx, sk(2, 1)))
	_, err = e.store.Stat(ctx, up.Key)
	assert.ErrorIs(t, err, pluginapi.ErrNotFound)
	require.NoError(t, e.store.DeleteSegment(ctx, sk(2, 1)), "deleting a missing object succeeds")
	h := &hook{Backend: e.fake, before: failTimes("delete", 1, pluginapi.NotFoundError(up.Key))}
	st, err := New(h, Config{Clock: e.clock, Logger: e.store.log})
	require.NoError(t, err)
	require.NoError(t, st.Delete(ctx, up.Key), "a backend answering not-found is success too")
	assert.ErrorIs(t, e.store.Delete(ctx, "/abs"), pluginapi.ErrInvalidKey)
}

// TestListStreams: the skip-scan finds every stream with objects (under
// the prefix only) with one request per stream plus one, whatever the
// number of objects, and steps over keys outside the layout.
func TestListStreams(t *testing.T) {
	e := newEnv(t, fake.Options{}, func(c *Config) { c.Prefix = "pfx" })
	l := e.store.Layout()
	for _, stream := range []types.StreamID{1, 10, 2, 7} {
		for i := range uint64(30) {
			e.rawPut(l.ManifestChunkKey(stream, i), []byte{byte(i)}, nil)
			e.rawPut(l.SegmentObjectKey(types.SegmentKey{Stream: stream, Segment: types.SegmentID(i + 1)}), []byte{byte(i)}, nil)
		}
	}
	e.rawPut("pfx/streams/abc/x", []byte{1}, nil)           // not a stream directory
	e.rawPut("pfx/streams/3/\u00e9t\u00e9", []byte{1}, nil) // a stranger key past '~'
	e.rawPut("other/streams/4/manifest/x", []byte{1}, nil)  // outside the prefix
	ids, err := e.store.ListStreams(context.Background())
	require.NoError(t, err)
	assert.Equal(t, []types.StreamID{1, 10, 2, 3, 7}, ids)
	assert.Equal(t, 7.0, e.requests(ClassList, OutcomeOK), "one request per stream, one per stranger key, one to find the end")

	empty := newEnv(t, fake.Options{}, nil)
	ids, err = empty.store.ListStreams(context.Background())
	require.NoError(t, err)
	assert.Empty(t, ids)
}

func TestReserveIsIdempotentAndListed(t *testing.T) {
	s := newEnv(t, fake.Options{}, nil).store
	ctx := context.Background()
	for _, upto := range []types.SegmentID{16, 32, 32} {
		_, err := s.Reserve(ctx, 3, upto, 16)
		require.NoError(t, err)
	}
	_, err := s.Reserve(ctx, 3, 0, 16)
	require.Error(t, err)
	l, err := s.ListStream(ctx, 3)
	require.NoError(t, err)
	require.Len(t, l.Reservations, 2)
	require.Equal(t, types.SegmentID(32), l.Reserved())
	require.Empty(t, l.Unknown)
	require.Equal(t, types.SegmentID(0), Listing{}.Reserved())
	w, err := s.ReserveWindow(ctx, l)
	require.NoError(t, err)
	require.Equal(t, 16, w, "the window the highest reservation was stored with")
	w, err = s.ReserveWindow(ctx, Listing{})
	require.NoError(t, err)
	require.Zero(t, w)
	_, err = s.Reserve(ctx, 3, 48, 0)
	require.Error(t, err, "a reservation records a window of at least 1")
}
