package core

import (
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"

	"github.com/aof2/aof2/core/segment"
	"github.com/aof2/aof2/core/vfs"
)

// runCheckpoints is the checkpointer goroutine, stopped by stop.
func (w *nodeWAL) runCheckpoints() {
	defer w.wg.Done()
	for {
		select {
		case <-w.cpKick:
			err := w.checkpoint(RecordID(w.cpEnd.Load()))
			var we *walCheckpointWriteError
			switch {
			case errors.As(err, &we):
				// Nothing was dropped: the next checkpoint writes it again.
				w.log.Warn("node WAL: could not write the checkpoint; the next one retries", "error", err)
			case err != nil:
				w.block(err)
			}
		case <-w.ctx.Done():
			return
		}
	}
}

// close closes the WAL's stream after the user streams closed. When they
// all closed cleanly their segments hold everything the WAL does, and the
// WAL's files are removed: a WAL on disk then always means records the
// segments may lack (checkNoWAL).
func (w *nodeWAL) close(clean bool) error {
	blocked := w.blockedErr()
	err := w.s.close()
	if err != nil {
		return fmt.Errorf("node WAL: close: %w", err)
	}
	if clean && blocked == nil && w.err() == nil {
		if err := removeWAL(w.st.cfg.FS, w.st.dir); err != nil {
			return fmt.Errorf("node WAL: remove after a clean close: %w", err)
		}
	}
	return nil
}

// removeWAL deletes the WAL's checkpoint, then its durable mark and
// pointer, then its segment files oldest first: a crash in between leaves
// the newest segments and no checkpoint, which replays them whole (every
// record checked against the segments and skipped), and never a mark that
// names a segment whose file is gone (which would read as damage).
func removeWAL(fsys vfs.FS, dir string) error {
	walDir, cpPath := walPaths(dir)
	if err := fsys.Remove(cpPath); err != nil && !vfs.IsNotExist(err) {
		return err
	}
	if err := fsys.SyncDir(walDir); err != nil {
		return err
	}
	segDir := filepath.Join(walDir, "segments")
	names, err := fsys.List(segDir)
	if err != nil {
		return err
	}
	slices.SortStableFunc(names, func(a, b string) int {
		_, segA := segment.ParseFileName(a)
		_, segB := segment.ParseFileName(b)
		switch {
		case segA == segB:
			return strings.Compare(a, b)
		case segB:
			return -1 // everything else goes first
		}
		return 1
	})
	for _, n := range names {
		if err := fsys.Remove(filepath.Join(segDir, n)); err != nil && !vfs.IsNotExist(err) {
			return err
		}
	}
	return fsys.SyncDir(segDir)
}

// ErrWALPresent: the store holds a node WAL that may have records its
// streams' segments lack, and it is opened without Config.NodeWAL.
var ErrWALPresent = errors.New("the store's node WAL may hold acknowledged records its segments lack: open it with the node WAL on (node_wal = true) once, which replays them; a clean close then removes the WAL")

// checkNoWAL refuses to open without the node WAL a store whose WAL was
// not removed by a clean close.
func checkNoWAL(fsys vfs.FS, dir string) error {
	walDir, _ := walPaths(dir)
	names, err := fsys.List(filepath.Join(walDir, "segments"))
	if vfs.IsNotExist(err) {
		return nil
	}
	if err != nil {
		return err
	}
	for _, n := range names {
		if _, ok := segment.ParseFileName(n); ok {
			return fmt.Errorf("%w (%s)", ErrWALPresent, walDir)
		}
	}
	return nil
}

// checkpoint makes every stream's segments hold what the WAL holds up to
// its record end (durable), records that in the checkpoint file (replay
// starts after it), and drops the WAL's segments wholly before it.
func (w *nodeWAL) checkpoint(end RecordID) error {
	blocked := w.blockedErr()
	if blocked != nil || end == 0 {
		return nil
	}
	// Every record whose entry is at or before end was appended to its
	// segment before the entry was queued: syncing each segment to its
	// end now covers it.
	for _, s := range w.st.openStreams() {
		if err := s.syncSegments(); err != nil {
			return fmt.Errorf("node WAL checkpoint: %w", err)
		}
	}
	if err := vfs.WriteFileAtomic(w.st.cfg.FS, w.cpPath, encodeWALCheckpoint(end)); err != nil {
		return &walCheckpointWriteError{fmt.Errorf("node WAL checkpoint: %w", err)}
	}
	w.m.checkpoints.Inc()
	for {
		segs := w.s.SegmentList()
		if len(segs) < 2 || segs[0].ID >= end.Segment() {
			return nil
		}
		if err := w.s.DropHead(segs[0].ID); err != nil {
			w.log.Warn("node WAL: could not drop a segment before the checkpoint", "segment_id", uint64(segs[0].ID), "error", err)
			return nil
		}
	}
}

// walCheckpointWriteError: the checkpoint file could not be written (the
// segments were synced, nothing was dropped); a later checkpoint retries.
type walCheckpointWriteError struct{ err error }

func (e *walCheckpointWriteError) Error() string { return e.err.Error() }
func (e *walCheckpointWriteError) Unwrap() error { return e.err }
