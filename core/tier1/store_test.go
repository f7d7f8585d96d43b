package tier1

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/aof2/aof2/core"
	"github.com/aof2/aof2/core/segment"
	"github.com/aof2/aof2/core/vfs"
)

// TestStoreSegments compresses and hydrates segments sealed by the engine
// itself (core.Open, Stream.Append, Seal).
func TestStoreSegments(t *testing.T) {
	mem := vfs.NewMem()
	st, err := core.Open("/data", core.Config{FS: mem, SegmentSize: 1 << 20})
	require.NoError(t, err)
	s, err := st.Stream(42)
	require.NoError(t, err)
	var payloads [][]byte
	for i := range 8000 { // about 3 segments of log lines
		p := logLine(rngFor(uint64(i)), i)
		_, err := s.AppendDurable(context.Background(), p, core.AppendOptions{})
		require.NoError(t, err)
		payloads = append(payloads, p)
	}
	require.NoError(t, s.Seal(context.Background()))
	require.NoError(t, st.Close())

	segDir := "/data/streams/42/segments"
	names, err := mem.List(segDir)
	require.NoError(t, err)
	c, _ := openCache(t, Config{FS: mem})
	sealed, seen := 0, 0
	for _, n := range names {
		name, ok := segment.ParseFileName(n)
		if !ok {
			continue
		}
		path := filepath.Join(segDir, n)
		res, err := c.Compress(context.Background(), Source{Stream: 42, Segment: name.SegmentID, Path: path})
		if err != nil {
			require.ErrorIs(t, err, ErrSourceCorrupt, "only an unsealed (active) segment may be refused")
			require.True(t, strings.Contains(err.Error(), "not sealed"), err.Error())
			t.Logf("skipped %s: %v", n, err)
			continue
		}
		sealed++
		dest := filepath.Join("/data/rehydrated", n)
		h, err := c.Hydrate(context.Background(), HydrateRequest{Expected: Expected{Key: res.Key, SegmentCRC: res.SegmentCRC, Capacity: res.Capacity, CompressedBytes: res.CompressedBytes}, Dest: dest})
		require.NoError(t, err)
		require.Equal(t, readAll(t, mem, path), readAll(t, mem, h.Path))

		// Every record reads back through frame-level access.
		a, err := c.OpenArtifact(res.Key)
		require.NoError(t, err)
		for off := int64(segment.HeaderSize); off < int64(res.DurableBytes); {
			rec, err := a.ReadRecord(off, int64(res.DurableBytes))
			require.NoError(t, err)
			require.Equal(t, payloads[seen], rec.Payload)
			seen++
			off = rec.Next()
		}
		require.NoError(t, a.Close())
	}
	require.GreaterOrEqual(t, sealed, 3)
	require.Equal(t, len(payloads), seen, "every appended record is in a sealed segment")
}
