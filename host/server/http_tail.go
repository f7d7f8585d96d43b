package server

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"sync"
	"time"

	"github.com/aof2/aof2/api/wire"
	"github.com/aof2/aof2/core"
)

// tailKeepalive is how long an idle HTTP tail waits before it writes a
// comment line, so that proxies and clients see the connection alive.
const tailKeepalive = 15 * time.Second

// tailShutdownGrace is how long a tail's or a read's writes may still take
// once Shutdown has started.
const tailShutdownGrace = time.Second

// writeDeadline sets the write deadlines of an HTTP tail or read: the read
// stall timeout from each write and, once Shutdown has started,
// tailShutdownGrace from then at most, whoever sets the deadline last. A
// write the client does not take must not hold the shutdown for the whole
// stall timeout.
type writeDeadline struct {
	rc     *http.ResponseController
	stall  time.Duration
	unhook func() bool

	mu     sync.Mutex
	cutoff time.Time // guarded by mu: zero until Shutdown starts
	ended  bool      // guarded by mu: done was called
}

func (s *Server) newWriteDeadline(rc *http.ResponseController, stall time.Duration) *writeDeadline {
	d := &writeDeadline{rc: rc, stall: stall}
	d.unhook = context.AfterFunc(s.stopped, func() {
		d.mu.Lock()
		defer d.mu.Unlock()
		if d.ended {
			return
		}
		d.cutoff = time.Now().Add(tailShutdownGrace)
		_ = d.rc.SetWriteDeadline(d.cutoff) // not supported by every writer (tests' recorders)
	})
	return d
}

// beforeWrite sets the deadline of the next write.
func (d *writeDeadline) beforeWrite() {
	d.mu.Lock()
	defer d.mu.Unlock()
	t := time.Now().Add(d.stall)
	if !d.cutoff.IsZero() && d.cutoff.Before(t) {
		t = d.cutoff
	}
	_ = d.rc.SetWriteDeadline(t)
}

// done clears the deadline: the connection may serve another request.
func (d *writeDeadline) done() {
	d.unhook()
	d.mu.Lock()
	defer d.mu.Unlock()
	d.ended = true
	_ = d.rc.SetWriteDeadline(time.Time{})
}

// httpTail streams a stream's records as Server-Sent Events as they
// become durable: `GET /v1/streams/{id}/tail` from the start, `?from=<id>`
// or `?ordinal=<n>` (that record included), or, reconnecting, from after
// the record the Last-Event-ID header names (every event's id is its
// record id, which EventSource clients send back by themselves). Each
// record is one `record` event whose data is the read's JSON record;
// an error after the stream began is one `error` event, then the end.
// As for reads, each record's bytes count in the read budget until
// written, and a client that takes nothing for the read stall timeout is
// disconnected.
func (s *Server) httpTail(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	if err := onlyParams(q, "from", "ordinal", "text"); err != nil {
		s.writeError(w, r, err)
		return
	}
	args, err := decodeRead(q)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	var after *core.RecordID
	if last := r.Header.Get("Last-Event-ID"); last != "" {
		id, err := wire.ParseRecordID(last)
		if err != nil {
			s.writeError(w, r, fmt.Errorf("Last-Event-ID %q: %w", last, err))
			return
		}
		args.start, after = atID(id), &id
	}
	str, err := s.lookupPath(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	t, err := str.Tail(args.start.core())
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	defer t.Close()
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Accel-Buffering", "no") // nginx: do not buffer the stream
	w.WriteHeader(http.StatusOK)
	rc := http.NewResponseController(w)
	_ = rc.Flush()
	ctx, cancel := s.untilStopped(r.Context())
	defer cancel()
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	h := s.reads.newHold(r.Context())
	defer h.release()
	wd := s.newWriteDeadline(rc, h.b.stall)
	defer wd.done()
	write := func(n int64) bool {
		wd.beforeWrite()
		_, err := w.Write(buf.Bytes())
		if err == nil {
			err = rc.Flush()
		}
		buf.Reset()
		h.free(n)
		if errors.Is(err, os.ErrDeadlineExceeded) {
			h.b.stalled.Inc()
		}
		return err == nil
	}
	for {
		wctx, wcancel := context.WithTimeout(ctx, tailKeepalive)
		rec, err := t.Next(wctx)
		wcancel()
		switch {
		case err != nil && ctx.Err() == nil && errors.Is(err, context.DeadlineExceeded):
			buf.WriteString(": keepalive\n\n")
			if !write(0) {
				return
			}
			continue
		case err != nil:
			if ctx.Err() != nil && !errors.Is(context.Cause(ctx), errShuttingDown) {
				return // the client left
			}
			if errors.Is(context.Cause(ctx), errShuttingDown) {
				err = errShuttingDown
			}
			_, _, body := httpError(err)
			buf.WriteString("event: error\ndata: ")
			_ = enc.Encode(body)
			buf.WriteString("\n")
			write(0)
			return
		}
		if after != nil {
			skip := rec.ID == *after
			after = nil
			if skip {
				continue // the record the client already has
			}
		}
		size := int64(len(rec.Payload) + perRecordFraming)
		if err := h.wait(ctx, size); err != nil {
			return
		}
		fmt.Fprintf(&buf, "id: %s\nevent: record\ndata: ", wire.FormatRecordID(rec.ID))
		_ = enc.Encode(recordToJSON(rec, args.text)) // ends the data line
		buf.WriteString("\n")
		if !write(size) {
			return
		}
	}
}
