package core

import (
	"context"
	"fmt"
	"path/filepath"
	"sync/atomic"
)

// walAck records that the stream's records before mark are durable in
// the WAL and makes them readable.
func (s *Stream) walAck(mark, pos, recs uint64) {
	s.mu.Lock()
	if s.mu.failed == nil && !s.mu.closed {
		if a := s.mu.active; a != nil && a.id == RecordID(mark).Segment() {
			// Readers read the file: staged bytes go out first. (A segment
			// that stopped being active was pushed whole then.)
			if err := a.w.Push(); err != nil {
				_ = s.failLocked(fmt.Errorf("push %s: %w", a.path, err))
				s.mu.Unlock()
				return
			}
			a.publish()
		}
	}
	s.mu.Unlock()
	casMax(&s.publishedMark, mark)
	casMax(&s.walPos, pos)
	casMax(&s.walRecs, recs)
	casMax(&s.walMark, mark)
	s.durableN.broadcast()
}

func casMax(a *atomic.Uint64, v uint64) {
	for {
		old := a.Load()
		if v <= old || a.CompareAndSwap(old, v) {
			return
		}
	}
}

// waitWAL is waitDurable under the node WAL: the committer acknowledges.
func (s *Stream) waitWAL(ctx context.Context, mark uint64) error {
	s.wal.waiters.Add(1)
	defer s.wal.waiters.Add(-1)
	inlined := false
	for {
		ch := s.durableN.wait()
		if max(s.durableMark.Load(), s.walMark.Load()) > mark {
			return nil
		}
		if err := s.Err(); err != nil {
			return err
		}
		if err := s.wal.err(); err != nil {
			return fmt.Errorf("stream %d: %w", s.id, err)
		}
		if err := s.wal.stalled(); err != nil {
			return fmt.Errorf("stream %d: flush: %w", s.id, err)
		}
		if !inlined && s.wal.commitInline() {
			inlined = true // once: then wait for the committer like everyone else
			continue
		}
		select {
		case <-ch:
		case <-s.closed:
			if s.durableMark.Load() > mark {
				return nil
			}
			return fmt.Errorf("stream %d: %w", s.id, ErrClosed)
		case <-ctx.Done():
			return fmt.Errorf("stream %d: flush: %w", s.id, ctx.Err())
		}
	}
}

// syncSegments makes everything appended to the stream durable in its
// segments (a WAL checkpoint). A closed stream synced itself.
func (s *Stream) syncSegments() error {
	s.roundMu.Lock()
	defer s.roundMu.Unlock()
	s.mu.Lock()
	closed := s.mu.closed
	s.mu.Unlock()
	if closed {
		return nil
	}
	return s.syncRound()
}

// openStreams lists the store's open streams.
func (st *Store) openStreams() []*Stream {
	st.mu.Lock()
	defer st.mu.Unlock()
	out := make([]*Stream, 0, len(st.mu.streams))
	for _, s := range st.mu.streams {
		out = append(out, s)
	}
	return out
}

// walConfigs derives, from the store's configuration, the one its user
// streams run with under the node WAL (segments synced at seal, checkpoint
// and MaxUnflushedBytes; tails resumed after a crash for the replay) and
// the WAL stream's own (sync always, fixed-size segments, no manifest, no
// tiering).
func walConfigs(c Config) (streams, wal Config) {
	streams, wal = c, c
	streams.Sync, streams.TailReplayed, streams.nodeWAL = SyncNone, true, true
	streams.NodeWALAcceptLoss, wal.NodeWALAcceptLoss = false, false // the store's decision
	// Only the committer's FlushAll syncs, on its own goroutine: no
	// syncer round races it for the same bytes.
	wal.NodeWAL, wal.Sync = false, SyncNone
	wal.InitialSegmentSize = c.SegmentSize
	wal.SegmentTargetBytes = 0
	wal.MaxUnflushedBytes = -1
	wal.NoManifest, wal.Tiering, wal.Registerer = true, nil, nil
	wal.Logger = c.Logger.Named("wal")
	return streams, wal
}

func walPaths(dir string) (walDir, cpPath string) {
	walDir = filepath.Join(dir, walDirName)
	return walDir, filepath.Join(walDir, walCheckpointFile)
}
