package tier2

import (
	"context"
	"io"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/aof2/aof2/conformance/fake"
	"github.com/aof2/aof2/pluginapi"
)

func TestRangeReader(t *testing.T) {
	e := newEnv(t, fake.Options{}, nil)
	data := payload(1<<20, 21)
	up := uploaded(t, e, data)
	rr, err := e.store.OpenSegmentRange(context.Background(), sk(4, 2), Expect{ETag: up.ETag, Size: up.Size, HasSize: true})
	require.NoError(t, err)
	assert.Equal(t, int64(len(data)), rr.Size())

	cases := []struct {
		name    string
		off     int64
		n       int
		wantN   int
		wantEOF bool
	}{
		{"first byte", 0, 1, 1, false},
		{"middle", 300_000, 4096, 4096, false},
		{"last byte", int64(len(data) - 1), 1, 1, false},
		{"past the end is clipped", int64(len(data) - 10), 100, 10, true},
		{"at the end", int64(len(data)), 10, 0, true},
		{"empty buffer", 5, 0, 0, false},
	}
	var fetched uint64
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := make([]byte, tc.n)
			n, err := rr.ReadAt(p, tc.off)
			assert.Equal(t, tc.wantN, n)
			if tc.wantEOF {
				assert.ErrorIs(t, err, io.EOF)
			} else {
				assert.NoError(t, err)
			}
			if n > 0 {
				assert.Equal(t, data[tc.off:tc.off+int64(n)], p[:n])
			}
			fetched += uint64(n)
			assert.Equal(t, fetched, rr.BytesFetched(), "only the bytes asked for are fetched")
		})
	}
	_, err = rr.ReadAt(make([]byte, 1), -1)
	assert.ErrorIs(t, err, pluginapi.ErrInvalidArgument)

	// As an io.ReadSeeker, the way a seekable-zstd reader consumes it.
	sr := io.NewSectionReader(rr, 0, rr.Size())
	_, err = sr.Seek(-100, io.SeekEnd)
	require.NoError(t, err)
	tail, err := io.ReadAll(sr)
	require.NoError(t, err)
	assert.Equal(t, data[len(data)-100:], tail)
}

func TestRangeReaderFaults(t *testing.T) {
	e := newEnv(t, fake.Options{}, nil)
	data := payload(256<<10, 22)
	up := uploaded(t, e, data)
	rr, err := e.store.OpenRange(context.Background(), up.Key, Expect{})
	require.NoError(t, err)

	t.Run("truncated range is re-fetched once", func(t *testing.T) {
		require.NoError(t, e.fake.Inject(fake.Fault{Mode: fake.Truncate, AfterBytes: 10, Count: 1}))
		p := make([]byte, 1000)
		n, err := rr.ReadAt(p, 5000)
		require.NoError(t, err)
		assert.Equal(t, 1000, n)
		assert.Equal(t, data[5000:6000], p)
		assert.Equal(t, uint64(1), e.retries(OpRangeRead))
	})
	t.Run("persistently short range is a checksum error", func(t *testing.T) {
		require.NoError(t, e.fake.Inject(fake.Fault{Mode: fake.Truncate, AfterBytes: 10}))
		_, err := rr.ReadAt(make([]byte, 1000), 5000)
		assert.ErrorIs(t, err, ErrChecksum)
		e.fake.ClearFaults()
	})
	t.Run("throttled range honours retry-after", func(t *testing.T) {
		require.NoError(t, e.fake.Inject(fake.Fault{Mode: fake.Throttle, Ops: []fake.Op{fake.OpGet}, Count: 1, RetryAfter: 3e9}))
		p := make([]byte, 10)
		_, err := rr.ReadAt(p, 0)
		require.NoError(t, err)
		sleeps := e.clock.Sleeps()
		assert.GreaterOrEqual(t, sleeps[len(sleeps)-1].Seconds(), 3.0)
	})
	t.Run("a rewritten object is not read", func(t *testing.T) {
		require.NoError(t, e.fake.Delete(context.Background(), up.Key))
		e.rawPut(up.Key, data, nil)
		_, err := rr.ReadAt(make([]byte, 10), 0)
		assert.ErrorIs(t, err, pluginapi.ErrPrecondition)
	})
	t.Run("open checks expectations", func(t *testing.T) {
		_, err := e.store.OpenRange(context.Background(), up.Key, Expect{ETag: "stale"})
		assert.ErrorIs(t, err, pluginapi.ErrPrecondition)
		_, err = e.store.OpenRange(context.Background(), "streams/4/segments/00000000000000000009.seg.zst", Expect{})
		assert.ErrorIs(t, err, pluginapi.ErrNotFound)
	})
}
