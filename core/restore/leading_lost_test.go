package restore_test

import (
	"context"
	"path"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/aof2/aof2/conformance/fake"
	"github.com/aof2/aof2/core"
	"github.com/aof2/aof2/core/tier2"
	"github.com/aof2/aof2/core/types"
	"github.com/aof2/aof2/internal/testwait"
)

// TestLeadingSegmentMissingFromTier2IsLost: the writer dies while tier 2 holds
// segments 2 and 3 but neither segment 1's object (its upload failing) nor
// a manifest chunk naming it (the commit log's uploads failing too). The
// records acknowledged in segment 1 are lost: restore must report the id
// as lost (and reads of its records must fail as lost), not leave it out
// of the stream and the report as if it never existed.
func TestLeadingSegmentMissingFromTier2IsLost(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), testwait.Default)
	defer cancel()
	b := fake.New(fake.Options{})
	layout := newRemote(t, b).Layout()
	seg1 := layout.SegmentObjectKey(types.SegmentKey{Stream: 1, Segment: 1})
	manifestDir := path.Dir(layout.Key(tier2.Ref{Kind: tier2.KindManifestChunk, Stream: 1, ID: 0})) + "/"
	var faults []fake.Fault
	for _, p := range []string{seg1, manifestDir} {
		faults = append(faults, fake.Fault{Mode: fake.ServerError, Ops: []fake.Op{fake.OpPut, fake.OpPutFile}, KeyPrefix: p})
	}
	require.NoError(t, b.Inject(faults...))
	a := startNode(t, t.TempDir(), b)
	s, err := a.st.Stream(1)
	require.NoError(t, err)
	var inSeg1 []written
	for i := 0; ; i++ {
		p := payload(1, i)
		id, err := s.AppendDurable(ctx, p, core.AppendOptions{})
		require.NoError(t, err)
		if id.Segment() == 1 {
			inSeg1 = append(inSeg1, written{1, id, p})
		}
		if id.Segment() == 4 {
			break
		}
	}
	testwait.Until(t, testwait.Default, 5*time.Millisecond, func() bool {
		for _, id := range []types.SegmentID{2, 3} {
			if _, err := b.Head(ctx, layout.SegmentObjectKey(types.SegmentKey{Stream: 1, Segment: id})); err != nil {
				return false
			}
		}
		return true
	}, "segments 2 and 3 in tier 2")
	a.stop(t) // the node is lost; segment 1 never reached tier 2
	b.ClearFaults()
	require.NotEmpty(t, inSeg1)

	dir := t.TempDir()
	rep, err := takeoverAndRestore(ctx, t, dir, b)
	require.NoError(t, err)
	sr := rep.Streams[0]
	t.Logf("restore report: cold %d lost %v missing %v records %d", sr.Cold, sr.Lost, sr.MissingFromTier2, sr.Records)
	n := startNode(t, dir, b)
	defer n.stop(t)
	rs, err := n.st.Lookup(1)
	require.NoError(t, err)
	t.Logf("restored stream starts at segment %d, record %d", rs.SegmentList()[0].ID, rs.SegmentList()[0].BaseRecord)
	_, err = rs.ReadAt(ctx, inSeg1[0].id)
	t.Logf("read of acknowledged record %s: %v", inSeg1[0].id, err)
	require.Contains(t, sr.Lost, types.SegmentID(1), "segment 1's acknowledged records are lost: restore reports it")
	require.ErrorIs(t, err, core.ErrCorrupt, "a record of a lost segment reads as lost")
}
