package core

import (
	"cmp"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aof2/aof2/core/segment"
	"github.com/aof2/aof2/core/types"
	"github.com/aof2/aof2/core/vfs"
)

// RecoveryReport says what recovery of one stream found and did.
type RecoveryReport struct {
	Stream       StreamID
	Segments     int           // segments recovered
	Sealed       int           // of which sealed
	Records      uint64        // records in the stream
	TailSegment  SegmentID     // the unsealed tail resumed for appends (0: none)
	TailRecords  uint64        // records found in the tail
	DroppedBytes int64         // torn or unacknowledged bytes zeroed past the tail's intact records
	Repaired     []SegmentID   // unsealed or badly sealed segments rescanned and resealed
	Removed      []string      // leftover files deleted (prepared files, temp files, empty tails)
	Orphaned     []string      // segments set aside as *.orphan (records after an unacknowledged gap)
	Pointer      string        // what became of current.sealed
	Duration     time.Duration // wall time of the segment recovery
	Manifest     ManifestRecovery
	Cold         []SegmentID // sealed segments present only in tier 1/2
	// CoordinatorWatermark is the newest sealed segment's watermark, which
	// the next seal carries unless SetCoordinatorWatermark changes it.
	CoordinatorWatermark uint64
	// TailSealed: the shutdown was not clean, so the tail segment was
	// sealed at recovery and appends go on in the next segment (ids past
	// its intact records may have been handed out).
	TailSealed bool
	// Placeholders are segment ids the durable mark reserved whose files
	// are gone, taken by empty sealed segments so they are never reused.
	Placeholders []SegmentID
	// Damage is set when durable records failed their checks (nothing was
	// dropped; appends are refused).
	Damage *DamageError
	// Lost are segments whose tier-0 file is unreadable and that no other
	// tier holds (core/lost.go): the stream is damaged unless their loss
	// was accepted earlier.
	Lost []SegmentID
	// Healed are sealed segments whose tier-0 copy failed the manifest's
	// checksum and was set aside (DamagedSuffix): they are read from the
	// copy tier 1 or 2 holds.
	Healed []SegmentID
}

// recover rebuilds the stream from its segment files (docs/tiering.md#recovery):
// header and footer of every sealed segment, a scan of the tail
// only. Everything it keeps is made durable before the stream is used.
func (s *Stream) recover() (rep RecoveryReport, err error) {
	start := time.Now()
	rep.Stream = s.id
	defer func() { rep.Duration = time.Since(start) }()
	fsys := s.cfg.FS

	names, err := fsys.List(s.segDir)
	if vfs.IsNotExist(err) {
		// A crash interrupted the stream's creation: nothing was ever
		// written to it. Finish creating it.
		err = vfs.MkdirAllSync(fsys, s.segDir)
	}
	if err != nil {
		return rep, fmt.Errorf("stream %d: list %s: %w", s.id, s.segDir, err)
	}
	var infos []segment.Info
	var stubs []string
	var segNames []segment.Name
	var segPaths []string
	for _, n := range names {
		path := filepath.Join(s.segDir, n)
		switch {
		case n == segment.PointerFile || n == segment.MarkFile:
		case strings.Contains(n, QuarantineSuffix) || strings.Contains(n, DamagedSuffix):
			s.log.Info("bytes an accepted loss replaced are kept for inspection", "file", path)
		case strings.HasSuffix(n, ColdSuffix), strings.HasSuffix(n, LostSuffix):
			stubs = append(stubs, path)
		case strings.HasSuffix(n, OrphanSuffix):
			s.log.Info("segment set aside by an earlier recovery is kept for inspection", "file", path)
		case segment.IsPrepName(n) || strings.HasSuffix(n, ".tmp"):
			if err := fsys.Remove(path); err != nil {
				return rep, fmt.Errorf("stream %d: remove leftover %s: %w", s.id, path, err)
			}
			rep.Removed = append(rep.Removed, n)
		default:
			name, ok := segment.ParseFileName(n)
			if !ok {
				s.log.Warn("ignoring unknown file in segments directory", "file", path)
				continue
			}
			segNames, segPaths = append(segNames, name), append(segPaths, path)
		}
	}
	inspected, errs := inspectAll(fsys, segPaths, segNames, s.id)
	for i, info := range inspected {
		err := errs[i]
		if ce := (*types.CorruptError)(nil); errors.As(err, &ce) {
			// Decided once the manifest says whether another tier holds
			// the segment (healFromOtherTiers).
			s.recovered.suspects = append(s.recovered.suspects, suspect{info: info, err: err})
			continue
		}
		if err != nil {
			return rep, fmt.Errorf("stream %d: %w", s.id, err)
		}
		infos = append(infos, info)
	}
	if infos, err = s.dropUnwrittenTail(infos, &rep); err != nil {
		return rep, err
	}
	for i := 0; i < len(infos)-1; i++ {
		if infos[i].Truncated {
			// Only the tail can be damage of its own (core/damage.go);
			// another tier may hold a sealed one (healFromOtherTiers).
			s.recovered.suspects = append(s.recovered.suspects, suspect{info: infos[i],
				err: &types.CorruptError{Path: infos[i].Path, Reason: fmt.Sprintf("file size %d is not a valid segment capacity", infos[i].Capacity)}})
			infos = slices.Delete(infos, i, i+1)
			i--
		}
	}
	for i := range infos {
		// A gap after a sealed segment may be segments evicted to tier 1/2;
		// checkCatalog decides once the manifest has put them back.
		if gap := i > 0 && infos[i].Name.SegmentID != infos[i-1].Name.SegmentID+1; gap && infos[i-1].Footer == nil {
			return rep, &types.CorruptError{Path: infos[i].Path, Reason: fmt.Sprintf("segment %d follows segment %d: segments are missing", infos[i].Name.SegmentID, infos[i-1].Name.SegmentID)}
		}
		if infos[i].Unwritten {
			return rep, &types.CorruptError{Path: infos[i].Path, Reason: "header never written, but later segments exist"}
		}
	}

	mark, err := segment.ReadMark(fsys, s.markPath())
	if err != nil {
		return rep, fmt.Errorf("stream %d: %w", s.id, err)
	}
	s.recovered.mark = mark
	var (
		tail      *segment.Writer
		watermark uint64 // the newest seal's, for a tail recovery seals
	)
	cat := &catalog{}
	for i := range infos {
		info := &infos[i]
		isLast := i == len(infos)-1
		if info.Footer == nil && !isLast {
			if err := s.repairSeal(info, &infos[i+1], &rep); err != nil {
				return rep, err
			}
		}
		var damaged *seg
		if info.Footer == nil {
			var err error
			if tail, damaged, err = s.openTail(info, mark, watermark, &rep); err != nil {
				return rep, err
			}
		}
		if f := info.Footer; f != nil {
			watermark = f.CoordinatorWatermark
		}
		if i > 0 && info.Name.SegmentID == infos[i-1].Name.SegmentID+1 {
			if err := checkChain(cat.last(), info, tail); err != nil {
				if tail != nil {
					_ = tail.Close()
				}
				return rep, err
			}
		}
		switch {
		case tail != nil:
			g := newActiveSeg(tail)
			g.dirSynced = true
			cat.segs = append(cat.segs, g)
		case damaged != nil:
			cat.segs = append(cat.segs, damaged)
		default:
			cat.segs = append(cat.segs, newSealedSeg(*info))
			rep.Sealed++
		}
	}
	rep.Segments = len(infos)
	// The catalog is built in place (it is not published yet): a copy per
	// segment made recovery O(segments²).
	local, cold := cat.segs, map[SegmentID]bool{}
	for _, path := range stubs {
		read := s.readStub
		if strings.HasSuffix(path, LostSuffix) {
			read = s.readLostStub
		}
		g, err := read(path)
		if err != nil {
			return rep, err
		}
		if f, _ := (&catalog{segs: local}).byID(g.id); f != nil || cold[g.id] {
			// Evicted and hydrated back, or a crash between the stub and
			// the delete: the file wins.
			if err := fsys.Remove(path); err != nil {
				return rep, fmt.Errorf("stream %d: remove stale cold stub: %w", s.id, err)
			}
			continue
		}
		cold[g.id] = true
		cat.segs = append(cat.segs, g)
		if g.damage != nil {
			rep.Lost = append(rep.Lost, g.id)
		} else {
			rep.Cold = append(rep.Cold, g.id)
		}
	}
	slices.SortFunc(cat.segs, func(a, b *seg) int { return cmp.Compare(a.id, b.id) })
	if err := fsys.SyncDir(s.segDir); err != nil {
		return rep, fmt.Errorf("stream %d: sync %s: %w", s.id, s.segDir, err)
	}
	rep.Pointer, err = s.reconcilePointer(cat)
	if err != nil {
		return rep, err
	}
	s.mu.Lock()
	s.installLocked(cat, tail)
	rep.Records = s.mu.records
	s.mu.Unlock()
	s.m.recoveryDrop.Add(float64(rep.DroppedBytes))
	s.m.recoverySecs.Set(time.Since(start).Seconds())
	for _, g := range cat.segs {
		s.m.segments.Inc()
		s.m.bytes.Add(float64(g.capacity))
	}
	return rep, nil
}

// Inspecting a segment file is a handful of small system calls, so a
// stream with many sealed segments restarts faster with several in flight
// (inspectWorkers); a stream with few inspects them one by one, in order,
// which keeps fault-injection runs replayable by operation index.
const (
	inspectWorkers  = 4
	inspectParallel = 64 // segment files from which they are inspected in parallel
)

// inspectAll inspects the segment files at paths; the results and errors
// are in the order of paths.
func inspectAll(fsys vfs.FS, paths []string, names []segment.Name, stream types.StreamID) ([]segment.Info, []error) {
	infos, errs := make([]segment.Info, len(paths)), make([]error, len(paths))
	workers := 1
	if len(paths) >= inspectParallel {
		workers = inspectWorkers
	}
	// A few long-lived workers taking the next index, not a goroutine per
	// file: at 10,000 segments, starting goroutines and growing their
	// stacks was a sixth of the inspection's CPU.
	var next atomic.Int64
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for i := int(next.Add(1) - 1); i < len(paths); i = int(next.Add(1) - 1) {
				infos[i], errs[i] = segment.Inspect(fsys, paths[i], names[i], stream)
			}
		})
	}
	wg.Wait()
	return infos, errs
}

// OrphanSuffix marks a segment file set aside by recovery: it held records
// that can only have been written after an unacknowledged gap, so they are
// not part of the stream. The file is kept for inspection, never read.
const OrphanSuffix = ".orphan"

// dropUnwrittenTail removes trailing segments that cannot hold an
// acknowledged record. Durability is a prefix: the syncer makes segment N
// whole before anything in N+1, so when N is unsealed and does not end
// exactly where N+1 begins, nothing in N+1 was acknowledged.
//   - a never-written segment (no durable size or header) is deleted;
//   - an unsealed last segment after an unsealed one is deleted when it
//     holds no records, and set aside (renamed *.orphan) when it holds
//     records its predecessor does not line up with.
func (s *Stream) dropUnwrittenTail(infos []segment.Info, rep *RecoveryReport) (_ []segment.Info, err error) {
	dropped := false
	defer func() {
		// Durable before recovery writes anything else: sealing the
		// predecessor next (a reserved id asks for it) while a crash could
		// bring the dropped file back would leave a chain that no longer
		// lines up, which no later recovery can tell from missing records.
		if dropped && err == nil {
			if serr := s.cfg.FS.SyncDir(s.segDir); serr != nil {
				err = fmt.Errorf("stream %d: drop unwritten tail: %w", s.id, serr)
			}
		}
	}()
	for len(infos) > 0 {
		last := infos[len(infos)-1]
		drop, orphan := last.Unwritten, false
		if !drop && last.Footer == nil && len(infos) > 1 && infos[len(infos)-2].Footer == nil {
			empty, err := segment.HasNoRecords(s.cfg.FS, last.Path)
			if err != nil {
				return nil, fmt.Errorf("stream %d: %w", s.id, err)
			}
			if drop = empty; !drop {
				prev := &infos[len(infos)-2]
				aligned, err := linesUp(s.cfg.FS, prev, &last)
				if err != nil {
					return nil, fmt.Errorf("stream %d: %w", s.id, err)
				}
				if !aligned && prev.FooterErr != nil {
					// A seal is written once every record is durable: a
					// footer there (even a wrong one) means the records
					// after it may have been acknowledged. Not a crash gap.
					return nil, &types.CorruptError{Path: last.Path, Reason: fmt.Sprintf(
						"segment does not start where the previous one ends, and the previous one has a damaged footer (%v)", prev.FooterErr)}
				}
				drop, orphan = !aligned, !aligned
			}
		}
		if !drop {
			return infos, nil
		}
		dropped = true
		if orphan {
			err = s.cfg.FS.Rename(last.Path, last.Path+OrphanSuffix)
			s.log.Warn("set aside a segment written after an unacknowledged gap (its records were never acknowledged)",
				"file", last.Path+OrphanSuffix)
			rep.Orphaned = append(rep.Orphaned, filepath.Base(last.Path)+OrphanSuffix)
		} else {
			err = s.cfg.FS.Remove(last.Path)
			rep.Removed = append(rep.Removed, filepath.Base(last.Path))
		}
		if err != nil {
			return nil, fmt.Errorf("stream %d: drop unwritten tail %s: %w", s.id, last.Path, err)
		}
		infos = infos[:len(infos)-1]
	}
	return infos, nil
}

// linesUp reports whether the intact records of prev end exactly where
// next's header says next begins. A negative answer sets next aside, so it
// is confirmed by a second read.
func linesUp(fsys vfs.FS, prev, next *segment.Info) (bool, error) {
	f, err := fsys.Open(prev.Path)
	if err != nil {
		return false, err
	}
	defer f.Close()
	r, err := f.Map(0, int(prev.Capacity), false)
	if err != nil {
		return false, err
	}
	defer r.Close()
	ts, err := segment.ScanTailVerified(f, r.Bytes(), prev.Path)
	if err != nil {
		return false, err
	}
	h := prev.Header
	return next.Header.BaseRecord == h.BaseRecord+ts.Count && next.Header.BaseOffset == h.BaseOffset+uint64(ts.End-segment.HeaderSize), nil
}

// repairSeal rescans an unsealed (or badly sealed) segment that is not the
// tail and reseals it, provided its records line up exactly with the next
// segment's header: then nothing can be missing.
func (s *Stream) repairSeal(info, next *segment.Info, rep *RecoveryReport) error {
	// Checked before anything is written: a refusal leaves the file as it was.
	aligned, err := linesUp(s.cfg.FS, info, next)
	if err != nil {
		return fmt.Errorf("stream %d: repair: %w", s.id, err)
	}
	if !aligned {
		return &types.CorruptError{Path: info.Path, Reason: fmt.Sprintf(
			"unsealed segment's records do not end where the next segment starts (record %d, offset %d): records are missing",
			next.Header.BaseRecord, next.Header.BaseOffset)}
	}
	w, ts, err := segment.Resume(s.cfg.FS, *info, s.cfg.WriteMode)
	if err != nil {
		return fmt.Errorf("stream %d: repair: %w", s.id, err)
	}
	defer w.Close()
	h := info.Header
	if next.Header.BaseRecord != h.BaseRecord+ts.Count || next.Header.BaseOffset != h.BaseOffset+uint64(ts.End-segment.HeaderSize) {
		return &types.CorruptError{Path: info.Path, Offset: ts.End, Reason: fmt.Sprintf(
			"unsealed segment holds %d records ending at %d (%s), but the next segment starts at record %d, offset %d: records are missing",
			ts.Count, ts.End, ts.Stop, next.Header.BaseRecord, next.Header.BaseOffset)}
	}
	f, err := w.Seal(segment.SealParams{SealedAt: s.sealedAt(ts.LastTS, h.CreatedAt), ExtID: ts.LastExt})
	if err != nil {
		return fmt.Errorf("stream %d: repair: reseal %s: %w", s.id, info.Path, err)
	}
	s.log.Warn("resealed a segment found unsealed or with a damaged footer", "segment_id", uint64(h.SegmentID),
		"records", f.RecordCount, "footer_error", info.FooterErr)
	info.Footer, info.FooterErr = &f, nil
	rep.Repaired = append(rep.Repaired, h.SegmentID)
	return nil
}

// checkChain verifies that info starts exactly where prev ends.
func checkChain(prev *seg, info *segment.Info, tail *segment.Writer) error {
	wantRecord, wantOffset := prev.baseRecord+prev.count.Load(), prev.endPos()
	h := info.Header
	if tail != nil {
		h = tail.Header()
	}
	if h.BaseRecord != wantRecord || h.BaseOffset != wantOffset {
		return &types.CorruptError{Path: info.Path, Reason: fmt.Sprintf(
			"segment starts at record %d, offset %d; the previous one ends at record %d, offset %d",
			h.BaseRecord, h.BaseOffset, wantRecord, wantOffset)}
	}
	return nil
}

// reconcilePointer checks current.sealed against the recovered segments and
// rewrites it when it is missing, stale or damaged.
func (s *Stream) reconcilePointer(cat *catalog) (string, error) {
	var lastSealed *seg
	for _, g := range cat.segs {
		if g.footer.Load() != nil {
			lastSealed = g
		}
	}
	p, err := segment.ReadPointer(s.cfg.FS, s.ptrPath)
	status := "ok"
	switch {
	case errors.Is(err, ErrCorrupt):
		status = "damaged: " + err.Error()
	case err != nil:
		return "", fmt.Errorf("stream %d: %w", s.id, err)
	case p == nil && lastSealed == nil:
		return "none", nil
	case p == nil:
		status = "missing"
	case lastSealed == nil || p.SegmentID != lastSealed.id || p.DurableBytes != lastSealed.footer.Load().DurableBytes:
		status = fmt.Sprintf("stale (names segment %d, %d bytes)", p.SegmentID, p.DurableBytes)
	}
	if status == "ok" {
		return status, nil
	}
	s.log.Warn("current.sealed did not match the segments; fell back to the directory scan", "pointer", status)
	if lastSealed == nil {
		if err := s.cfg.FS.Remove(s.ptrPath); err != nil && !vfs.IsNotExist(err) {
			return "", err
		}
		return status + "; removed", s.cfg.FS.SyncDir(s.segDir)
	}
	f := lastSealed.footer.Load()
	if err := s.writePointer(segment.Pointer{SegmentID: lastSealed.id, DurableBytes: f.DurableBytes, CoordinatorWatermark: f.CoordinatorWatermark}); err != nil {
		return "", err
	}
	return status + "; rewritten", nil
}

// installLocked makes a recovered catalog the stream's state: the
// position after its newest segment is where appends go on.
func (s *Stream) installLocked(cat *catalog, tail *segment.Writer) {
	s.setCatalogLocked(cat)
	if last := cat.last(); last != nil {
		s.mu.written = last.endPos()
		s.mu.records = last.baseRecord + last.count.Load()
		if tail != nil {
			s.mu.active = last
		}
		s.durableMark.Store(uint64(types.MakeRecordID(last.id, uint32(last.visible.Load()))))
	}
	s.durablePos.Store(s.mu.written)
	s.durableRecs.Store(s.mu.records)
}
