package core

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"sync"

	"github.com/aof2/aof2/core/checksum"
	"github.com/aof2/aof2/core/segment"
	"github.com/aof2/aof2/core/types"
	"github.com/aof2/aof2/core/vfs"
)

// Idempotent appends (docs/tiering.md#idempotent-appends): a client that
// retries after a lost response names its request with a producer id and
// a sequence number; a request the stream has already taken answers with
// the ids it got the first time instead of appending again, also across
// a restart and a crash. The producer log records each request before its
// records are stored, with the ids they will take; opening the store
// keeps of each request only the ids that survived, so a retry appends
// exactly the records a crash lost.

// Errors of AppendIdempotent (the first three re-exported from
// core/types, so clients match them too).
var (
	ErrSequenceStale    = types.ErrSequenceStale
	ErrSequenceMismatch = types.ErrSequenceMismatch
	// ErrBatchTooLarge: an idempotent request must fit one segment: at
	// most MaxProducerRecords records whose framed size is at most that of
	// the largest record the stream takes.
	ErrBatchTooLarge = types.ErrBatchTooLarge
	// ErrInvalidProducer: producer id 0 names no producer.
	ErrInvalidProducer = errors.New("aof2: invalid producer id")
)

const (
	// MaxProducerRecords is the most records one idempotent request holds.
	MaxProducerRecords = 1 << 16
	// maxProducerBatchBytes bounds what an entry can name (decoding).
	maxProducerBatchBytes = MaxProducerRecords * 32
	// MaxProducers is how many producers a stream remembers; beyond it
	// the one unused longest is forgotten (its next retry appends again).
	MaxProducers = 10000
)

// Producer names an idempotent request: the client's producer id (not 0)
// and the request's sequence number, increasing per producer (gaps
// allowed).
type Producer struct {
	ID  uint64
	Seq uint64
}

// BatchRecord is one record of an idempotent request.
type BatchRecord struct {
	Payload   []byte
	Timestamp int64 // unix ns; zero means now
	ExtID     uint64
}

// IdempotentResult answers AppendIdempotent.
type IdempotentResult struct {
	IDs []RecordID
	// Duplicate: every record was already in the stream; nothing was
	// appended.
	Duplicate bool
}

// producers is a stream's idempotent-append state. mu is taken before
// Stream.mu and held for a whole request, so one producer's retry waits
// for its first attempt.
type producers struct {
	mu sync.Mutex
	// The fields below are guarded by mu; log, size and entries are also
	// written with Stream.mu held (entries are written under it).
	loaded  bool
	err     error // sticky: the log could not be read or written
	byID    map[uint64]*producerState
	log     vfs.File
	size    int64 // where the next entry goes
	entries int   // entries in the log
	clock   uint64
}

type producerState struct {
	entry producerEntry
	used  uint64 // producers.clock at the last request
}

func (s *Stream) producerPath() string { return filepath.Join(filepath.Dir(s.segDir), producerLogName) }

// loadProducers reads the producer log at open, after recovery (and the
// node WAL's replay), before any append: each request keeps only the ids
// below the stream's end, the rest were lost. A log that changed that way
// is rewritten before the stream takes appends, so a lost id a later
// append reuses is never taken for the producer's.
func (s *Stream) loadProducers() {
	p := &s.prod
	p.mu.Lock()
	defer p.mu.Unlock()
	p.loaded = true
	p.byID = map[uint64]*producerState{}
	f, err := s.cfg.FS.Open(s.producerPath())
	if errors.Is(err, fs.ErrNotExist) {
		return
	}
	if err != nil {
		p.err = fmt.Errorf("stream %d: producer log: %w", s.id, err)
		return
	}
	b, err := readWhole(f)
	_ = f.Close()
	if err != nil {
		p.err = fmt.Errorf("stream %d: producer log: %w", s.id, err)
		return
	}
	es, valid, err := decodeProducerLog(b)
	if err != nil {
		p.err = fmt.Errorf("stream %d: %s: %w", s.id, s.producerPath(), err)
		s.log.Error("producer log damaged; idempotent appends are refused on this stream", "path", s.producerPath(), "error", err)
		return
	}
	s.mu.Lock()
	end := s.endMarkLocked()
	s.mu.Unlock()
	trimmed := valid != len(b)
	for _, e := range es {
		keep := len(e.ids)
		for keep > 0 && uint64(e.ids[keep-1]) >= end {
			keep--
		}
		if keep != len(e.ids) {
			e.ids, trimmed = e.ids[:keep], true
		}
		p.clock++
		p.byID[e.producer] = &producerState{entry: e, used: p.clock}
	}
	if trimmed || len(es) > 2*len(p.byID)+1024 {
		if err := s.rewriteProducersLocked(); err != nil {
			p.err = err
		}
	}
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

func readWhole(f vfs.File) ([]byte, error) {
	n, err := f.Size()
	if err != nil {
		return nil, err
	}
	b := make([]byte, n)
	if _, err := f.ReadAt(b, 0); err != nil {
		return nil, err
	}
	return b, nil
}

// rewriteProducersLocked replaces the log with one entry per producer:
// written to a temporary file, synced, renamed over the log.
func (s *Stream) rewriteProducersLocked() error {
	p := &s.prod
	b := producerLogHeader()
	for _, st := range p.byID {
		b = appendProducerEntry(b, st.entry)
	}
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
	p.log, p.size, p.entries = f, int64(len(b)), len(p.byID)
	return nil
}

// writeProducerLocked appends e to the log and syncs it. A failure is
// sticky: what the file holds after a failed sync is unknown.
func (s *Stream) writeProducerLocked(e producerEntry) error {
	p := &s.prod
	if p.log == nil || p.entries > 4*len(p.byID)+1024 {
		if err := s.rewriteProducersLocked(); err != nil {
			p.err = err
			return err
		}
	}
	b := appendProducerEntry(nil, e)
	_, err := p.log.WriteAt(b, p.size)
	if err == nil {
		err = p.log.Datasync()
	}
	if err != nil {
		p.err = fmt.Errorf("stream %d: producer log: %w", s.id, err)
		return p.err
	}
	p.size += int64(len(b))
	p.entries++
	return nil
}

func (s *Stream) closeProducers() error {
	p := &s.prod
	p.mu.Lock()
	defer p.mu.Unlock()
	p.err = fmt.Errorf("stream %d: %w", s.id, ErrClosed)
	if p.log == nil {
		return nil
	}
	err := p.log.Close()
	p.log = nil
	return err
}

// fingerprint identifies a request's records, so a retry with other
// records under the same sequence is refused.
func fingerprint(recs []BatchRecord) uint32 {
	var crc uint64
	var h [20]byte
	for _, r := range recs {
		binary.LittleEndian.PutUint32(h[0:], uint32(len(r.Payload)))
		binary.LittleEndian.PutUint64(h[4:], uint64(r.Timestamp))
		binary.LittleEndian.PutUint64(h[12:], r.ExtID)
		crc = checksum.Update(crc, h[:])
		crc = checksum.Update(crc, r.Payload)
	}
	return checksum.Fold32(crc)
}

// AppendIdempotent appends recs as producer request pr; with wait it
// waits out WouldBlock until ctx is done, without it it returns the
// WouldBlock (nothing appended). A request the stream already took answers
// with its ids (Duplicate); one a crash cut short appends the records
// that were lost. It does not wait for durability: Flush the last id.
// The records go into one segment, after the request is in the producer
// log: one extra fdatasync per request.
func (s *Stream) AppendIdempotent(ctx context.Context, pr Producer, recs []BatchRecord, wait bool) (IdempotentResult, error) {
	if err := s.checkIdempotent(pr, recs); err != nil {
		return IdempotentResult{}, err
	}
	// The fingerprint is of the request as sent: a retry's zero
	// timestamps become another "now".
	fp := fingerprint(recs)
	recs = append([]BatchRecord(nil), recs...)
	now := s.cfg.nowNanos()
	for i := range recs {
		if recs[i].Timestamp == 0 {
			recs[i].Timestamp = now
		}
	}
	p := &s.prod
	p.mu.Lock()
	defer p.mu.Unlock()
	if err := s.producersReady(); err != nil {
		return IdempotentResult{}, err
	}
	var have []RecordID
	if st := p.byID[pr.ID]; st != nil {
		e := st.entry
		switch {
		case pr.Seq < e.seq:
			return IdempotentResult{}, fmt.Errorf("stream %d: producer %d: sequence %d, last %d: %w", s.id, pr.ID, pr.Seq, e.seq, ErrSequenceStale)
		case pr.Seq == e.seq && (int(e.records) != len(recs) || e.fingerprint != fp):
			return IdempotentResult{}, fmt.Errorf("stream %d: producer %d: sequence %d: %w", s.id, pr.ID, pr.Seq, ErrSequenceMismatch)
		case pr.Seq == e.seq && len(e.ids) == len(recs):
			p.clock++
			st.used = p.clock
			return IdempotentResult{IDs: append([]RecordID(nil), e.ids...), Duplicate: true}, nil
		case pr.Seq == e.seq:
			have = e.ids
		}
	}
	e := producerEntry{producer: pr.ID, seq: pr.Seq, records: uint32(len(recs)), fingerprint: fp}
	ids, err := s.appendProducerWaiting(ctx, e, have, recs[len(have):], wait)
	if err != nil {
		return IdempotentResult{}, err
	}
	return IdempotentResult{IDs: ids}, nil
}

// producersReady says why the stream cannot take idempotent appends, if
// it cannot. Called with prod.mu held.
func (s *Stream) producersReady() error {
	p := &s.prod
	if p.err != nil {
		return p.err
	}
	if !p.loaded {
		// A replica's stream, or one the node WAL's replay created while
		// Open runs: the stream's own refusal says more.
		s.mu.Lock()
		err := s.usableLocked()
		s.mu.Unlock()
		if err != nil {
			return err
		}
		return fmt.Errorf("stream %d: idempotent appends are not available until the store is open: %w", s.id, ErrWouldBlock)
	}
	return nil
}

func (s *Stream) checkIdempotent(pr Producer, recs []BatchRecord) error {
	if pr.ID == 0 {
		return fmt.Errorf("stream %d: producer id 0: %w", s.id, ErrInvalidProducer)
	}
	if len(recs) == 0 {
		return fmt.Errorf("stream %d: no records: %w", s.id, ErrEmptyRecord)
	}
	if len(recs) > MaxProducerRecords {
		return fmt.Errorf("stream %d: %d records, at most %d: %w", s.id, len(recs), MaxProducerRecords, ErrBatchTooLarge)
	}
	var span int64
	for _, r := range recs {
		if err := s.checkPayload(r.Payload); err != nil {
			return err
		}
		span += segment.RecordSpan(len(r.Payload))
	}
	if limit := segment.RecordSpan(int(s.cfg.maxRecordSize())); span > limit {
		return fmt.Errorf("stream %d: %d framed bytes, at most %d: %w", s.id, span, limit, ErrBatchTooLarge)
	}
	return nil
}

// appendProducerWaiting runs appendProducer, with wait until it does not
// block.
func (s *Stream) appendProducerWaiting(ctx context.Context, e producerEntry, have []RecordID, recs []BatchRecord, wait bool) ([]RecordID, error) {
	var ids []RecordID
	attempt := func() (err error) {
		ids, err = s.appendProducer(e, have, recs)
		return err
	}
	var err error
	if wait {
		err = s.retryBlocked(ctx, attempt)
	} else {
		err = attempt()
	}
	if err != nil {
		return nil, err
	}
	n := 0
	for _, r := range recs {
		n += len(r.Payload)
	}
	s.afterAppend(len(recs), n)
	return ids, nil
}

// appendProducer places recs in the active segment (rolling over first if
// they do not fit), records the request with the ids they will take, then
// stores them. Called with prod.mu held.
func (s *Stream) appendProducer(e producerEntry, have []RecordID, recs []BatchRecord) ([]RecordID, error) {
	var span int64
	for _, r := range recs {
		span += segment.RecordSpan(len(r.Payload))
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.admitLocked(); err != nil {
		return nil, err
	}
	a := s.mu.active
	if s.needsRolloverLocked(a, span) {
		if err := s.rolloverLocked(recs[0].Timestamp, recs[0].ExtID, int(span-segment.RecordHeaderSize)); err != nil {
			return nil, err
		}
		if a = s.mu.active; s.needsRolloverLocked(a, span) {
			return nil, fmt.Errorf("stream %d: a %d-byte batch does not fit a new segment: %w", s.id, span, ErrBatchTooLarge)
		}
	}
	e.ids = append(append(make([]RecordID, 0, int(e.records)), have...), predictIDs(a, recs)...)
	p := &s.prod
	if err := s.writeProducerLocked(e); err != nil {
		return nil, err
	}
	p.clock++
	p.byID[e.producer] = &producerState{entry: e, used: p.clock}
	p.forgetOldest()
	for i, r := range recs {
		id, err := s.storeLocked(a, r.Payload, r.Timestamp, r.ExtID)
		if err != nil {
			return nil, err // the stream failed; the log entry's ids past the end are dropped at open
		}
		if want := e.ids[len(have)+i]; id != want {
			return nil, s.failLocked(fmt.Errorf("stream %d: record stored at %s, the producer log says %s", s.id, id, want))
		}
	}
	return e.ids, nil
}

func predictIDs(a *seg, recs []BatchRecord) []RecordID {
	ids := make([]RecordID, len(recs))
	off := a.w.End()
	for i, r := range recs {
		ids[i] = MakeRecordID(a.id, uint32(off))
		off += segment.RecordSpan(len(r.Payload))
	}
	return ids
}

// forgetOldest keeps at most MaxProducers producers.
func (p *producers) forgetOldest() {
	if len(p.byID) <= MaxProducers {
		return
	}
	var victim uint64
	oldest := ^uint64(0)
	for id, st := range p.byID {
		if st.used < oldest {
			victim, oldest = id, st.used
		}
	}
	delete(p.byID, victim)
}
