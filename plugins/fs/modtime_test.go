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
// acknowledgement and in Head, although it started first. The clock is
// scripted (one reading per call, in order), so no timing is involved:
// "in order" has the slow Put read the clock after the fast one committed
// (the usual case); "stamped earlier" has it read an earlier time, as if
// it had stamped before the fast one committed and waited for the
// directory lock meanwhile, so that the commit must restamp it. The old
// code stamped ModTime when the Put started and failed both.
func TestModTimeIsVisibilityTime(t *testing.T) {
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name string
		// readings in seconds after base: the fast Put's stamp, then the
		// slow Put's stamp, then (if it restamps) its commit's reading.
		readings []int
	}{
		{"in order", []int{1, 2}},
		{"stamped earlier", []int{5, 3, 4}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := t.Context()
			var calls atomic.Int64
			b := New()
			b.now = func() time.Time {
				i := int(calls.Add(1)) - 1
				require.Less(t, i, len(tc.readings), "more clock readings than scripted")
				return base.Add(time.Duration(tc.readings[i]) * time.Second)
			}
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
			require.True(t, base.Add(time.Duration(tc.readings[0])*time.Second).Equal(fastAck.ModTime), "the fast Put's ModTime %v", fastAck.ModTime)
			head, err := b.Head(ctx, key)
			require.NoError(t, err)
			require.Equal(t, fastAck.ETag, head.ETag)
			require.True(t, fastAck.ModTime.Equal(head.ModTime), "Head reports the acknowledged ModTime")

			close(body.release)
			slowRes := testwait.Recv(t, done, testwait.Default, "the first Put to finish")
			require.NoError(t, slowRes.err)
			head, err = b.Head(ctx, key)
			require.NoError(t, err)
			require.Equal(t, slowRes.info.ETag, head.ETag, "the Put that finished last is visible")
			require.True(t, slowRes.info.ModTime.Equal(head.ModTime), "Head reports the acknowledged ModTime")
			require.True(t, head.ModTime.After(fastAck.ModTime),
				"the visible version's ModTime %v is not after the one it replaced (%v)", head.ModTime, fastAck.ModTime)
			require.EqualValues(t, len(tc.readings), calls.Load(), "clock readings")
		})
	}
}
