package coordinator

import (
	"context"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/aof2/aof2/conformance/fake"
	"github.com/aof2/aof2/core"
	"github.com/aof2/aof2/core/budget"
	"github.com/aof2/aof2/core/tier1"
	"github.com/aof2/aof2/core/tier2"
	"github.com/aof2/aof2/core/types"
	"github.com/aof2/aof2/pluginapi"
)

// gatedWriterHead holds the writer-record Head (mayMutate's claim check,
// the first thing a tier-2-mutating job does) once a stream's listing
// (reconcile) was seen, until release is closed: a slow tier 2 round trip,
// made deterministic.
type gatedWriterHead struct {
	*fake.Backend
	armed   atomic.Bool
	held    atomic.Int32
	release chan struct{}
	once    sync.Once
}

func (b *gatedWriterHead) List(ctx context.Context, req pluginapi.ListRequest, page func([]pluginapi.ObjectInfo) error) error {
	if strings.HasPrefix(req.Prefix, "streams/") && len(req.Prefix) > len("streams/") {
		b.armed.Store(true)
	}
	return b.Backend.List(ctx, req, page)
}

func (b *gatedWriterHead) Head(ctx context.Context, key string) (pluginapi.ObjectInfo, error) {
	if b.armed.Load() && strings.HasSuffix(key, tier2.WriterKey) {
		b.held.Add(1)
		select {
		case <-b.release:
		case <-ctx.Done():
			return pluginapi.ObjectInfo{}, ctx.Err()
		}
	}
	return b.Backend.Head(ctx, key)
}

// TestNoEvictionBeforeReupload: the manifest says segment X is in tier 2,
// its object is gone, and its warm artifact too; only the tier-0 file
// holds it. Reconciliation queues its re-upload (held back here); an
// eviction that a hydration of another segment needs must not delete the
// only copy meanwhile, and once the re-upload runs X reads back. Before,
// adopt registered X as held by tier 2 from the manifest, and the budget
// evicted it.
func TestNoEvictionBeforeReupload(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	dir := t.TempDir()
	backend := fake.New(fake.Options{})
	r := openRig(t, dir, backend, 3)
	s, err := r.st.Stream(3)
	require.NoError(t, err)
	const records = 3000
	writeSealed(t, ctx, s, records)

	var x, y *core.SegmentInfo
	for _, info := range s.SegmentList() {
		switch {
		case info.Resident && info.Footer != nil && x == nil:
			x = &info
		case !info.Resident && y == nil:
			y = &info
		}
	}
	require.NotNil(t, x, "a resident sealed segment")
	require.NotNil(t, y, "an evicted segment")
	kx := sk(3, x.ID)
	require.NoError(t, r.remote.Delete(ctx, r.remote.Layout().SegmentObjectKey(kx)))
	r.close(t)
	// The warm copy of X is lost too (a wiped or damaged cache directory).
	require.NoError(t, os.Remove(tier1.ArtifactPath(dir, kx)))

	gated := &gatedWriterHead{Backend: backend, release: make(chan struct{})}
	remote, err := tier2.New(gated, tier2.Config{Logger: hclog.NewNullLogger()})
	require.NoError(t, err)
	r = startRig(t, Config{DataDir: dir, Tier2: remote, ScanInterval: 20 * time.Millisecond, Workers: 1,
		Tier0: budget.Config{MaxBytes: 3 * segSize, Policy: budget.PolicyTier2}}, core.Config{})
	defer r.close(t)
	defer gated.once.Do(func() { close(gated.release) })
	recs := r.c.Reconciliations()
	require.Len(t, recs, 1)
	require.Equal(t, []types.SegmentID{x.ID}, recs[0].Reuploads, "X is to be re-uploaded from tier 0")
	require.Eventually(t, func() bool { return gated.held.Load() > 0 }, 10*time.Second, time.Millisecond, "the re-upload is under way")

	s, err = r.st.Lookup(3)
	require.NoError(t, err)
	// A reader brings Y back: the budget makes room.
	require.NoError(t, s.Hydrate(ctx, y.ID))
	cur, _ := s.Segment(x.ID)
	_, t2err := r.remote.Stat(ctx, r.remote.Layout().SegmentObjectKey(kx))
	t.Logf("after hydrating Y: X resident=%v warm=%v tier2 stat err=%v", cur.Resident, r.c.Warm().Contains(kx), t2err)
	assert.True(t, cur.Resident || r.c.Warm().Contains(kx),
		"segment %d: its only copy (tier 0) was evicted while tier 2 lacks it (re-upload not done)", x.ID)

	gated.once.Do(func() { close(gated.release) })
	// The re-upload now runs: it must still find a copy, and X's records
	// must read back.
	require.Eventually(t, func() bool {
		_, err := r.remote.Stat(ctx, r.remote.Layout().SegmentObjectKey(kx))
		return err == nil
	}, 20*time.Second, 10*time.Millisecond, "segment %d re-uploaded", x.ID)
	rctx, rcancel := context.WithTimeout(ctx, 5*time.Second)
	defer rcancel()
	rd, err := s.NewReader(core.AtOrdinal(x.BaseRecord))
	require.NoError(t, err)
	defer rd.Close()
	rec, err := rd.NextCtx(rctx)
	require.NoError(t, err, "record %d (first of segment %d) reads back", x.BaseRecord, x.ID)
	require.Equal(t, string(payload(int(x.BaseRecord))), string(rec.Payload))
}

// TestUnverifiedArtifactNotServed: tier 2's object of segment X holds
// another segment's artifact (a checksum-consistent object, so tier 2's
// own verification passes). A hydration fails verification (warm.Adopt)
// and leaves nothing at X's warm path, and point reads (ReadRecord,
// through openArtifact) refuse an artifact of another segment; before, the
// file stayed and a point read served the other segment's record.
func TestUnverifiedArtifactNotServed(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	dir := t.TempDir()
	backend := fake.New(fake.Options{})
	r := openRig(t, dir, backend, 3)
	defer r.close(t)
	s, err := r.st.Stream(3)
	require.NoError(t, err)
	writeSealed(t, ctx, s, 3000)
	var x, z *core.SegmentInfo
	for _, info := range s.SegmentList() {
		if !info.Resident && info.Footer != nil {
			if x == nil {
				x = &info
			} else if z == nil {
				z = &info
			}
		}
	}
	require.NotNil(t, z)
	kx, kz := sk(3, x.ID), sk(3, z.ID)
	layout := r.remote.Layout()
	other, _, err := r.remote.Fetch(ctx, layout.SegmentObjectKey(kz), tier2.Expect{})
	require.NoError(t, err)
	require.NoError(t, r.remote.Delete(ctx, layout.SegmentObjectKey(kx)))
	_, err = r.remote.Put(ctx, tier2.Upload{Key: layout.SegmentObjectKey(kx), Data: other})
	require.NoError(t, err)
	_, _ = r.c.Warm().Remove(kx)
	_, statErr := os.Stat(tier1.ArtifactPath(dir, kx))
	require.True(t, os.IsNotExist(statErr))

	herr := s.Hydrate(ctx, x.ID)
	t.Logf("hydrate of X: %v; warm cache holds X: %v", herr, r.c.Warm().Contains(kx))
	_, statErr = os.Stat(tier1.ArtifactPath(dir, kx))
	t.Logf("unverified file left at X's warm path: %v", statErr == nil)
	assert.Error(t, herr, "the artifact does not verify")
	assert.False(t, r.c.Warm().Contains(kx))
	assert.True(t, os.IsNotExist(statErr), "a download that failed verification is not left at the warm path")

	rec, err := s.ReadAt(ctx, recordIDOf(t, ctx, s, x.BaseRecord))
	if err == nil {
		t.Logf("ReadAt(first record of X) returned %.14q, want %.14q", rec.Payload, payload(int(x.BaseRecord)))
		assert.Equal(t, string(payload(int(x.BaseRecord))[:14]), string(rec.Payload[:14]), "a point read serves another segment's record")
	} else {
		t.Logf("ReadAt: %v", err)
	}
}

// recordIDOf is the id of the first record of the segment whose base
// record is base: every segment's first record sits right after the
// header, at the offset a resident segment's first record shows.
func recordIDOf(t *testing.T, ctx context.Context, s *core.Stream, base uint64) core.RecordID {
	t.Helper()
	var seg types.SegmentID
	for _, info := range s.SegmentList() {
		if info.BaseRecord == base {
			seg = info.ID
		}
	}
	for _, info := range s.SegmentList() {
		if info.Resident && info.Footer != nil {
			rd, err := s.NewReader(core.AtOrdinal(info.BaseRecord))
			require.NoError(t, err)
			defer rd.Close()
			rec, err := rd.NextCtx(ctx)
			require.NoError(t, err)
			return core.MakeRecordID(seg, rec.ID.Offset())
		}
	}
	t.Fatal("no resident sealed segment")
	return 0
}
