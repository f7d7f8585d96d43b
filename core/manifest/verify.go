package manifest

import (
	"context"
	"fmt"
	"slices"
)

// chunks checks every chunk on its own and against its neighbours.
func (v *verifier) chunks() {
	var committed []ChunkReport
	for _, c := range v.in.Chunks {
		if !c.Committed {
			v.add(SeverityInfo, "chunk_uncommitted", c.File, "chunk whose first commit never completed (%d bytes written); the next Open removes it", c.UncommittedBytes)
			continue
		}
		committed = append(committed, c)
	}
	for n, c := range committed {
		isLast := n == len(committed)-1
		switch {
		case !c.HeaderValid:
			v.add(SeverityError, "chunk_header", c.File, "unreadable chunk header: %s", c.Error)
			continue
		case !c.CRCValid && c.Error != "":
			v.add(SeverityError, "chunk_crc", c.File, "%s (at offset %d; %d records verify before it)", c.Error, c.ErrorOffset, c.RecordCount)
		case c.Error != "":
			v.add(SeverityError, "chunk_invalid", c.File, "%s (at offset %d)", c.Error, c.ErrorOffset)
		}
		h := c.Header
		if !h.Flags.Sealed() && !isLast {
			v.add(SeverityError, "chunk_unsealed", c.File, "chunk %d is not sealed but chunk %d follows it", c.Index, committed[n+1].Index)
		}
		if h.Flags.Sealed() && c.UncommittedBytes > 0 {
			v.add(SeverityWarning, "chunk_tail", c.File, "sealed chunk holds %d bytes past committed_len", c.UncommittedBytes)
		} else if c.UncommittedBytes > 0 {
			v.add(SeverityInfo, "chunk_tail", c.File, "%d uncommitted bytes past committed_len (a live writer, or a crashed commit the next Open trims)", c.UncommittedBytes)
		}
		if n == 0 {
			continue
		}
		prev := committed[n-1]
		if c.Index != prev.Index+1 {
			v.add(SeverityError, "chunk_gap", c.File, "chunks %d to %d are missing", prev.Index+1, c.Index-1)
		} else if prev.Header != nil && prev.Error == "" && h.BaseRecord != prev.Header.BaseRecord+uint64(prev.RecordCount) {
			v.add(SeverityError, "base_record_gap", c.File, "base_record %d, previous chunk ends at %d", h.BaseRecord, prev.Header.BaseRecord+uint64(prev.RecordCount))
		}
	}
}

// snapshots checks the snapshot files and their markers.
func (v *verifier) snapshots() {
	markers := map[uint64]SnapshotMarker{}
	for _, c := range v.in.Chunks {
		for _, r := range c.Records {
			if m, ok := r.Record.(SnapshotMarker); ok {
				markers[m.SnapshotID] = m
			}
		}
	}
	first, ok := v.firstChunk()
	for _, s := range v.in.Snapshots {
		if s.Error != "" {
			v.add(SeverityError, "snapshot_invalid", s.File, "%s", s.Error)
			continue
		}
		m, found := markers[s.ID]
		switch {
		case found && (m.ChunkIndex != s.ChunkIndex || m.ChunkOffset != s.ChunkOffset):
			v.add(SeverityError, "snapshot_marker_mismatch", s.File, "marker names %d/%d, snapshot covers %d/%d", m.ChunkIndex, m.ChunkOffset, s.ChunkIndex, s.ChunkOffset)
		case !found && ok && s.ChunkIndex >= first:
			v.add(SeverityWarning, "snapshot_marker_missing", s.File, "no SnapshotMarker for snapshot %d in the local chunks (a crash between the snapshot and its marker)", s.ID)
		}
	}
}

func (v *verifier) firstChunk() (uint64, bool) {
	for _, c := range v.in.Chunks {
		if c.Committed {
			return c.Index, true
		}
	}
	return 0, false
}

func (v *verifier) validSnapshots() []SnapshotReport {
	var out []SnapshotReport
	for _, s := range v.in.Snapshots {
		if s.Error == "" {
			out = append(out, s)
		}
	}
	return out
}

// retention checks that local retention left a replayable log.
func (v *verifier) retention() {
	first, ok := v.firstChunk()
	snaps := v.validSnapshots()
	switch {
	case !ok:
	case len(snaps) == 0 && first != 0:
		v.add(SeverityError, "retention_gap", "", "chunks 0 to %d were removed but no valid snapshot covers them", first-1)
	case len(snaps) > 0:
		newest := snaps[len(snaps)-1]
		if newest.ChunkIndex < first {
			v.add(SeverityError, "retention_gap", newest.File, "the newest snapshot resumes in chunk %d, but the oldest local chunk is %d", newest.ChunkIndex, first)
		}
		if len(snaps) > 1 && snaps[len(snaps)-2].ChunkIndex < first {
			v.add(SeverityWarning, "retention_fallback", snaps[len(snaps)-2].File, "the fallback snapshot resumes in chunk %d, before the oldest local chunk %d", snaps[len(snaps)-2].ChunkIndex, first)
		}
	}
	if v.in.Replay.NeedsRepair {
		v.add(SeverityError, "needs_repair", "", "replay cannot apply %d damaged parts of the committed log; residency must be rebuilt from ground truth", v.in.Replay.CorruptionEvents)
	}
}

// tier2 checks that every chunk flagged uploaded, and every chunk already
// removed locally, is present in tier 2.
func (v *verifier) tier2(ctx context.Context, store ChunkStore) error {
	list, err := store.ChunkObjects(ctx)
	if err != nil {
		return fmt.Errorf("manifest: verify: list tier-2 chunks: %w", err)
	}
	slices.Sort(list)
	has := func(i uint64) bool { _, ok := slices.BinarySearch(list, i); return ok }
	first, ok := v.firstChunk()
	if ok {
		for i := uint64(0); i < first; i++ {
			if !has(i) {
				v.add(SeverityError, "tier2_missing", chunkName(i), "chunk %d was removed locally but is not in tier 2", i)
			}
		}
	}
	for _, c := range v.in.Chunks {
		if c.Header != nil && c.Header.Flags.Uploaded() && !has(c.Index) {
			v.add(SeverityError, "tier2_missing", c.File, "chunk %d is flagged uploaded but is not in tier 2", c.Index)
		}
	}
	return nil
}
