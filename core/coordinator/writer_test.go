package coordinator

import (
	"context"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"

	"github.com/aof2/aof2/conformance/fake"
	"github.com/aof2/aof2/core"
	"github.com/aof2/aof2/core/vfs"
	"github.com/aof2/aof2/internal/testwait"
)

// TestOneWriterPerPrefix: the first node claims the prefix (epoch 1); a
// second data directory on it is refused at start with a *ClaimedError
// naming the holder, and so is the first once another node took over;
// the data directory that took over starts as the writer.
func TestOneWriterPerPrefix(t *testing.T) {
	ctx := context.Background()
	backend := fake.New(fake.Options{})
	a, b := t.TempDir(), t.TempDir()
	require.NoError(t, startErr(t, a, backend))
	rec, _, err := newRemote(t, backend).ReadWriter(ctx)
	require.NoError(t, err)
	require.Equal(t, uint64(1), rec.Epoch)

	err = startErr(t, b, backend)
	var ce *ClaimedError
	require.ErrorAs(t, err, &ce)
	require.Equal(t, rec.NodeID, ce.Holder.NodeID)
	require.Contains(t, err.Error(), "aof2-host takeover")

	next, err := Takeover(ctx, nil, b, newRemote(t, backend))
	require.NoError(t, err)
	require.Equal(t, uint64(2), next.Epoch)
	require.NotEqual(t, rec.NodeID, next.NodeID)
	require.NoError(t, startErr(t, b, backend), "the node that took over is the writer")
	require.ErrorIs(t, startErr(t, a, backend), ErrPrefixClaimed, "the old writer is refused at start")

	// A takeover interrupted after its claim and before its record (the
	// data directory still says epoch 2) is recognised as this node's.
	again, err := Takeover(ctx, nil, b, newRemote(t, backend))
	require.NoError(t, err)
	require.NoError(t, saveWriterFile(vfs.OS, b, writerFile{NodeID: again.NodeID, Epoch: 2}))
	require.NoError(t, startErr(t, b, backend))
	w, err := loadWriterFile(vfs.OS, b)
	require.NoError(t, err)
	require.Equal(t, uint64(3), w.Epoch)
}

// TestTakeoverFencesTheRunningWriter: a writer taken over while it
// writes stops at its next tier-2 mutation: appends answer a
// *types.FencedError, aof_writer_fenced is 1, and no tier-2 object
// changes any more, whatever its scans queue.
func TestTakeoverFencesTheRunningWriter(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), testwait.Default)
	defer cancel()
	backend := fake.New(fake.Options{})
	r := openRig(t, t.TempDir(), backend, 64)
	defer r.close(t)
	s, err := r.st.Stream(3)
	require.NoError(t, err)
	for i := range 600 {
		_, err := s.AppendCtx(ctx, payload(i), core.AppendOptions{})
		require.NoError(t, err)
	}
	_, err = Takeover(ctx, nil, t.TempDir(), newRemote(t, backend))
	require.NoError(t, err)
	// An upload to come, the mutation that finds the fence — unless one
	// already under way (a segment a rollover sealed) found it first:
	// then the seal itself is refused.
	if err := s.Seal(ctx); err != nil {
		require.ErrorIs(t, err, core.ErrFenced)
	}
	testwait.Until(t, testwait.Default, pollTick, func() bool { return r.c.Fenced() != nil }, "the old writer fenced")
	_, err = s.AppendCtx(ctx, []byte("after the takeover"), core.AppendOptions{})
	require.ErrorIs(t, err, core.ErrFenced)
	require.Contains(t, err.Error(), "epoch 2")
	require.Equal(t, 1.0, testutil.ToFloat64(r.c.m.fenced))

	r.c.waitIdle(t)
	before := objectsByKey(backend)
	for range 5 {
		r.c.scan()
		r.c.waitIdle(t)
	}
	require.Equal(t, before, objectsByKey(backend), "a fenced writer mutates nothing")
}

func objectsByKey(b *fake.Backend) map[string]string {
	out := map[string]string{}
	for _, k := range b.Keys() {
		info, _ := b.Stored(k)
		out[k] = info.ETag
	}
	return out
}

// A writer record that goes missing (a put the backend acknowledged and
// did not keep, or a deletion) is no other node's claim: the writer puts
// its claim back and goes on, it is not fenced.
func TestMissingWriterRecordIsPutBack(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), testwait.Default)
	defer cancel()
	backend := fake.New(fake.Options{})
	r := openRig(t, t.TempDir(), backend, 64)
	defer r.close(t)
	s, err := r.st.Stream(3)
	require.NoError(t, err)
	var key string
	for _, k := range backend.Keys() {
		if strings.HasSuffix(k, "_aof2/writer") {
			key = k
		}
	}
	require.NotEmpty(t, key, "the writer record")
	require.NoError(t, backend.Delete(ctx, key))
	for i := range 600 {
		_, err := s.AppendCtx(ctx, payload(i), core.AppendOptions{})
		require.NoError(t, err)
	}
	require.NoError(t, s.Seal(ctx)) // an upload: the mutation that checks the claim
	testwait.Until(t, testwait.Default, pollTick, func() bool { _, ok := backend.Stored(key); return ok }, "the writer record put back")
	require.NoError(t, r.c.Fenced())
	_, err = s.AppendCtx(ctx, []byte("after"), core.AppendOptions{})
	require.NoError(t, err)
}
