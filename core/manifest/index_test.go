package manifest

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestIndexResidencyTransitions(t *testing.T) {
	h := Header{SegmentID: 5}
	cases := []struct {
		name string
		recs []Record
		want Residency
		gone bool
	}{
		{"opened", []Record{SegmentOpened{Header: h}}, ResidentInTier0, false},
		{"sealed stays in tier 0", []Record{SegmentOpened{Header: h}, SealSegment{Header: h}}, ResidentInTier0, false},
		{"evicted after compression: staged", []Record{
			SegmentOpened{Header: h}, SealSegment{Header: h}, CompressionDone{Header: h, CompressedBytes: 10}, LocalEvicted{Header: h},
		}, StagedForTier0, false},
		{"evicted twice after upload: tier 2 only", []Record{
			SegmentOpened{Header: h}, SealSegment{Header: h}, CompressionDone{Header: h}, UploadDone{Header: h, Key: "k"},
			LocalEvicted{Header: h}, LocalEvicted{Header: h},
		}, UploadedToTier2, false},
		{"hydrated back", []Record{
			SegmentOpened{Header: h}, SealSegment{Header: h}, UploadDone{Header: h, Key: "k"}, LocalEvicted{Header: h},
			HydrationStarted{Header: h, SourceTier: 2}, HydrationDone{Header: h, ResidentBytes: 9},
		}, ResidentInTier0, false},
		{"hydration object missing", []Record{
			SegmentOpened{Header: h}, SealSegment{Header: h}, UploadDone{Header: h, Key: "k"}, LocalEvicted{Header: h},
			HydrationStarted{Header: h, SourceTier: 2}, HydrationFailed{Header: h, Reason: ReasonObjectMissing},
		}, NeedsRecovery, false},
		{"transient hydration failure keeps residency", []Record{
			SegmentOpened{Header: h}, SealSegment{Header: h}, UploadDone{Header: h, Key: "k"}, LocalEvicted{Header: h},
			HydrationFailed{Header: h, Reason: ReasonTransient},
		}, UploadedToTier2, false},
		{"recovered by a later hydration", []Record{
			SegmentOpened{Header: h}, HydrationFailed{Header: h, Reason: ReasonPermanent}, HydrationDone{Header: h},
		}, ResidentInTier0, false},
		{"active segment evicted: lost, not retired", []Record{
			SegmentOpened{Header: h}, LocalEvicted{Header: h},
		}, NeedsRecovery, false},
		{"retired by retention", []Record{
			SegmentOpened{Header: h}, SealSegment{Header: h}, UploadDone{Header: h, Key: "k"}, LocalEvicted{Header: h},
			Tier2DeleteQueued{Header: h, Key: "k"}, Tier2Deleted{Header: h, Key: "k"},
		}, 0, true},
		{"local-only retention", []Record{
			SegmentOpened{Header: h}, SealSegment{Header: h}, CompressionDone{Header: h}, LocalEvicted{Header: h}, LocalEvicted{Header: h},
		}, 0, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			x := fold(1, c.recs)
			assert.Equal(t, uint64(len(c.recs)), x.Records)
			s, ok := x.Segment(5)
			if c.gone {
				assert.False(t, ok, "retired segments leave the index")
				return
			}
			require.True(t, ok)
			assert.Equal(t, c.want, s.Residency)
		})
	}
}

func TestIndexFoldsEveryField(t *testing.T) {
	h := Header{SegmentID: 3, LogicalOffset: 100, TimestampMS: 200}
	x := fold(1, []Record{
		SegmentOpened{Header: h, BaseOffset: 7, Epoch: 2},
		SealSegment{Header: h, DurableBytes: 8, SegmentCRC64: 9, ExtID: 10, CoordinatorWatermark: 11, FlushFailure: true},
		CompressionStarted{Header: h, JobID: 12},
		CompressionFailed{Header: h, Reason: ReasonUnavailable},
		CompressionDone{Header: h, CompressedBytes: 13, DictionaryID: 14},
		UploadStarted{Header: h, Key: "a"},
		UploadFailed{Header: h, Key: "a", Reason: ReasonAuth},
		UploadStarted{Header: h, Key: "a"},
		UploadDone{Header: h, Key: "a", ETag: "e"},
		Tier2DeleteQueued{Header: h, Key: "old1"},
		Tier2DeleteQueued{Header: h, Key: "old2"},
		Tier2DeleteQueued{Header: h, Key: "old1"},
		Tier2Deleted{Header: h, Key: "old1"},
		HydrationStarted{Header: h, SourceTier: 1},
		HydrationDone{Header: h, ResidentBytes: 15},
		LocalEvicted{Header: h, ReclaimedBytes: 16},
		CustomEvent{Header: Header{SegmentID: 3, LogicalOffset: 101, TimestampMS: 201}, SchemaID: 1},
		SnapshotMarker{SnapshotID: 6},
		Unknown{Header: h, RecordType: 40, Payload: []byte{1}},
	})
	s, ok := x.Segment(3)
	require.True(t, ok)
	want := SegmentState{
		SegmentID: 3, Residency: StagedForTier0, BaseOffset: 7, Epoch: 2,
		Sealed: true, DurableBytes: 8, SegmentCRC64: 9, ExtID: 10, CoordinatorWatermark: 11, FlushFailure: true,
		Tier1:             Tier1Artifact{State: Tier1Compressed, JobID: 12, CompressedBytes: 13, DictionaryID: 14, Failures: 1, LastFailure: ReasonUnavailable},
		Tier2:             Tier2Object{Key: "a", ETag: "e", PendingDeletes: []string{"old2"}, Failures: 1, LastFailure: ReasonAuth},
		Hydration:         Hydration{SourceTier: 1, ResidentBytes: 15},
		ReclaimedBytes:    16,
		CustomEvents:      1,
		LastLogicalOffset: 101,
		LastTimestampMS:   201,
	}
	assert.Equal(t, want, s)
	assert.Equal(t, uint64(19), x.Records)
	assert.Equal(t, uint64(1), x.UnknownRecords)
	assert.Equal(t, uint64(6), x.LastSnapshotID)
	assert.Equal(t, 1, x.Len(), "stream-level records create no segment")

	c := x.Clone()
	c.Apply(Tier2DeleteQueued{Header: h, Key: "old3"})
	s2, _ := x.Segment(3)
	assert.Equal(t, []string{"old2"}, s2.Tier2.PendingDeletes, "clones share nothing")
}
