package fs_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/aof2/aof2/pluginapi"
)

// stallingBody yields head, then calls stall (which ends ctx) and yields
// tail: the Put's context ends while its body is being written.
type stallingBody struct {
	head, tail []byte
	stall      func()
}

func (b *stallingBody) Read(p []byte) (int, error) {
	if len(b.head) > 0 {
		n := copy(p, b.head)
		b.head = b.head[n:]
		return n, nil
	}
	if b.stall != nil {
		b.stall()
		b.stall = nil
	}
	if len(b.tail) == 0 {
		return 0, errors.New("stallingBody: read past the end")
	}
	n := copy(p, b.tail)
	b.tail = b.tail[n:]
	return n, nil
}

// A Put whose context ends mid-body returns the context's error
// (docs/plugin-contract.md#rpcs), classified as such: CANCELED or
// DEADLINE_EXCEEDED (retryable), not INTERNAL, the "anything else" that
// counts against the host's breaker.
func TestPutEndedByItsContextReturnsTheContextError(t *testing.T) {
	b, _, _ := newFS(t)
	data := make([]byte, 3<<20)
	for i := range data {
		data[i] = byte(i * 7)
	}
	cases := []struct {
		name string
		ctx  func() (context.Context, func(), context.CancelFunc)
		want error
		code pluginapi.Code
	}{
		{"cancelled", func() (context.Context, func(), context.CancelFunc) {
			ctx, cancel := context.WithCancel(t.Context())
			return ctx, cancel, cancel
		}, context.Canceled, pluginapi.CodeCanceled},
		{"deadline", func() (context.Context, func(), context.CancelFunc) {
			ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
			return ctx, func() {
				select {
				case <-ctx.Done():
				case <-time.After(10 * time.Second):
				}
			}, cancel
		}, context.DeadlineExceeded, pluginapi.CodeDeadline},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ctx, stall, cancel := tc.ctx()
			defer cancel()
			key := "ctx-ended/" + tc.name
			body := &stallingBody{head: data[:1<<20], tail: data[1<<20:], stall: stall}
			_, err := b.Put(ctx, pluginapi.PutRequest{Key: key, Size: uint64(len(data)), CRC64: pluginapi.CRC64(data)}, body)
			require.ErrorIs(t, err, tc.want)
			require.Equal(t, tc.code, pluginapi.CodeOf(err), "error %v", err)
			require.Equal(t, tc.code == pluginapi.CodeDeadline, pluginapi.Retryable(err))
			_, err = b.Head(t.Context(), key)
			require.ErrorIs(t, err, pluginapi.ErrNotFound, "nothing visible after a Put its context ended")
		})
	}
}
