package core

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"sync"

	"github.com/aof2/aof2/core/manifest"
	"github.com/aof2/aof2/core/vfs"
	"github.com/aof2/aof2/internal/logfields"
)

// Store is a directory of streams.
type Store struct {
	dir     string
	streams string // <dir>/streams
	cfg     Config
	m       *metrics
	// streamCfg is what streams run with: cfg, or under NodeWAL the
	// derived one (walConfigs), with walCfg for the WAL's own stream.
	streamCfg, walCfg Config
	// wal is the node WAL (nil without Config.NodeWAL, and until it has
	// replayed); set under mu, read without it once Open has returned.
	wal *nodeWAL
	// walLoss is what Open did to accept the node WAL's loss (set by
	// Open, read-only after it).
	walLoss *WALLossReport

	mu struct {
		sync.Mutex
		streams map[StreamID]*Stream
		broken  map[StreamID]error
		reports []RecoveryReport
		closed  bool
	}
}

// Open opens (creating if needed) the store in dir and recovers every
// stream in it. A stream that cannot be recovered does not stop the store:
// Stream and Lookup return its error, and Broken lists it.
func Open(dir string, cfg Config) (*Store, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	st := &Store{dir: dir, streams: filepath.Join(dir, "streams"), cfg: cfg, m: newMetrics(cfg.Registerer)}
	st.mu.streams = map[StreamID]*Stream{}
	st.mu.broken = map[StreamID]error{}
	st.streamCfg = cfg
	if cfg.NodeWAL {
		st.streamCfg, st.walCfg = walConfigs(cfg)
	} else if err := checkNoWAL(cfg.FS, dir); err != nil {
		return nil, fmt.Errorf("open store %s: %w", dir, err)
	}
	if err := vfs.MkdirAllSync(cfg.FS, st.streams); err != nil {
		return nil, fmt.Errorf("open store %s: %w", dir, err)
	}
	names, err := cfg.FS.List(st.streams)
	if err != nil {
		return nil, fmt.Errorf("open store %s: %w", dir, err)
	}
	var ids []StreamID
	for _, n := range names {
		id, err := strconv.ParseUint(n, 10, 64)
		if err != nil || strconv.FormatUint(id, 10) != n {
			cfg.Logger.Warn("ignoring unknown entry in streams directory", "name", n)
			continue
		}
		ids = append(ids, StreamID(id))
	}
	st.recoverAll(ids)
	if cfg.NodeWAL {
		if err := st.openWAL(); err != nil {
			st.abandon()
			return nil, fmt.Errorf("open store %s: %w", dir, err)
		}
	}
	if cfg.Follower == nil {
		// After the WAL's replay, before any append (core/producer.go).
		for _, s := range st.openStreams() {
			s.loadProducers()
		}
	}
	return st, nil
}

func (st *Store) recoverAll(ids []StreamID) {
	sem := make(chan struct{}, runtime.GOMAXPROCS(0))
	var wg sync.WaitGroup
	for _, id := range ids {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			s := newStream(id, st.streamDir(id), &st.streamCfg, st.m)
			rep, err := s.recover()
			if err == nil {
				rep.Manifest, err = s.openManifest(context.Background())
			}
			if err == nil {
				err = s.healFromOtherTiers(&rep)
			}
			if err == nil {
				err = s.addColdSegments(context.Background(), &rep)
			}
			if err == nil {
				err = s.addLostSegments(&rep)
			}
			if err == nil {
				err = s.checkCatalog()
			}
			if err == nil {
				s.mu.Lock()
				s.restoreWatermarkLocked()
				rep.CoordinatorWatermark = s.mu.watermark
				s.mu.Unlock()
				err = s.settleIDs(&rep)
			}
			if err != nil && s.journal != nil {
				_ = s.journal.Close()
			}
			if err == nil {
				err = s.start()
			}
			st.mu.Lock()
			defer st.mu.Unlock()
			st.mu.reports = append(st.mu.reports, rep)
			if err != nil {
				st.cfg.Logger.Error("stream recovery failed; the stream stays unavailable", "stream_id", uint64(id), "error", err)
				st.mu.broken[id] = err
				return
			}
			st.cfg.Logger.Info("stream recovered", append([]any{"stream_id", uint64(id), "segments", rep.Segments, "records", rep.Records,
				"dropped_bytes", rep.DroppedBytes, "pointer", rep.Pointer}, logfields.Duration("duration", rep.Duration)...)...)
			st.mu.streams[id] = s
			s.counts.add(s)
		}()
	}
	wg.Wait()
	slices.SortFunc(st.mu.reports, func(a, b RecoveryReport) int { return cmpID(a.Stream, b.Stream) })
}

func cmpID(a, b StreamID) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func (st *Store) streamDir(id StreamID) string {
	return filepath.Join(st.streams, strconv.FormatUint(uint64(id), 10))
}

// Dir returns the store's directory.
func (st *Store) Dir() string { return st.dir }

// TailReplayed reports whether the store was opened with
// Config.TailReplayed (a Raft state machine's store must be).
func (st *Store) TailReplayed() bool { return st.cfg.TailReplayed }

// Stream returns stream id, creating it on first use. A follower
// (Config.Follower) creates no stream: its streams are its writer's,
// created by FollowStream.
func (st *Store) Stream(id StreamID) (*Stream, error) {
	return st.stream(id, false)
}

// FollowStream returns stream id of a follower's store, creating it when
// the store does not have it yet: the writer created it (core/replica).
func (st *Store) FollowStream(id StreamID) (*Stream, error) {
	if st.cfg.Follower == nil {
		return nil, fmt.Errorf("follow stream %d: the store is not a follower (Config.Follower)", id)
	}
	return st.stream(id, true)
}

func (st *Store) stream(id StreamID, follow bool) (*Stream, error) {
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.mu.closed {
		return nil, ErrClosed
	}
	if s, ok := st.mu.streams[id]; ok {
		return s, nil
	}
	if err, ok := st.mu.broken[id]; ok {
		return nil, err
	}
	if st.cfg.Follower != nil && !follow {
		return nil, fmt.Errorf("create stream %d: %w", id, st.cfg.Follower())
	}
	if err := st.checkStreamLimitLocked(id); err != nil {
		return nil, err
	}
	if t := st.cfg.Tiering; t != nil {
		if err := t.CheckNewStream(id); err != nil {
			return nil, fmt.Errorf("create stream %d: %w", id, err)
		}
	}
	s, err := st.create(id)
	if err != nil {
		return nil, err
	}
	st.mu.streams[id] = s
	s.counts.add(s)
	return s, nil
}

func (st *Store) create(id StreamID) (*Stream, error) {
	dir := st.streamDir(id)
	s := newStream(id, dir, &st.streamCfg, st.m)
	s.wal = st.wal
	s.mu.replaying = st.cfg.NodeWAL && st.wal == nil // created by the WAL's replay
	// Every directory of the stream at once: one sync of the stream
	// directory and one of its parent, not one per directory.
	dirs := []string{s.segDir}
	if !st.cfg.NoManifest {
		dirs = append(dirs, manifest.Dirs(dir, st.cfg.Manifest)...)
	}
	if err := vfs.MkdirAllSync(st.cfg.FS, dirs...); err != nil {
		return nil, fmt.Errorf("create stream %d: %w", id, err)
	}
	if _, err := s.openManifest(context.Background()); err != nil {
		return nil, fmt.Errorf("create stream %d: %w", id, err)
	}
	if err := s.start(); err != nil {
		return nil, fmt.Errorf("create stream %d: %w", id, err)
	}
	if st.cfg.Follower == nil && !s.mu.replaying {
		s.loadProducers() // a stream the WAL's replay creates loads when Open ends
	}
	return s, nil
}

// Lookup returns an existing stream, or ErrUnknownStream.
func (st *Store) Lookup(id StreamID) (*Stream, error) {
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.mu.closed {
		return nil, ErrClosed
	}
	if s, ok := st.mu.streams[id]; ok {
		return s, nil
	}
	if err, ok := st.mu.broken[id]; ok {
		return nil, err
	}
	return nil, fmt.Errorf("stream %d: %w", id, ErrUnknownStream)
}

// Streams lists the open streams' ids in order.
func (st *Store) Streams() []StreamID {
	st.mu.Lock()
	defer st.mu.Unlock()
	return slices.Sorted(maps.Keys(st.mu.streams))
}

// Broken returns the streams that failed recovery, with their errors.
func (st *Store) Broken() map[StreamID]error {
	st.mu.Lock()
	defer st.mu.Unlock()
	out := make(map[StreamID]error, len(st.mu.broken))
	for k, v := range st.mu.broken {
		out[k] = v
	}
	return out
}

// Recovery returns what Open's recovery found, one report per stream.
func (st *Store) Recovery() []RecoveryReport {
	st.mu.Lock()
	defer st.mu.Unlock()
	return slices.Clone(st.mu.reports)
}

// abandon closes a store whose Open failed after its streams recovered,
// leaving their durable marks unclean: the WAL has not replayed, so the
// next open must still seal their tails after replaying it.
func (st *Store) abandon() {
	for _, s := range st.openStreams() {
		s.mu.Lock()
		s.mu.abandoned = true
		s.mu.Unlock()
	}
	_ = st.Close()
}

// Close flushes every stream, stops their goroutines and releases files
// and mappings. It does not seal active segments. Payload slices handed
// out by readers are invalid afterwards.
func (st *Store) Close() error {
	st.mu.Lock()
	if st.mu.closed {
		st.mu.Unlock()
		return ErrClosed
	}
	st.mu.closed = true
	streams := make([]*Stream, 0, len(st.mu.streams))
	for _, s := range st.mu.streams {
		streams = append(streams, s)
	}
	st.mu.Unlock()
	if st.wal != nil {
		st.wal.stop()
	}
	var errs []error
	for _, s := range streams {
		if err := s.close(); err != nil {
			errs = append(errs, err)
		}
	}
	if st.wal != nil {
		// A failed stream's close skips its sync: its segments may lack
		// records the WAL acknowledged, so the WAL stays for the next open.
		clean := len(errs) == 0
		for _, s := range streams {
			clean = clean && s.Err() == nil
		}
		errs = append(errs, st.wal.close(clean))
	}
	return errors.Join(errs...)
}

// start readies the stream for appends: for a new stream the first
// segment file is prepared now, so the first append need not wait. The
// syncer and the preparer start when there is work for them.
func (s *Stream) start() error {
	if err := s.openMark(s.recovered.mark); err != nil {
		return err
	}
	if s.recovered.resume {
		// The clean mark let the tail go on; a crash from here on is not
		// clean any more.
		s.markMu.Lock()
		err := s.writeMarkLocked()
		s.markMu.Unlock()
		if err != nil {
			return fmt.Errorf("stream %d: %w", s.id, err)
		}
	}
	if s.cfg.Follower != nil {
		return nil // a replica never takes a segment id (Config.Follower)
	}
	if s.cat.Load().last() != nil {
		// A restart: opening is not writing (a reader, a verify, an idle
		// stream), so the next file is prepared by the first append that
		// needs one (docs/adr-tier0.md), also when the recovered tail is
		// past half.
		return nil
	}
	if err := s.prepareNext(); err != nil {
		// Not fatal: appends see WouldBlock(Admission) while the preparer
		// retries.
		s.log.Warn("could not prepare a segment at start", "error", err)
		s.mu.Lock()
		s.kickPrepLocked()
		s.mu.Unlock()
	}
	return nil
}

// close flushes, finishes a pending seal, stops the goroutines and unmaps
// everything.
func (s *Stream) close() error {
	s.mu.Lock()
	if s.mu.closed {
		s.mu.Unlock()
		return nil
	}
	s.mu.closed = true
	// A stream refused for damage keeps its mark as recovery found it: a
	// clean mark would forget what the mark proved (a segment whose file is
	// gone) and the ids it reserved, and the next open would take appends
	// at the lost ids (TestMarkDamageSurvivesAReopen).
	abandoned := s.mu.abandoned || errors.Is(s.mu.refused, ErrDamaged)
	s.mu.Unlock()
	defer s.counts.remove(s)
	s.runMu.Lock()
	s.stopping = true
	s.runMu.Unlock()
	close(s.done)
	s.wg.Wait()
	var errs []error
	s.roundMu.Lock()
	if s.Err() == nil {
		if err := s.syncRound(); err != nil {
			errs = append(errs, err)
		} else if err := s.sealPending(); err != nil {
			errs = append(errs, err)
		} else if newest := s.cat.Load().last(); !abandoned && (newest == nil || newest.damage == nil) {
			// Everything handed out is durable: the next open may go on
			// appending to the tail.
			if err := s.markClosed(newest); err != nil {
				errs = append(errs, err)
			}
		}
	}
	s.roundMu.Unlock()
	if err := s.closeMark(); err != nil {
		errs = append(errs, err)
	}
	s.evictMu.Lock() // evictions under way record themselves first (EvictRecorded)
	if s.journal != nil {
		if err := s.journal.Close(); err != nil {
			errs = append(errs, fmt.Errorf("stream %d: close manifest: %w", s.id, err))
		}
	}
	s.evictMu.Unlock()
	close(s.closed)
	s.durableN.broadcast()
	s.stateN.broadcast()
	// After the wake-ups: an idempotent append waiting out backpressure
	// holds the producers' lock until it sees the stream closed.
	if err := s.closeProducers(); err != nil {
		errs = append(errs, fmt.Errorf("stream %d: close producer log: %w", s.id, err))
	}

	s.readMu.Lock()
	defer s.readMu.Unlock()
	s.readersClosed = true
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.mu.next != nil {
		if err := s.mu.next.Discard(); err != nil {
			errs = append(errs, err)
		}
		s.mu.next = nil
	}
	for _, g := range append(s.cat.Load().segs, s.mu.retired...) {
		if err := g.close(); err != nil && !errors.Is(err, vfs.ErrClosed) {
			errs = append(errs, err)
		}
	}
	s.mu.retired = nil
	return errors.Join(errs...)
}
