package manifest

import (
	"context"
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/aof2/aof2/core/types"
)

func TestRebuild(t *testing.T) {
	ctx := context.Background()
	x := fold(7, []Record{
		SegmentOpened{Header: Header{SegmentID: 1}},
		SealSegment{Header: Header{SegmentID: 1}, DurableBytes: 5},
		CompressionDone{Header: Header{SegmentID: 1}, CompressedBytes: 3},
		UploadDone{Header: Header{SegmentID: 1}, Key: "k1"},
		SegmentOpened{Header: Header{SegmentID: 2}},
		SegmentOpened{Header: Header{SegmentID: 3}},
		HydrationFailed{Header: Header{SegmentID: 3}, Reason: ReasonObjectMissing},
	})
	t.Run("tier 0 only", func(t *testing.T) {
		gt := &groundTruth{facts: []SegmentFacts{
			{SegmentID: 2, Sealed: true, DurableBytes: 64, SegmentCRC64: 9, ExtID: 4},
			{SegmentID: 4, BaseOffset: 100},
		}}
		out, rep, err := Rebuild(ctx, x, gt)
		require.NoError(t, err)
		assert.Equal(t, []string{"tier0"}, rep.Sources)
		assert.Equal(t, []types.SegmentID{4}, rep.Added)
		assert.Equal(t, []types.SegmentID{1, 2, 3}, rep.Updated)
		assert.Equal(t, []types.SegmentID{3}, rep.Lost, "segment 3 has no copy anywhere")
		s1, _ := out.Segment(1)
		assert.False(t, s1.Tier0)
		assert.Equal(t, StagedForTier0, s1.Residency, "evicted from tier 0; the warm copy is still believed present")
		s2, _ := out.Segment(2)
		assert.True(t, s2.Sealed)
		assert.Equal(t, uint64(64), s2.DurableBytes)
		assert.Equal(t, Hex64(9), s2.SegmentCRC64)
		s4, ok := out.Segment(4)
		require.True(t, ok)
		assert.Equal(t, ResidentInTier0, s4.Residency)
		assert.Equal(t, uint64(100), s4.BaseOffset)
		_, ok = x.Segment(4)
		assert.False(t, ok, "the input index is not modified")
	})
	t.Run("with warm and tier-2 listings", func(t *testing.T) {
		gt := fullGroundTruth{&groundTruth{
			facts: []SegmentFacts{{SegmentID: 2}},
			warm:  []WarmArtifact{{SegmentID: 3, CompressedBytes: 8}},
			tier2: []Tier2Segment{{SegmentID: 1, Key: "k1", ETag: "e"}},
		}}
		out, rep, err := Rebuild(ctx, x, gt)
		require.NoError(t, err)
		assert.Equal(t, []string{"tier0", "tier1", "tier2"}, rep.Sources)
		assert.Empty(t, rep.Lost)
		s1, _ := out.Segment(1)
		assert.Equal(t, UploadedToTier2, s1.Residency, "no warm copy listed: tier 2 only")
		assert.Equal(t, "e", s1.Tier2.ETag)
		s3, _ := out.Segment(3)
		assert.Equal(t, StagedForTier0, s3.Residency, "the warm listing found it")
		assert.False(t, s3.Flagged)
	})
	t.Run("ground truth fails", func(t *testing.T) {
		boom := errors.New("boom")
		_, _, err := Rebuild(ctx, x, failingTruth{boom})
		require.ErrorIs(t, err, boom)
	})
}

type failingTruth struct{ err error }

func (f failingTruth) Segments(context.Context) ([]SegmentFacts, error) { return nil, f.err }
