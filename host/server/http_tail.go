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

// tailShutdownGrace is how long an HTTP tail's writes may still take once
// Shutdown has started.
const tailShutdownGrace = time.Second

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
	defer func() { _ = rc.SetWriteDeadline(time.Time{}) }()
	_ = rc.Flush()
	ctx, cancel := s.untilStopped(r.Context())
	defer cancel()
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	h := s.reads.newHold(r.Context())
	defer h.release()
	// Once Shutdown starts, a write the client does not take must not hold
	// the shutdown for the whole stall timeout: writes get tailShutdownGrace
	// at most (room for the final error event), whoever set the deadline
	// last.
	var (
		dmu    sync.Mutex
		cutoff time.Time // guarded by dmu: zero until Shutdown starts
	)
	setDeadline := func() {
		dmu.Lock()
		defer dmu.Unlock()
		d := time.Now().Add(h.b.stall)
		if !cutoff.IsZero() && cutoff.Before(d) {
			d = cutoff
		}
		_ = rc.SetWriteDeadline(d)
	}
	stopCut := context.AfterFunc(s.stopped, func() {
		dmu.Lock()
		defer dmu.Unlock()
		cutoff = time.Now().Add(tailShutdownGrace)
		_ = rc.SetWriteDeadline(cutoff)
	})
	defer stopCut()
	write := func(n int64) bool {
		setDeadline()
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
