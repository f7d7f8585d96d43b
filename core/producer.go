package core

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
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

// producers is a stream's idempotent-append state. Lock order:
// Stream.mu before mu; mu is never held across a request's append, only
// around the state below.
type producers struct {
	mu sync.Mutex
	// Guarded by mu.
	loaded bool
	err    error // sticky: the log could not be read or written
	byID   map[uint64]*producerState
	clock  uint64
	// inflight holds the producers with a request under way, each with a
	// channel closed when it ends: a retry waits for the attempt before it.
	inflight map[uint64]chan struct{}
	// queue holds the requests waiting for a group commit; leading says
	// one of their callers runs rounds (core/producercommit.go).
	queue   []*producerReq
	leading bool

	// The log file: guarded by Stream.mu (a round writes it with the
	// records), or owned by Open and close.
	log     vfs.File
	size    int64 // where the next entry goes
	entries int   // entries in the file
}

type producerState struct {
	entry producerEntry
	used  uint64 // producers.clock at the last request
}

func (s *Stream) producerPath() string { return filepath.Join(filepath.Dir(s.segDir), producerLogName) }

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
// log: concurrent requests share that fdatasync (core/producercommit.go).
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
	if err := s.producersReady(); err != nil {
		return IdempotentResult{}, err
	}
	res, have, release, err := s.beginProducerRequest(ctx, pr, recs, fp)
	if err != nil || release == nil {
		return res, err
	}
	defer release()
	e := producerEntry{producer: pr.ID, seq: pr.Seq, records: uint32(len(recs)), fingerprint: fp}
	req := &producerReq{e: e, have: have, recs: recs[len(have):]}
	attempt := func() error {
		req.reset()
		s.submitProducer(req)
		return req.err
	}
	if wait {
		err = s.retryBlocked(ctx, attempt)
	} else {
		err = attempt()
	}
	if err != nil {
		return IdempotentResult{}, err
	}
	return IdempotentResult{IDs: req.ids}, nil
}

// beginProducerRequest answers a request the stream already took
// (release nil), refuses a stale or mismatched one, or registers it as the
// producer's request under way and returns the ids it already has (a
// request a crash cut short) and the func that ends it. A retry arriving
// while the producer has a request under way waits for it first.
func (s *Stream) beginProducerRequest(ctx context.Context, pr Producer, recs []BatchRecord, fp uint32) (res IdempotentResult, have []RecordID, release func(), err error) {
	p := &s.prod
	p.mu.Lock()
	defer p.mu.Unlock()
	for {
		if p.err != nil {
			return res, nil, nil, p.err
		}
		ch := p.inflight[pr.ID]
		if ch == nil {
			break
		}
		p.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			p.mu.Lock()
			return res, nil, nil, fmt.Errorf("stream %d: producer %d: waiting for its request under way: %w", s.id, pr.ID, ctx.Err())
		}
		p.mu.Lock()
	}
	if st := p.byID[pr.ID]; st != nil {
		e := st.entry
		switch {
		case pr.Seq < e.seq:
			return res, nil, nil, fmt.Errorf("stream %d: producer %d: sequence %d, last %d: %w", s.id, pr.ID, pr.Seq, e.seq, ErrSequenceStale)
		case pr.Seq == e.seq && (int(e.records) != len(recs) || e.fingerprint != fp):
			return res, nil, nil, fmt.Errorf("stream %d: producer %d: sequence %d: %w", s.id, pr.ID, pr.Seq, ErrSequenceMismatch)
		case pr.Seq == e.seq && len(e.ids) == len(recs):
			p.clock++
			st.used = p.clock
			return IdempotentResult{IDs: append([]RecordID(nil), e.ids...), Duplicate: true}, nil, nil, nil
		case pr.Seq == e.seq:
			have = e.ids
		}
	}
	ch := make(chan struct{})
	p.inflight[pr.ID] = ch
	return res, have, func() {
		p.mu.Lock()
		delete(p.inflight, pr.ID)
		p.mu.Unlock()
		close(ch)
	}, nil
}

// producersReady says why the stream cannot take idempotent appends, if
// it cannot.
func (s *Stream) producersReady() error {
	p := &s.prod
	p.mu.Lock()
	loaded, err := p.loaded, p.err
	p.mu.Unlock()
	if err != nil || loaded {
		return err
	}
	// A replica's stream, or one the node WAL's replay created while Open
	// runs: the stream's own refusal says more.
	s.mu.Lock()
	err = s.usableLocked()
	s.mu.Unlock()
	if err != nil {
		return err
	}
	return fmt.Errorf("stream %d: idempotent appends are not available until the store is open: %w", s.id, ErrWouldBlock)
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

func predictIDs(seg SegmentID, off int64, recs []BatchRecord) []RecordID {
	ids := make([]RecordID, len(recs))
	for i, r := range recs {
		ids[i] = MakeRecordID(seg, uint32(off))
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
