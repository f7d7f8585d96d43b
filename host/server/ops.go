package server

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/aof2/aof2/core"
)

// The operations both transports share: each takes decoded arguments and
// returns core values or errors that the error table classifies.

// entry is one record to append.
type entry struct {
	Payload   []byte
	Timestamp int64
	ExtID     uint64
}

func (s *Server) store() (*core.Store, error) {
	st := s.node.Store()
	if st == nil {
		return nil, errNotReady
	}
	return st, nil
}

// lookup returns an existing stream: reads never create one.
func (s *Server) lookup(id core.StreamID) (*core.Stream, error) {
	st, err := s.store()
	if err != nil {
		return nil, err
	}
	return st.Lookup(id)
}

// streamFor returns the stream to append to, creating it on first use.
func (s *Server) streamFor(id core.StreamID) (*core.Stream, error) {
	st, err := s.store()
	if err != nil {
		return nil, err
	}
	return st.Stream(id)
}

// appendEntries appends es in order. Runs of records with the same
// timestamp and ext id go in under one lock. With wait false it fails with
// WouldBlock as long as nothing is appended; once a prefix is in, it waits
// out backpressure (up to MaxBlock) for the rest rather than leave half a
// batch that a retry would duplicate. An error after some records were
// appended says how many (partialAppendError).
func (s *Server) appendEntries(ctx context.Context, str *core.Stream, es []entry, wait bool) ([]core.RecordID, error) {
	if err := checkEntries(str.ID(), es, str.MaxRecordSize()); err != nil {
		return nil, err
	}
	payloads := make([][]byte, len(es))
	for i, e := range es {
		payloads[i] = e.Payload
	}
	ids := make([]core.RecordID, 0, len(es))
	for i := 0; i < len(es); {
		j := i + 1
		for j < len(es) && es[j].Timestamp == es[i].Timestamp && es[j].ExtID == es[i].ExtID {
			j++
		}
		opts := core.AppendOptions{Timestamp: es[i].Timestamp, ExtID: es[i].ExtID}
		got, err := str.AppendBatch(payloads[i:j], opts)
		ids = append(ids, got...)
		i += len(got)
		if err == nil {
			continue
		}
		if !errors.Is(err, core.ErrWouldBlock) || (!wait && len(ids) == 0) {
			return ids, withAppended(ids, err)
		}
		id, err := s.appendWaiting(ctx, str, payloads[i], core.AppendOptions{Timestamp: es[i].Timestamp, ExtID: es[i].ExtID})
		if err != nil {
			return ids, withAppended(ids, err)
		}
		ids = append(ids, id)
		i++
	}
	return ids, nil
}

// checkEntries refuses a batch that is empty or holds a record no stream
// takes: before anything of it is appended (a batch goes in whole or not
// at all on bad input), and before an append creates its stream.
func checkEntries(id core.StreamID, es []entry, maxRecord int) error {
	if len(es) == 0 {
		return fmt.Errorf("stream %d: no records to append: %w", id, ErrBadRequest)
	}
	for i, e := range es {
		switch {
		case len(e.Payload) == 0:
			return fmt.Errorf("stream %d: record %d: %w", id, i, core.ErrEmptyRecord)
		case len(e.Payload) > maxRecord:
			return fmt.Errorf("stream %d: record %d: payload of %d bytes exceeds the maximum %d: %w",
				id, i, len(e.Payload), maxRecord, core.ErrRecordTooLarge)
		}
	}
	return nil
}

// appendTo checks es, then returns the stream to append them to (created
// on first use).
func (s *Server) appendTo(id core.StreamID, es []entry) (*core.Stream, error) {
	if err := checkEntries(id, es, s.opts.MaxRecordSize); err != nil {
		return nil, err
	}
	return s.streamFor(id)
}

// appendWaiting appends one record, waiting out backpressure for up to
// MaxBlock (withinMaxBlock).
func (s *Server) appendWaiting(ctx context.Context, str *core.Stream, p []byte, o core.AppendOptions) (core.RecordID, error) {
	var id core.RecordID
	err := s.withinMaxBlock(ctx, str, func(wctx context.Context) (err error) {
		id, err = str.AppendCtx(wctx, p, o)
		return err
	})
	return id, err
}

// withinMaxBlock runs an append that waits out backpressure, for up to
// MaxBlock. When MaxBlock runs out first the WouldBlock itself is
// returned, so the client sees backpressure (and a retry delay) rather
// than a deadline it did not set.
func (s *Server) withinMaxBlock(ctx context.Context, str *core.Stream, fn func(context.Context) error) error {
	wctx, cancel := context.WithTimeout(ctx, s.opts.MaxBlock)
	defer cancel()
	err := fn(wctx)
	var wb *core.WouldBlock
	if err != nil && ctx.Err() == nil && wctx.Err() != nil && errors.As(err, &wb) {
		return fmt.Errorf("stream %d: append: %w", str.ID(), wb)
	}
	return err
}

// appendDurable appends es and, with durable, waits until they are
// durable: one Flush to the last id, which shares its sync with every
// concurrent caller's (group commit).
func (s *Server) appendDurable(ctx context.Context, str *core.Stream, es []entry, durable bool) ([]core.RecordID, error) {
	ids, err := s.appendEntries(ctx, str, es, durable)
	if err != nil || !durable {
		return ids, err
	}
	if err := str.Flush(ctx, ids[len(ids)-1]); err != nil {
		return ids, withAppended(ids, err)
	}
	return ids, nil
}

// appendIdempotent is appendDurable for a request with a producer id
// (core.Stream.AppendIdempotent): the records go in whole or not at all,
// and a request the stream already took answers with its first ids
// (duplicate). Without durable it does not wait out backpressure.
func (s *Server) appendIdempotent(ctx context.Context, str *core.Stream, pr core.Producer, es []entry, durable bool) ([]core.RecordID, bool, error) {
	if err := checkEntries(str.ID(), es, str.MaxRecordSize()); err != nil {
		return nil, false, err
	}
	recs := make([]core.BatchRecord, len(es))
	for i, e := range es {
		recs[i] = core.BatchRecord{Payload: e.Payload, Timestamp: e.Timestamp, ExtID: e.ExtID}
	}
	var res core.IdempotentResult
	err := s.withinMaxBlock(ctx, str, func(wctx context.Context) (err error) {
		res, err = str.AppendIdempotent(wctx, pr, recs, durable)
		return err
	})
	if err != nil {
		return nil, false, err
	}
	if durable {
		if err := str.Flush(ctx, res.IDs[len(res.IDs)-1]); err != nil {
			return res.IDs, res.Duplicate, withAppended(res.IDs, err)
		}
	}
	return res.IDs, res.Duplicate, nil
}

// errIdempotentUnsupported refuses a producer id where idempotent appends
// do not exist.
func errIdempotentUnsupported(where string) error {
	return fmt.Errorf("producer_id: idempotent appends are not available %s (docs/tiering.md#idempotent-appends): %w", where, ErrBadRequest)
}

// errSequenceAlone refuses a sequence sent without its producer id.
var errSequenceAlone = fmt.Errorf("sequence without producer_id: %w", ErrBadRequest)

// readLimits bound one Read.
type readLimits struct {
	records int
	bytes   int // payload bytes
	budget  int // payload plus per-record framing: the response size
}

// perRecordFraming estimates what a record costs in a response besides its
// payload (ids, ordinal, timestamp, tags; JSON keys and base64 aside).
const perRecordFraming = 64

// position is where a read or tail starts, in a form both transports can
// write back out (core.Position is opaque).
type position struct {
	kind    posKind
	id      core.RecordID
	ordinal uint64
}

type posKind uint8

const (
	posStart posKind = iota
	posID
	posOrdinal
)

func atID(id core.RecordID) position { return position{kind: posID, id: id} }
func atOrdinal(n uint64) position    { return position{kind: posOrdinal, ordinal: n} }

func (p position) core() core.Position {
	switch p.kind {
	case posID:
		return core.AtID(p.id)
	case posOrdinal:
		return core.AtOrdinal(p.ordinal)
	}
	return core.AtStart()
}

// readResult is the outcome of one Read.
type readResult struct {
	records []core.Record // payloads copied
	// next is where the following read continues: by id when the next
	// record was seen, else by ordinal (or the start itself when nothing
	// was read).
	next position
	// end reports that the reader caught up with the appended records.
	end bool
}

// readRange reads from pos within lim. Segments in colder tiers are
// hydrated within ctx, or, with noWait, in the background while the read
// stops there with WouldBlock(Hydration). An error after some records were
// read ends the read early without failing it: the next read starts at
// the failing record and reports the error. The records' copies are
// counted in h: the first waits for room in the read budget (within ctx),
// the others are taken only while there is room, and the read ends early
// when there is none. The caller releases h once the records are sent.
func readRange(ctx context.Context, str *core.Stream, pos position, lim readLimits, noWait bool, h *hold) (readResult, error) {
	r, err := str.NewReaderCtx(ctx, pos.core())
	if err != nil {
		return readResult{}, err
	}
	defer r.Close()
	next := r.NextCtx
	if noWait {
		next = func(context.Context) (core.Record, error) {
			rec, err := r.Next()
			if core.KindOf(err) == core.Hydration {
				r.HydrateInBackground() // a retry after the delay finds it in tier 0
			}
			return rec, err
		}
	}
	res := readResult{next: pos}
	seen := false // res.next names the record after the last one returned
	payload, budget := 0, 0
	for len(res.records) < lim.records {
		rec, err := next(ctx)
		if err == io.EOF {
			res.end = true
			break
		}
		if err != nil {
			if len(res.records) == 0 {
				return readResult{}, err
			}
			break
		}
		cost := len(rec.Payload) + perRecordFraming
		if len(res.records) > 0 && (payload+len(rec.Payload) > lim.bytes || budget+cost > lim.budget || !h.try(int64(cost))) {
			res.next, seen = atID(rec.ID), true
			break
		}
		if len(res.records) == 0 {
			if err := h.wait(ctx, int64(cost)); err != nil {
				return readResult{}, fmt.Errorf("stream %d: waiting for the read budget: %w", str.ID(), err)
			}
		}
		payload, budget = payload+len(rec.Payload), budget+cost
		rec.Payload = append([]byte(nil), rec.Payload...)
		res.records = append(res.records, rec)
	}
	if len(res.records) == lim.records && !seen {
		// Peek without hydrating: knowing the next id lets the client
		// resume by id; otherwise it resumes by ordinal.
		switch rec, err := r.Next(); {
		case err == nil:
			res.next, seen = atID(rec.ID), true
		case err == io.EOF:
			res.end = true
		}
	}
	if !seen && len(res.records) > 0 {
		res.next = atOrdinal(res.records[len(res.records)-1].Ordinal + 1)
	}
	return res, nil
}
