package core

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"slices"
	"time"

	"github.com/aof2/aof2/core/checksum"
	"github.com/aof2/aof2/core/manifest"
	"github.com/aof2/aof2/core/segment"
	"github.com/aof2/aof2/core/types"
	"github.com/aof2/aof2/core/vfs"
)

// Healing a damaged tier-0 copy from the other tiers (docs/tiering.md#healing).
//
// The manifest's sealed record (durable_bytes, segment_crc64) is the
// reference for a sealed segment, not the tier-0 file's own footer: the
// footer has no checksum of its own, so a flipped footer still decodes.
// At recovery, a segment file that cannot be read (its header, size or
// footer damaged) or whose footer disagrees with the manifest is checked
// against the reference; a copy that fails it is moved aside
// (<file>.damaged, kept for inspection) and the segment comes back as a
// cold segment, read and hydrated from the verified tier-1 or tier-2 copy.
// Without another copy an unreadable file is a lost segment (core/lost.go):
// the stream opens damaged, the rest of it readable; a readable one whose
// footer disagrees is kept as it is. Nothing is dropped or replaced
// silently.

// DamagedSuffix marks a tier-0 segment file recovery set aside because it
// failed the manifest's checksum and another tier holds the segment.
const DamagedSuffix = ".damaged"

// suspect is a segment file recovery could not read.
type suspect struct {
	info segment.Info
	err  error
}

// healFromOtherTiers runs after the manifest is open and before the cold
// segments are added: it sets aside the tier-0 copies that fail the
// manifest's reference when another tier holds the segment, so that
// addColdSegments describes them from that tier.
func (s *Stream) healFromOtherTiers(rep *RecoveryReport) error {
	tl := s.TierLog()
	for _, sp := range s.recovered.suspects {
		id := sp.info.Name.SegmentID
		st, ok := s.elsewhere(tl, id)
		if !ok {
			s.recovered.lost = append(s.recovered.lost, sp) // addLostSegments
			continue
		}
		if err := s.setAside(sp.info.Path, id, "unreadable", sp.err, st, rep); err != nil {
			return err
		}
	}
	s.recovered.suspects = nil
	if tl == nil {
		return nil
	}
	var keep []*seg
	cat := s.cat.Load()
	for _, g := range cat.segs {
		f := g.footer.Load()
		st, ok := tl.Segment(g.id)
		if f == nil || g.damage != nil || !g.resident.Load() || !ok || !st.Sealed ||
			(uint64(f.SegmentCRC) == uint64(st.SegmentCRC64) && f.DurableBytes == st.DurableBytes) {
			keep = append(keep, g)
			continue
		}
		cause := fmt.Errorf("footer says %d bytes with CRC %016x, the manifest %d bytes with CRC %016x",
			f.DurableBytes, f.SegmentCRC, st.DurableBytes, uint64(st.SegmentCRC64))
		if _, ok := s.elsewhere(tl, g.id); !ok {
			err := VerifySealedCopy(s.cfg.FS, g.path, st, nil)
			s.log.Error("a sealed segment's footer disagrees with the manifest and no other tier holds it; the copy is kept",
				"segment_id", uint64(g.id), "detail", cause.Error(), "records_match_manifest", err == nil, "check_error", err)
			keep = append(keep, g)
			continue
		}
		_ = g.close()
		if err := s.setAside(g.path, g.id, "checksum", cause, st, rep); err != nil {
			return err
		}
		s.m.segments.Dec()
		s.m.bytes.Sub(float64(g.capacity))
		rep.Sealed--
	}
	if len(keep) != len(cat.segs) {
		s.mu.Lock()
		s.setCatalogLocked(&catalog{segs: keep})
		s.mu.Unlock()
	}
	return nil
}

// elsewhere reports whether the manifest records segment id sealed with a
// verified tier-1 or tier-2 copy.
func (s *Stream) elsewhere(tl *TierLog, id SegmentID) (manifest.SegmentState, bool) {
	if tl == nil || s.cfg.Tiering == nil {
		return manifest.SegmentState{}, false
	}
	st, ok := tl.Segment(id)
	if !ok || !st.Sealed || len(st.Tier2.PendingDeletes) > 0 {
		return st, false
	}
	return st, st.Tier1.State == manifest.Tier1Compressed || st.Tier2.Key != ""
}

// VerifySealedCopy checks the first durable_bytes of a sealed segment's
// tier-0 file against the manifest's segment_crc64, reading it in chunks
// (before, if set, is called ahead of each chunk: the scrubber paces with
// it, and its error is returned as is). Bytes that end early or fail the
// checksum give an error wrapping types.ErrCorrupt; a file that cannot be
// opened or read gives the I/O error.
func VerifySealedCopy(fs vfs.FS, path string, st manifest.SegmentState, before func(int64) error) error {
	f, err := fs.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	crc, err := checksum.SumReaderAt(f, int64(st.DurableBytes), before)
	switch {
	case errors.Is(err, io.ErrUnexpectedEOF):
		return fmt.Errorf("tier-0 file %s is shorter than the manifest's %d durable bytes: %w: %w", path, st.DurableBytes, err, types.ErrCorrupt)
	case err != nil:
		return err
	case crc != uint64(st.SegmentCRC64):
		return fmt.Errorf("tier-0 bytes have CRC %016x, the manifest records %016x: %w", crc, uint64(st.SegmentCRC64), types.ErrCorrupt)
	}
	return nil
}

// setAside renames a damaged tier-0 copy out of the way (kept for
// inspection) and reports the repair.
func (s *Stream) setAside(path string, id SegmentID, reason string, cause error, st manifest.SegmentState, rep *RecoveryReport) error {
	aside := fmt.Sprintf("%s%s-%d", path, DamagedSuffix, time.Now().UnixNano())
	if err := s.cfg.FS.Rename(path, aside); err != nil {
		return fmt.Errorf("stream %d: set aside damaged segment %d: %w", s.id, id, err)
	}
	if err := s.cfg.FS.SyncDir(s.segDir); err != nil {
		return fmt.Errorf("stream %d: set aside damaged segment %d: %w", s.id, id, err)
	}
	from := "tier2"
	if st.Tier1.State == manifest.Tier1Compressed {
		from = "tier1"
	}
	s.m.repairs.WithLabelValues("tier0", reason).Inc()
	rep.Healed = append(rep.Healed, id)
	s.log.Warn("a damaged tier-0 segment was set aside; it is read from the copy another tier holds",
		"segment_id", uint64(id), "reason", reason, "detail", errString(cause), "kept_as", filepath.Base(aside), "from", from)
	return nil
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// ReplaceSealedFile puts the verified copy at src (a complete segment file
// in the segments directory) in place of the tier-0 file of sealed segment
// id, whose copy failed a check; the old file is kept as
// <file>.damaged-<ns>. src must describe the same segment (header, and a
// footer with the same durable bytes and segment_crc64). Readers holding
// the old file's mapping keep it until the stream closes.
func (s *Stream) ReplaceSealedFile(id SegmentID, src, reason string) error {
	g, _ := s.cat.Load().byID(id)
	if g == nil {
		return fmt.Errorf("stream %d: replace segment %d: %w", s.id, id, ErrNotFound)
	}
	f := g.footer.Load()
	s.mu.Lock()
	busy := g == s.mu.active || g == s.mu.sealing || f == nil || !g.resident.Load() || g.damage != nil
	s.mu.Unlock()
	if busy {
		return fmt.Errorf("stream %d: replace segment %d: not a resident sealed segment: %w", s.id, id, ErrSegmentBusy)
	}
	name, ok := segment.ParseFileName(filepath.Base(g.path))
	if !ok {
		return fmt.Errorf("stream %d: replace segment %d: bad file name %s", s.id, id, g.path)
	}
	info, err := segment.Inspect(s.cfg.FS, src, name, s.id)
	if err != nil {
		return fmt.Errorf("stream %d: replace segment %d: %w", s.id, id, err)
	}
	if info.Footer == nil || info.Footer.SegmentCRC != f.SegmentCRC || info.Footer.DurableBytes != f.DurableBytes {
		return fmt.Errorf("stream %d: replace segment %d: the copy at %s is not the segment the catalog describes: %w",
			s.id, id, src, &types.CorruptError{Path: src, Reason: "footer differs from the catalog's"})
	}
	aside := fmt.Sprintf("%s%s-%d", g.path, DamagedSuffix, time.Now().UnixNano())
	if err := s.cfg.FS.Rename(g.path, aside); err != nil {
		return fmt.Errorf("stream %d: replace segment %d: %w", s.id, id, err)
	}
	// A crash here leaves no tier-0 file: recovery then reads the segment
	// from the tier the copy came from, like an evicted one.
	if err := s.cfg.FS.Rename(src, g.path); err != nil {
		return fmt.Errorf("stream %d: replace segment %d: %w", s.id, id, err)
	}
	if err := s.cfg.FS.SyncDir(s.segDir); err != nil {
		return fmt.Errorf("stream %d: replace segment %d: %w", s.id, id, err)
	}
	info.Path = g.path
	ng := newSealedSeg(info)
	s.mu.Lock()
	if cur, i := s.cat.Load().byID(id); cur == g {
		segs := slices.Clone(s.cat.Load().segs)
		segs[i] = ng
		s.setCatalogLocked(&catalog{segs: segs})
		s.mu.retired = append(s.mu.retired, g)
	}
	s.mu.Unlock()
	s.m.repairs.WithLabelValues("tier0", reason).Inc()
	s.log.Warn("a damaged tier-0 segment was replaced by a verified copy from another tier",
		"segment_id", uint64(id), "reason", reason, "kept_as", filepath.Base(aside))
	return nil
}

// repairOnRead asks the tiering to replace g's tier-0 copy after a read
// found it corrupt; true when it was replaced and the read may try again.
func (s *Stream) repairOnRead(ctx context.Context, g *seg, err error) bool {
	if g == nil || !errors.Is(err, ErrCorrupt) || s.cfg.Tiering == nil || g.damage != nil || g.footer.Load() == nil || !g.resident.Load() {
		return false
	}
	if _, ok := s.elsewhere(s.TierLog(), g.id); !ok {
		return false
	}
	if rerr := s.cfg.Tiering.Repair(ctx, SegmentKey{Stream: s.id, Segment: g.id}); rerr != nil {
		s.log.Error("a sealed segment failed a read check and was not repaired from another tier",
			"segment_id", uint64(g.id), "read_error", err, "error", rerr)
		return false
	}
	return true
}

// current moves the reader from a segment a repair replaced to its
// replacement, at the same position.
func (r *Reader) current() {
	r.s.readMu.RLock()
	defer r.s.readMu.RUnlock()
	if r.seg != nil {
		r.retake()
	}
}

// retake drops the reader's view and takes the catalog's entry for its
// segment, at the same position: a repair, a rewind or an accepted loss
// may have replaced it. s.readMu is held (shared).
func (r *Reader) retake() {
	r.vseg, r.vb = nil, nil
	if g, _ := r.s.cat.Load().byID(r.seg.id); g != nil && g != r.seg {
		r.seg = g
		r.pin(g)
	}
}

// NewReaderCtx is NewReader for a caller that can wait: a damaged tier-0
// copy of the segment p lies in (its index cannot be built) is repaired
// from another tier within ctx, once, before giving up.
func (s *Stream) NewReaderCtx(ctx context.Context, p Position) (*Reader, error) {
	r, err := s.NewReader(p)
	if err == nil || !errors.Is(err, ErrCorrupt) {
		return r, err
	}
	cat := s.cat.Load()
	var g *seg
	switch {
	case p.byID:
		g, _ = cat.byID(p.id.Segment())
	case p.start && len(cat.segs) > 0:
		g = cat.segs[0]
	default:
		g, _ = cat.byOrdinal(p.ordinal)
	}
	if !s.repairOnRead(ctx, g, err) {
		return nil, err
	}
	return s.NewReader(p)
}

// NoteRepair counts a repair the tiering made of another tier's copy of a
// segment of this stream (aof_segment_repairs_total{tier,reason}): a warm
// artifact rebuilt, a tier-2 object uploaded again. Tier-0 repairs are
// counted by ReplaceSealedFile.
func (s *Stream) NoteRepair(tier, reason string) {
	s.m.repairs.WithLabelValues(tier, reason).Inc()
}
