package restore

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/hashicorp/go-hclog"

	"github.com/aof2/aof2/core/manifest"
	"github.com/aof2/aof2/core/tier2"
	"github.com/aof2/aof2/core/types"
	"github.com/aof2/aof2/pluginapi"
)

// history is what installHistory put in a staging manifest directory.
type history struct {
	Snapshot    uint64 // 0: none (replay from chunk 0)
	HasSnapshot bool
	// Chunks installed: [FirstChunk, FirstChunk+Chunks).
	FirstChunk uint64
	Chunks     int
	// SkippedSnapshots are newer snapshots that did not verify or whose
	// position lies in a chunk tier 2 no longer holds.
	SkippedSnapshots []string
}

// installHistory picks the newest snapshot that verifies and whose
// position tier 2 can replay from, and installs it and every chunk from
// its position on into stage (snapshots in skip excepted). The chunks
// after the start must be contiguous: a missing one is ErrHistoryGap.
func (r *run) installHistory(ctx context.Context, stage string, stream types.StreamID, l tier2.Listing, skip map[uint64]bool) (history, error) {
	return walkHistory(ctx, r.cfg.Remote, r.log, stream, l, skip,
		func(b []byte) error {
			_, err := manifest.InstallSnapshot(r.cfg.FS, stage, stream, b)
			return err
		},
		func(idx uint64, b []byte) error { return manifest.InstallChunk(r.cfg.FS, stage, idx, b) })
}

// FoldHistory reads a stream's tier-2 history (the snapshot and chunks a
// restore would install, from its listing l) and folds it into an index:
// what the writer's log had committed to tier 2, retired segments gone.
// A read replica uses it to tell the segments the writer's retention
// deleted from those not uploaded yet (core/replica).
func FoldHistory(ctx context.Context, remote *tier2.Store, log hclog.Logger, stream types.StreamID, l tier2.Listing) (*manifest.Index, error) {
	x := manifest.NewIndex(stream)
	_, err := walkHistory(ctx, remote, log, stream, l, nil,
		func(b []byte) error {
			sn, err := manifest.ParseSnapshot(b, stream)
			if err == nil {
				x = sn.Index
			}
			return err
		},
		func(idx uint64, b []byte) error {
			h, err := manifest.CheckChunk(b, idx)
			if err != nil {
				return err
			}
			recs, err := manifest.ChunkRecords(b, idx)
			if err != nil {
				return err
			}
			for i, rec := range recs {
				if h.BaseRecord+uint64(i) >= x.Records { // the snapshot holds the ones before
					x.Apply(rec)
				}
			}
			return nil
		})
	return x, err
}

// walkHistory picks the history as installHistory describes and hands its
// snapshot (if any) and then each chunk, in order, to the callbacks.
func walkHistory(ctx context.Context, remote *tier2.Store, log hclog.Logger, stream types.StreamID, l tier2.Listing, skip map[uint64]bool,
	onSnapshot func([]byte) error, onChunk func(uint64, []byte) error) (history, error) {
	var h history
	chunks := map[uint64]tier2.Listed{}
	past := uint64(0) // the index after the newest chunk listed
	for _, c := range l.ManifestChunks {
		chunks[c.Ref.ID] = c
		past = max(past, c.Ref.ID+1)
	}
	start := uint64(0)
	var snapBytes []byte
	for _, sn := range slices.Backward(l.Snapshots) {
		if skip[sn.Ref.ID] {
			continue
		}
		b, pos, err := fetchSnapshot(ctx, remote, stream, sn)
		if err != nil {
			if !isCorrupt(err) && !errors.Is(err, tier2.ErrChecksum) && !errors.Is(err, pluginapi.ErrChecksum) {
				// Not a damaged snapshot (tier 2 unreachable, a timeout):
				// falling back would give another result than a rerun.
				return h, fmt.Errorf("stream %d: fetch %s: %w", stream, sn.Info.Key, err)
			}
			log.Warn("tier-2 snapshot skipped", "stream_id", uint64(stream), "key", sn.Info.Key, "error", err)
			h.SkippedSnapshots = append(h.SkippedSnapshots, fmt.Sprintf("%s: %v", sn.Info.Key, err))
			continue
		}
		if pos.ChunkIndex > past {
			// A state at a position past the log: a writer's snapshot of
			// chunks it never got into tier 2 (one taken over meanwhile).
			h.SkippedSnapshots = append(h.SkippedSnapshots, fmt.Sprintf("%s: its position, chunk %d, lies past the log tier 2 holds (chunks before %d)", sn.Info.Key, pos.ChunkIndex, past))
			continue
		}
		if _, ok := chunks[pos.ChunkIndex]; !ok && pos.ChunkOffset > manifest.ChunkHeaderLen {
			h.SkippedSnapshots = append(h.SkippedSnapshots, fmt.Sprintf("%s: chunk %d, holding its position, is not in tier 2", sn.Info.Key, pos.ChunkIndex))
			continue
		}
		snapBytes, start = b, pos.ChunkIndex
		h.Snapshot, h.HasSnapshot = sn.Ref.ID, true
		break
	}
	if !h.HasSnapshot && len(l.Snapshots) > 0 {
		if _, ok := chunks[0]; !ok {
			return h, fmt.Errorf("%w: stream %d: no snapshot verifies (%v) and chunk 0 is not in tier 2", ErrCorruptHistory, stream, h.SkippedSnapshots)
		}
	}
	next := start
	for next < start+uint64(len(chunks)) {
		if _, ok := chunks[next]; !ok {
			break
		}
		next++
	}
	for _, c := range l.ManifestChunks {
		if c.Ref.ID > next {
			return h, fmt.Errorf("%w: stream %d: chunk %d is missing, chunk %d is in tier 2 (%s)", ErrHistoryGap, stream, next, c.Ref.ID, c.Info.Key)
		}
	}
	if snapBytes != nil {
		if err := onSnapshot(snapBytes); err != nil {
			return h, fmt.Errorf("stream %d: install snapshot %d: %w", stream, h.Snapshot, err)
		}
	}
	h.FirstChunk = start
	for idx := start; idx < next; idx++ {
		c := chunks[idx]
		b, _, err := remote.Fetch(ctx, c.Info.Key, tier2.Expect{ETag: c.Info.ETag})
		if err != nil {
			return h, fmt.Errorf("stream %d: fetch manifest chunk %d: %w", stream, idx, err)
		}
		if err := onChunk(idx, b); err != nil {
			if ctx.Err() == nil && isCorrupt(err) {
				err = fmt.Errorf("%w: stream %d: %s: %w", ErrCorruptHistory, stream, c.Info.Key, err)
			}
			return h, err
		}
		h.Chunks++
	}
	return h, nil
}

// fetchSnapshot reads and verifies a snapshot, and checks that the
// position its metadata names is the one it holds.
func fetchSnapshot(ctx context.Context, remote *tier2.Store, stream types.StreamID, sn tier2.Listed) ([]byte, tier2.SnapshotPosition, error) {
	b, info, err := remote.Fetch(ctx, sn.Info.Key, tier2.Expect{ETag: sn.Info.ETag})
	if err != nil {
		return nil, tier2.SnapshotPosition{}, err
	}
	s, err := manifest.ParseSnapshot(b, stream)
	if err != nil {
		return nil, tier2.SnapshotPosition{}, err
	}
	if s.ID != sn.Ref.ID {
		return nil, tier2.SnapshotPosition{}, fmt.Errorf("%w: object holds snapshot %d", manifest.ErrCorrupt, s.ID)
	}
	md, err := tier2.ParseMetadata(info.Metadata)
	if err != nil {
		// Metadata this package wrote always parses: damaged metadata
		// is not a reason to skip the position check.
		return nil, tier2.SnapshotPosition{}, fmt.Errorf("%w: %s: %v", manifest.ErrCorrupt, sn.Info.Key, err)
	}
	if md.HasPosition && (md.SnapshotChunk != s.ChunkIndex || md.SnapshotOffset != s.ChunkOffset) {
		return nil, tier2.SnapshotPosition{}, fmt.Errorf("%w: metadata names position %d/%d, the snapshot holds %d/%d",
			manifest.ErrCorrupt, md.SnapshotChunk, md.SnapshotOffset, s.ChunkIndex, s.ChunkOffset)
	}
	return b, tier2.SnapshotPosition{ChunkIndex: s.ChunkIndex, ChunkOffset: s.ChunkOffset}, nil
}

func isCorrupt(err error) bool { return errors.Is(err, manifest.ErrCorrupt) }
