package manifest

import (
	"context"
	"fmt"
	"maps"
	"reflect"
	"slices"

	"github.com/aof2/aof2/core/types"
)

// SegmentFacts are the facts of one tier-0 segment file as its header and
// footer state them (docs/formats.md#segment-file): the engine reads them without scanning
// payloads.
type SegmentFacts struct {
	SegmentID            types.SegmentID
	BaseOffset           uint64
	BaseRecord           uint64
	Sealed               bool // the footer is present and valid
	DurableBytes         uint64
	SegmentCRC64         uint64
	ExtID                uint64
	CoordinatorWatermark uint64
	FlushFailure         bool
}

// GroundTruth is what a stream can state about its segments without the
// manifest. The tier-0 engine implements it from segment headers and
// footers. Open uses it (Options.GroundTruth) to rebuild residency when the
// manifest is damaged.
//
// Sources that arrive with tiering are optional interfaces that the same
// value may also implement: WarmLister (the tier-1 directory) and
// Tier2Lister (a tier-2 listing with checksums verified). Rebuild uses
// whichever are implemented.
type GroundTruth interface {
	// Segments lists the tier-0 segment files present.
	Segments(ctx context.Context) ([]SegmentFacts, error)
}

// WarmArtifact is a verified tier-1 artifact.
type WarmArtifact struct {
	SegmentID       types.SegmentID
	CompressedBytes uint64
	DictionaryID    uint32
}

// WarmLister lists the warm artifacts present (optional on a GroundTruth).
type WarmLister interface {
	WarmArtifacts(ctx context.Context) ([]WarmArtifact, error)
}

// Tier2Segment is a tier-2 segment object whose checksum was verified.
type Tier2Segment struct {
	SegmentID types.SegmentID
	Key       string
	ETag      string
}

// Tier2Lister lists verified tier-2 segment objects (optional on a
// GroundTruth).
type Tier2Lister interface {
	Tier2Segments(ctx context.Context) ([]Tier2Segment, error)
}

// RebuildReport says what Rebuild changed.
type RebuildReport struct {
	// Added are segments ground truth knows and the manifest did not.
	Added []types.SegmentID `json:"added,omitempty"`
	// Updated are segments whose manifest state was corrected.
	Updated []types.SegmentID `json:"updated,omitempty"`
	// Lost are segments with no copy anywhere: NeedsRecovery.
	Lost []types.SegmentID `json:"lost,omitempty"`
	// Sources names the ground-truth sources consulted.
	Sources []string `json:"sources"`
}

// Rebuild corrects x against ground truth and returns the corrected copy
// (x is not modified). Ground truth wins wherever it speaks:
//
//   - a tier-0 file present: Tier0 set, seal facts taken from the footer;
//   - no tier-0 file: Tier0 cleared;
//   - with a WarmLister: the tier-1 artifact is present exactly when listed;
//   - with a Tier2Lister: the tier-2 object is the listed one, or none.
//
// Failure flags are cleared (the copies are now known) and residency is
// derived again; a segment left with no copy is NeedsRecovery. Segments
// are never dropped: a record of a segment the manifest lost cannot be
// lost again by a repair.
func Rebuild(ctx context.Context, x *Index, gt GroundTruth) (*Index, RebuildReport, error) {
	report := RebuildReport{Sources: []string{"tier0"}}
	facts, err := gt.Segments(ctx)
	if err != nil {
		return nil, report, fmt.Errorf("manifest: ground truth: tier-0 segments: %w", err)
	}
	warm, err := optionalListing(ctx, gt, &report, "tier1", WarmLister.WarmArtifacts, func(a WarmArtifact) types.SegmentID { return a.SegmentID })
	if err != nil {
		return nil, report, err
	}
	remote, err := optionalListing(ctx, gt, &report, "tier2", Tier2Lister.Tier2Segments, func(o Tier2Segment) types.SegmentID { return o.SegmentID })
	if err != nil {
		return nil, report, err
	}

	out := x.Clone()
	local := map[types.SegmentID]SegmentFacts{}
	for _, f := range facts {
		local[f.SegmentID] = f
	}
	ids := map[types.SegmentID]bool{}
	for _, m := range []map[types.SegmentID]bool{keysOf(local), keysOf(warm), keysOf(remote)} {
		maps.Copy(ids, m)
	}
	for _, s := range out.segments {
		ids[s.SegmentID] = true
	}
	for _, id := range slices.Sorted(maps.Keys(ids)) {
		before, known := out.segments[id]
		s := &SegmentState{SegmentID: id}
		if known {
			s = before.clone()
		}
		f, inTier0 := local[id]
		s.Tier0 = inTier0
		if inTier0 {
			s.BaseOffset = f.BaseOffset
			if f.Sealed {
				s.Sealed, s.DurableBytes, s.SegmentCRC64 = true, f.DurableBytes, Hex64(f.SegmentCRC64)
				s.ExtID, s.CoordinatorWatermark, s.FlushFailure = f.ExtID, f.CoordinatorWatermark, f.FlushFailure
			}
		}
		if warm != nil {
			if a, ok := warm[id]; ok {
				s.Tier1.State, s.Tier1.CompressedBytes, s.Tier1.DictionaryID = Tier1Compressed, a.CompressedBytes, a.DictionaryID
			} else if s.Tier1.State == Tier1Compressed {
				s.Tier1.State = Tier1None
			}
		}
		if remote != nil {
			if o, ok := remote[id]; ok {
				s.Tier2.Key, s.Tier2.ETag = o.Key, o.ETag
			} else {
				s.Tier2.Key, s.Tier2.ETag = "", ""
			}
		}
		s.Flagged = false
		s.Hydration.InProgress = false
		s.Residency = s.residency()
		switch {
		case !known:
			report.Added = append(report.Added, id)
		case !segmentsEqual(before, s):
			report.Updated = append(report.Updated, id)
		}
		if s.Residency == NeedsRecovery {
			report.Lost = append(report.Lost, id)
		}
		out.segments[id] = s
	}
	return out, report, nil
}

// optionalListing calls list when gt implements the optional interface L,
// returning the listing by segment id (nil when gt does not implement L).
func optionalListing[L any, T any](ctx context.Context, gt GroundTruth, report *RebuildReport, source string,
	list func(L, context.Context) ([]T, error), id func(T) types.SegmentID) (map[types.SegmentID]T, error) {
	lister, ok := gt.(L)
	if !ok {
		return nil, nil
	}
	items, err := list(lister, ctx)
	if err != nil {
		return nil, fmt.Errorf("manifest: ground truth: %s listing: %w", source, err)
	}
	out := make(map[types.SegmentID]T, len(items))
	for _, it := range items {
		out[id(it)] = it
	}
	report.Sources = append(report.Sources, source)
	return out, nil
}

func keysOf[V any](m map[types.SegmentID]V) map[types.SegmentID]bool {
	out := make(map[types.SegmentID]bool, len(m))
	for k := range m {
		out[k] = true
	}
	return out
}

func segmentsEqual(a, b *SegmentState) bool { return reflect.DeepEqual(a, b) }
