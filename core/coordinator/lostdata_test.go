package coordinator

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/stretchr/testify/require"

	"github.com/aof2/aof2/conformance/fake"
	"github.com/aof2/aof2/core"
	"github.com/aof2/aof2/core/budget"
	"github.com/aof2/aof2/core/tier2"
)

// writeUploaded appends n records to stream id, seals, and waits until
// every sealed segment is in tier 2.
func writeUploaded(t *testing.T, ctx context.Context, r *rig, id core.StreamID, from, n int) *core.Stream {
	t.Helper()
	s, err := r.st.Stream(id)
	require.NoError(t, err)
	for i := from; i < from+n; i++ {
		_, err := s.AppendCtx(ctx, payload(i), core.AppendOptions{})
		require.NoError(t, err)
	}
	require.NoError(t, s.Seal(ctx))
	waitUploaded(t, s)
	return s
}

// TestLostDataDirectory: a node whose data directory is gone, pointed at
// the tier 2 its stream lives in, must not start the stream again at
// segment 1 (its ids name records in tier 2): creating it is refused with
// ErrNeedsRestore; other streams are created as usual.
func TestLostDataDirectory(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	backend := fake.New(fake.Options{})
	r := openRig(t, t.TempDir(), backend, 64)
	writeUploaded(t, ctx, r, 42, 0, 1000)
	r.close(t)

	dir := t.TempDir() // an empty data directory, made the prefix's writer
	_, err := Takeover(ctx, nil, dir, newRemote(t, backend))
	require.NoError(t, err)
	r = openRig(t, dir, backend, 64)
	defer r.close(t)
	require.Empty(t, r.st.Streams())
	_, err = r.st.Stream(42)
	require.ErrorIs(t, err, core.ErrNeedsRestore)
	var nr *core.NeedsRestoreError
	require.True(t, errors.As(err, &nr))
	require.Equal(t, core.StreamID(42), nr.Stream)
	require.Contains(t, err.Error(), "stream 42")
	s, err := r.st.Stream(43)
	require.NoError(t, err, "a stream tier 2 does not hold is created")
	_, err = s.AppendDurable(ctx, []byte("x"), core.AppendOptions{})
	require.NoError(t, err)
}

// TestNewStreamsWaitForTheTier2List: while tier 2 cannot be listed, no
// stream is created (it could be one tier 2 holds); existing streams
// are served, and creation works once the scan has listed tier 2.
func TestNewStreamsWaitForTheTier2List(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	backend := fake.New(fake.Options{})
	dir := t.TempDir()
	r := openRig(t, dir, backend, 64)
	writeUploaded(t, ctx, r, 1, 0, 10)
	r.close(t)

	require.NoError(t, backend.Inject(fake.Fault{Mode: fake.ServerError, Ops: []fake.Op{fake.OpList}, Rate: 1}))
	remote, err := tier2.New(backend, tier2.Config{Logger: hclog.NewNullLogger(), Backoff: tier2.Backoff{Attempts: 1}})
	require.NoError(t, err)
	r = startRig(t, Config{DataDir: dir, Tier2: remote, ScanInterval: 20 * time.Millisecond,
		Tier0: budget.Config{MaxBytes: 64 * segSize, Policy: budget.PolicyTier2}}, core.Config{})
	defer r.close(t)
	_, err = r.st.Stream(2)
	require.ErrorIs(t, err, core.ErrWouldBlock)
	require.Equal(t, core.Admission, core.KindOf(err))
	s, err := r.st.Lookup(1)
	require.NoError(t, err, "the stream on disk is served")
	_, err = s.AppendDurable(ctx, []byte("x"), core.AppendOptions{})
	require.NoError(t, err)

	backend.ClearFaults()
	require.Eventually(t, func() bool {
		_, err := r.st.Stream(2)
		return err == nil
	}, 20*time.Second, 10*time.Millisecond, "the scan lists tier 2, then streams are created")
}

// TestOlderDataDirectory: a data directory restored from an older copy
// knows fewer segments than tier 2 holds: the stream is served for reads
// but refuses appends, which would reuse the ids of the newer segments.
func TestOlderDataDirectory(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	backend := fake.New(fake.Options{})
	dir := t.TempDir()
	r := openRig(t, dir, backend, 64)
	writeUploaded(t, ctx, r, 5, 0, 600)
	r.stop(t)
	old := t.TempDir()
	require.NoError(t, os.CopyFS(old, os.DirFS(dir)))
	r = openRig(t, dir, backend, 64)
	writeUploaded(t, ctx, r, 5, 600, 1500)
	r.close(t)

	// The old copy, with the LOCK file of the copied directory left as is.
	_ = os.Remove(filepath.Join(old, "LOCK"))
	r = openRig(t, old, backend, 64)
	defer r.close(t)
	var rec Reconciliation
	for _, x := range r.c.Reconciliations() {
		if x.Stream == 5 {
			rec = x
		}
	}
	require.Contains(t, rec.Ahead, "tier 2 holds segment")
	s, err := r.st.Lookup(5)
	require.NoError(t, err)
	require.Equal(t, 600, readAll(t, ctx, s), "what the node has is readable")
	_, err = s.AppendDurable(ctx, []byte("x"), core.AppendOptions{})
	require.ErrorIs(t, err, core.ErrNeedsRestore)
	require.ErrorIs(t, s.Seal(ctx), core.ErrNeedsRestore)
	require.ErrorIs(t, s.Info().Refused, core.ErrNeedsRestore)
}
