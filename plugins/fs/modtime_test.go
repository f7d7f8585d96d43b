package fs

import (
	"bytes"
	"context"
	"io"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/aof2/aof2/internal/testwait"
	"github.com/aof2/aof2/pluginapi"
)

// heldBody yields head, then blocks until release is closed (or ctx ends),
// then yields tail: a Put that stays open while another one completes.
type heldBody struct {
	ctx           context.Context
	head, tail    []byte
	reached       chan struct{}
	release       chan struct{}
	reachedClosed bool
}

func (b *heldBody) Read(p []byte) (int, error) {
	if len(b.head) > 0 {
		n := copy(p, b.head)
		b.head = b.head[n:]
		return n, nil
	}
	if !b.reachedClosed {
		b.reachedClosed = true
		close(b.reached)
		select {
		case <-b.release:
		case <-b.ctx.Done():
			return 0, b.ctx.Err()
		}
	}
	if len(b.tail) == 0 {
		return 0, io.EOF
	}
	n := copy(p, b.tail)
	b.tail = b.tail[n:]
	return n, nil
}

// TestModTimeIsVisibilityTime: of two overlapping Puts of one key, the one
// that becomes visible last reports the later ModTime, in its
// acknowledgement and in Head, although it started first. The clock ticks
// once per reading, so the order is exact and no timing is involved; the
// old code stamped ModTime when the Put started and failed this.
func TestModTimeIsVisibilityTime(t *testing.T) {
	ctx := t.Context()
	var ticks atomic.Int64
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	b := New()
	b.now = func() time.Time { return base.Add(time.Duration(ticks.Add(1)) * time.Second) }
	_, err := b.Configure(ctx, pluginapi.ConfigureRequest{Config: map[string]string{"root": t.TempDir()}})
	require.NoError(t, err)
	t.Cleanup(func() { _ = b.Close() })

	const key = "streams/1/object"
	slow := []byte("the Put that started first and finishes last")
	body := &heldBody{ctx: ctx, head: slow[:10], tail: slow[10:], reached: make(chan struct{}), release: make(chan struct{})}
	type result struct {
		info pluginapi.ObjectInfo
		err  error
	}
	done := make(chan result, 1)
	go func() {
		info, err := b.Put(ctx, pluginapi.PutRequest{Key: key, Size: uint64(len(slow)), CRC64: pluginapi.CRC64(slow)}, body)
		done <- result{info, err}
	}()
	testwait.Recv(t, body.reached, testwait.Default, "the first Put to start writing")

	fast := []byte("the Put that started second and finishes first")
	fastAck, err := b.Put(ctx, pluginapi.PutRequest{Key: key, Size: uint64(len(fast)), CRC64: pluginapi.CRC64(fast)}, bytes.NewReader(fast))
	require.NoError(t, err)
	head, err := b.Head(ctx, key)
	require.NoError(t, err)
	require.Equal(t, fastAck.ETag, head.ETag)
	require.Equal(t, fastAck.ModTime, head.ModTime, "Head reports the acknowledged ModTime")

	close(body.release)
	slowRes := testwait.Recv(t, done, testwait.Default, "the first Put to finish")
	require.NoError(t, slowRes.err)
	head, err = b.Head(ctx, key)
	require.NoError(t, err)
	require.Equal(t, slowRes.info.ETag, head.ETag, "the Put that finished last is visible")
	require.Equal(t, slowRes.info.ModTime, head.ModTime, "Head reports the acknowledged ModTime")
	require.True(t, head.ModTime.After(fastAck.ModTime),
		"the visible version's ModTime %v is not after the one it replaced (%v)", head.ModTime, fastAck.ModTime)
}
