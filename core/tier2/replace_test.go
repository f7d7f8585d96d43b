package tier2

import (
	"context"
	"errors"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/aof2/aof2/conformance/fake"
	"github.com/aof2/aof2/pluginapi"
)

// TestReplaceSegment: an object damaged at rest is overwritten with the
// verified bytes only while it is still the damaged object (if_match on
// its etag); a repeated replacement is idempotent; another object under
// the key is data loss, never overwritten; a backend without if_match
// never has an object overwritten.
func TestReplaceSegment(t *testing.T) {
	ctx := context.Background()
	data := payload(200<<10, 3)
	t.Run("a rotten object is replaced", func(t *testing.T) {
		e := newEnv(t, fake.Options{}, nil)
		up, err := e.store.UploadSegment(ctx, sk(7, 3), writeFile(t, data), SegmentInfo{RecordCount: 5})
		require.NoError(t, err)
		require.NoError(t, e.fake.Rot(up.Key, 1000))
		_, _, err = e.store.Fetch(ctx, up.Key, Expect{})
		require.ErrorIs(t, err, ErrChecksum, "the rot is found by a full read")

		rep, err := e.store.ReplaceSegment(ctx, sk(7, 3), writeFile(t, data), nil, SegmentInfo{RecordCount: 5}, up.ETag)
		require.NoError(t, err)
		require.False(t, rep.AlreadyPresent)
		got, info := e.rawGet(up.Key)
		require.Equal(t, data, got)
		require.Equal(t, rep.ETag, info.ETag)
		require.NotEqual(t, up.ETag, rep.ETag)
		_, _, err = e.store.Fetch(ctx, up.Key, Expect{})
		require.NoError(t, err)

		again, err := e.store.ReplaceSegment(ctx, sk(7, 3), "", data, SegmentInfo{RecordCount: 5}, up.ETag)
		require.NoError(t, err, "an earlier attempt stored these bytes: done")
		require.True(t, again.AlreadyPresent)
		require.Equal(t, rep.ETag, again.ETag)
	})
	t.Run("another object is not overwritten", func(t *testing.T) {
		e := newEnv(t, fake.Options{}, nil)
		up, err := e.store.UploadSegment(ctx, sk(7, 3), writeFile(t, data), SegmentInfo{})
		require.NoError(t, err)
		_, err = e.store.ReplaceSegment(ctx, sk(7, 3), "", payload(1000, 9), SegmentInfo{}, "not-its-etag")
		require.ErrorIs(t, err, ErrDataLoss)
		got, info := e.rawGet(up.Key)
		require.Equal(t, data, got)
		require.Equal(t, up.ETag, info.ETag)
	})
	t.Run("no if_match, no overwrite", func(t *testing.T) {
		caps := pluginapi.Capabilities{RangeGet: true, PutFile: true, GetFile: true, IfAbsent: true, List: true}
		e := newEnv(t, fake.Options{Capabilities: &caps}, nil)
		up, err := e.store.UploadSegment(ctx, sk(7, 3), writeFile(t, data), SegmentInfo{})
		require.NoError(t, err)
		require.NoError(t, e.fake.Rot(up.Key, 10))
		_, err = e.store.ReplaceSegment(ctx, sk(7, 3), "", data, SegmentInfo{}, up.ETag)
		require.True(t, errors.Is(err, errors.ErrUnsupported), "%v", err)
		_, info := e.rawGet(up.Key)
		require.Equal(t, up.ETag, info.ETag)
	})
}
