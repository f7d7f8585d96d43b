package core

import (
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"

	"github.com/aof2/aof2/core/vfs"
)

// loadProducers reads the producer log at open, after recovery (and the
// node WAL's replay), before any append: each request keeps only the ids
// below the stream's end, the rest were lost. A log that changed that way
// is rewritten before the stream takes appends, so a lost id a later
// append reuses is never taken for the producer's.
func (s *Stream) loadProducers() {
	s.mu.Lock()
	defer s.mu.Unlock()
	end := s.endMarkLocked()
	p := &s.prod
	p.mu.Lock()
	p.loaded = true
	p.byID, p.inflight = map[uint64]*producerState{}, map[uint64]chan struct{}{}
	es, rewrite, err := s.readProducerLog(end)
	if err != nil {
		p.err = err
		p.mu.Unlock()
		return
	}
	for _, e := range es {
		p.clock++
		p.byID[e.producer] = &producerState{entry: e, used: p.clock}
	}
	rewrite = rewrite || len(es) > 2*len(p.byID)+1024
	p.mu.Unlock()
	if rewrite {
		if err := s.rewriteProducersLocked(); err != nil {
			p.mu.Lock()
			p.err = err
			p.mu.Unlock()
		}
	}
}

// readProducerLog decodes the log and trims each entry to the ids below
// end; rewrite says the file must be rewritten (trimmed, or a torn tail).
// A missing log is an empty one.
func (s *Stream) readProducerLog(end uint64) (es []producerEntry, rewrite bool, err error) {
	b, err := vfs.ReadFile(s.cfg.FS, s.producerPath())
	if errors.Is(err, fs.ErrNotExist) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("stream %d: producer log: %w", s.id, err)
	}
	es, valid, err := decodeProducerLog(b)
	if err != nil {
		s.log.Error("producer log damaged; idempotent appends are refused on this stream", "path", s.producerPath(), "error", err)
		return nil, false, fmt.Errorf("stream %d: %s: %w", s.id, s.producerPath(), err)
	}
	rewrite = valid != len(b)
	for i := range es {
		keep := len(es[i].ids)
		for keep > 0 && uint64(es[i].ids[keep-1]) >= end {
			keep--
		}
		if keep != len(es[i].ids) {
			es[i].ids, rewrite = es[i].ids[:keep], true
		}
	}
	return es, rewrite, nil
}

// endMarkLocked is the stream's end, RecordID-shaped: every record id
// below it names a record the stream holds (or held, before retention).
func (s *Stream) endMarkLocked() uint64 {
	g := s.cat.Load().last()
	if g == nil {
		return 0
	}
	return uint64(MakeRecordID(g.id, uint32(g.visible.Load())))
}

// rewriteProducersLocked replaces the log with one entry per producer:
// written to a temporary file, synced, renamed over the log. Called with
// Stream.mu held.
func (s *Stream) rewriteProducersLocked() error {
	p := &s.prod
	b := producerLogHeader()
	p.mu.Lock()
	for _, st := range p.byID {
		// One round per entry: damage to any but the last is reported.
		b = appendProducerRound(b, []producerEntry{st.entry})
	}
	n := len(p.byID)
	p.mu.Unlock()
	path := s.producerPath()
	tmp := path + ".tmp"
	fsys := s.cfg.FS
	if err := fsys.Remove(tmp); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("stream %d: producer log: %w", s.id, err)
	}
	f, err := fsys.Create(tmp)
	if err != nil {
		return fmt.Errorf("stream %d: producer log: %w", s.id, err)
	}
	if _, err = f.WriteAt(b, 0); err == nil {
		err = f.Datasync()
	}
	if err == nil {
		err = fsys.Rename(tmp, path)
	}
	if err == nil {
		err = fsys.SyncDir(filepath.Dir(path))
	}
	if err != nil {
		_ = f.Close()
		return fmt.Errorf("stream %d: producer log: %w", s.id, err)
	}
	if p.log != nil {
		_ = p.log.Close()
	}
	p.log, p.size, p.entries = f, int64(len(b)), n
	return nil
}

// writeProducersLocked appends es to the log as one round and syncs it
// once. A failure stops the stream, as a failed segment sync does: what
// the file holds after it is unknown, and the round's entries may be on
// disk naming ids that plain appends would otherwise take, so that a retry
// after a restart is answered with another payload's ids. Called with
// Stream.mu held.
func (s *Stream) writeProducersLocked(es []producerEntry) error {
	p := &s.prod
	p.mu.Lock()
	err, producers := p.err, len(p.byID)
	p.mu.Unlock()
	if err != nil {
		return err
	}
	if p.log == nil || p.entries > 4*producers+1024 {
		err = s.rewriteProducersLocked()
	}
	// One round: a power cut before the fdatasync returns can tear any of
	// its bytes, and decoding drops the last round whole when it does not
	// verify (none of its records were stored).
	b := appendProducerRound(nil, es)
	if err == nil {
		_, err = p.log.WriteAt(b, p.size)
	}
	if err == nil {
		err = p.log.Datasync()
	}
	if err != nil {
		err = fmt.Errorf("stream %d: producer log: %w", s.id, err)
		p.mu.Lock()
		p.err = err
		p.mu.Unlock()
		return s.failLocked(err)
	}
	p.size += int64(len(b))
	p.entries += len(es)
	return nil
}

// closeProducers closes the log; idempotent appends fail from here on.
func (s *Stream) closeProducers() error {
	p := &s.prod
	p.mu.Lock()
	p.err = fmt.Errorf("stream %d: %w", s.id, ErrClosed)
	p.mu.Unlock()
	s.mu.Lock()
	defer s.mu.Unlock()
	if p.log == nil {
		return nil
	}
	err := p.log.Close()
	p.log = nil
	return err
}
