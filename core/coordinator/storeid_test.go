package coordinator

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/aof2/aof2/conformance/fake"
	"github.com/aof2/aof2/core"
	"github.com/aof2/aof2/core/tier2"
	"github.com/aof2/aof2/internal/testwait"
)

// startErr starts a coordinator over dir and backend and returns Start's
// error (everything is closed again).
func startErr(t *testing.T, dir string, backend *fake.Backend) error {
	t.Helper()
	c, err := New(Config{DataDir: dir, Tier2: newRemote(t, backend), ScanInterval: 10 * time.Millisecond})
	require.NoError(t, err)
	st, err := core.Open(dir, core.Config{SegmentSize: segSize, InitialSegmentSize: segSize, Tiering: c})
	require.NoError(t, err)
	err = c.Start(context.Background(), st)
	require.NoError(t, st.Close())
	require.NoError(t, c.Close())
	return err
}

func storeID(t *testing.T, dir string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, StoreFile))
	require.NoError(t, err)
	var r storeRecord
	require.NoError(t, json.Unmarshal(b, &r))
	return r.StoreID
}

func putDescriptor(t *testing.T, backend *fake.Backend, d tier2.Descriptor) {
	t.Helper()
	b, err := json.Marshal(d)
	require.NoError(t, err)
	_, err = newRemote(t, backend).Put(context.Background(), tier2.Upload{Key: tier2.DescriptorKey, Data: b})
	require.NoError(t, err)
}

// TestStoreDescriptor: the first start on a prefix creates its descriptor
// and the data directory records the store; restarts and new data
// directories on the same prefix go on; a data directory pointed at a
// prefix that lost its descriptor, that holds another store, or a store
// of another version is refused at start with a typed error, and nothing
// is written to tier 2.
func TestStoreDescriptor(t *testing.T) {
	t.Run("created, recorded, adopted", func(t *testing.T) {
		backend := fake.New(fake.Options{})
		dir := t.TempDir()
		require.NoError(t, startErr(t, dir, backend))
		_, ok := backend.Stored(tier2.DescriptorKey)
		require.True(t, ok, "the first start creates the descriptor")
		id := storeID(t, dir)
		require.Len(t, id, 32)
		require.NoError(t, startErr(t, dir, backend), "a restart")
		other := t.TempDir()
		require.ErrorIs(t, startErr(t, other, backend), ErrPrefixClaimed, "another data directory on the prefix: the first one is its writer")
		_, err := Takeover(context.Background(), nil, other, newRemote(t, backend))
		require.NoError(t, err)
		require.NoError(t, startErr(t, other, backend), "another data directory on the prefix, after a takeover")
		require.Equal(t, id, storeID(t, other))
		require.ErrorIs(t, startErr(t, dir, backend), ErrPrefixClaimed, "the first is fenced for good")
	})
	for _, tc := range []struct {
		name string
		// prefix prepares the second backend the recorded directory starts on.
		prefix func(t *testing.T, b *fake.Backend)
		want   error
	}{
		{"the prefix lost its descriptor", func(*testing.T, *fake.Backend) {}, ErrStoreMissing},
		{"another store", func(t *testing.T, b *fake.Backend) {
			putDescriptor(t, b, tier2.Descriptor{Format: tier2.DescriptorFormat, Version: tier2.DescriptorVersion, Layout: tier2.LayoutVersion, StoreID: "0123", SegmentFormat: 1, ManifestFormat: 1})
		}, ErrForeignStore},
		{"another segment format", func(t *testing.T, b *fake.Backend) {
			putDescriptor(t, b, tier2.Descriptor{Format: tier2.DescriptorFormat, Version: tier2.DescriptorVersion, Layout: tier2.LayoutVersion, StoreID: "0123", SegmentFormat: 2, ManifestFormat: 1})
		}, tier2.ErrIncompatibleStore},
		{"another version", func(t *testing.T, b *fake.Backend) {
			putDescriptor(t, b, tier2.Descriptor{Format: tier2.DescriptorFormat, Version: 99, Layout: tier2.LayoutVersion, StoreID: "0123"})
		}, tier2.ErrIncompatibleStore},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			require.NoError(t, startErr(t, dir, fake.New(fake.Options{})))
			second := fake.New(fake.Options{})
			tc.prefix(t, second)
			before := second.Keys()
			err := startErr(t, dir, second)
			require.ErrorIs(t, err, tc.want)
			require.Equal(t, before, second.Keys(), "nothing written to tier 2")
		})
	}
}

// TestStoreCheckWaitsForTier2: with the store descriptor unreadable at
// start (throttled, which does not open the breaker) the coordinator
// starts, but nothing is written to tier 2 until the descriptor could be
// checked. A new stream's first segment waits, since its segment-id
// reservation is a tier-2 write (reserve.go); after a restart, writes go
// on within the reservation reconciliation found, and nothing is uploaded
// until the check; then the uploads go on.
func TestStoreCheckWaitsForTier2(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), testwait.Default)
	defer cancel()
	backend := fake.New(fake.Options{})
	descriptorThrottled := fake.Fault{Mode: fake.Throttle, KeyPrefix: "_aof2/", RetryAfter: time.Millisecond}
	require.NoError(t, backend.Inject(descriptorThrottled))
	dir := t.TempDir()
	cfg := func() Config {
		return Config{DataDir: dir, Tier2: newRemote(t, backend), ScanInterval: 10 * time.Millisecond}
	}
	r := startRig(t, cfg(), core.Config{})
	require.False(t, r.c.storeOK.Load())
	s, err := r.st.Stream(1)
	require.NoError(t, err)
	short, cancelShort := context.WithTimeout(ctx, 200*time.Millisecond)
	_, err = s.AppendCtx(short, payload(0), core.AppendOptions{})
	cancelShort()
	require.ErrorIs(t, err, ErrReservationPending, "the first segment waits for its reservation, which waits for the check")
	require.Empty(t, s.SegmentList())
	require.Empty(t, backend.Keys(), "nothing written to tier 2 before the store is checked")
	backend.ClearFaults()
	_, err = s.AppendCtx(ctx, payload(0), core.AppendOptions{})
	require.NoError(t, err)
	require.True(t, r.c.storeOK.Load())
	_, stored := backend.Stored(tier2.DescriptorKey)
	require.True(t, stored)
	r.close(t)

	require.NoError(t, backend.Inject(descriptorThrottled))
	before := map[string]bool{}
	for _, k := range backend.Keys() {
		before[k] = true
	}
	r = startRig(t, cfg(), core.Config{})
	defer r.close(t)
	require.False(t, r.c.storeOK.Load())
	s, err = r.st.Lookup(1)
	require.NoError(t, err)
	writeAndSeal(t, ctx, s, 600)
	last := newestSegment(s)
	require.Greater(t, uint64(last), uint64(1))
	testwait.Until(t, testwait.Default, pollTick, func() bool { return r.c.warm.Contains(sk(1, last)) }, "segment %d compressed", last)
	for _, k := range backend.Keys() {
		ref, err := r.remote.Layout().Parse(k)
		require.True(t, before[k] || err != nil || ref.Kind != tier2.KindSegment, "no segment uploaded before the store is checked: %s", k)
	}
	require.False(t, r.c.storeOK.Load())
	backend.ClearFaults()
	waitInTier2(t, s)
	require.True(t, r.c.storeOK.Load())
}
