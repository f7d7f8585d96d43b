package server

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/aof2/aof2/api/wire"
	"github.com/aof2/aof2/core"
	"github.com/aof2/aof2/host/cluster"
)

// appendJSON answers POST /v1/streams/{id}/records.
type appendJSON struct {
	StreamID  string   `json:"stream_id"`
	IDs       []string `json:"ids"`
	Durable   bool     `json:"durable"`
	Duplicate bool     `json:"duplicate,omitempty"`
}

func (s *Server) httpAppend(w http.ResponseWriter, r *http.Request) {
	id, err := pathStream(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	ct := r.Header.Get("Content-Type")
	limit := int64(s.opts.MaxRecordSize)
	if isJSON(ct) {
		limit = int64(s.opts.maxMessage())*4/3 + framingSlack // base64
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	if err != nil {
		s.writeError(w, r, fmt.Errorf("request body over %d bytes: %w", limit, err))
		return
	}
	args, err := decodeAppend(ct, r.URL.Query(), body)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	c, err := s.cluster()
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if c != nil {
		s.httpClusterAppend(w, r, c, id, args)
		return
	}
	str, err := s.appendTo(id, args.entries)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	var (
		ids []core.RecordID
		dup bool
	)
	if args.producer.ID != 0 {
		ids, dup, err = s.appendIdempotent(r.Context(), str, args.producer, args.entries, args.durable)
	} else {
		ids, err = s.appendDurable(r.Context(), str, args.entries, args.durable)
	}
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if args.watermark != nil {
		str.SetCoordinatorWatermark(*args.watermark)
	}
	out := appendJSON{StreamID: strconv.FormatUint(uint64(id), 10), IDs: make([]string, len(ids)), Durable: args.durable, Duplicate: dup}
	for i, id := range ids {
		out.IDs[i] = wire.FormatRecordID(id)
	}
	writeJSON(w, http.StatusOK, out)
}

// recordJSON is one record of a read.
type recordJSON struct {
	ID        string `json:"id"`
	Ordinal   uint64 `json:"ordinal"`
	Timestamp string `json:"timestamp_unix_nano"`
	Time      string `json:"time"`
	ExtID     string `json:"ext_id"`
	Payload   []byte `json:"payload"`
	// Text is the payload as a string, with ?text=1 and valid UTF-8 only.
	Text *string `json:"text,omitempty"`
}

// nextJSON says where to continue: the query parameter to pass (from or
// ordinal); empty means from the start.
type nextJSON struct {
	From    string  `json:"from,omitempty"`
	Ordinal *uint64 `json:"ordinal,omitempty"`
}

// readJSON answers GET /v1/streams/{id}/records (written by writeReadJSON,
// field by field in this order).
type readJSON struct {
	Records []recordJSON `json:"records"`
	Next    nextJSON     `json:"next"`
	End     bool         `json:"end"`
}

func (s *Server) httpRead(w http.ResponseWriter, r *http.Request) {
	args, err := decodeRead(r.URL.Query())
	if err == nil {
		err = s.readBarrier(r.Context(), r.URL.Query().Get("consistency"))
	}
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	str, err := s.lookupPath(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	h := s.reads.newHold(r.Context())
	defer h.release()
	res, err := readRange(r.Context(), str, args.start, s.readLimits(args.records, args.maxBytes), args.noWait, h)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	wd := s.newWriteDeadline(http.NewResponseController(w), h.b.stall)
	defer wd.done()
	writeReadJSON(w, res, args.text, h, wd.beforeWrite)
}

// httpWriteChunk is how much encoded JSON a read collects before writing it
// to the connection.
const httpWriteChunk = 64 << 10

// writeReadJSON answers a read with the readJSON document, encoded and
// written record by record rather than whole: the server never holds a
// response's encoding, only a chunk of it, and each record's bytes go
// back to the read budget (h) once written to the connection. A slow
// client slows the writes, not memory; one that takes nothing for the
// read stall timeout (or, once Shutdown started, for tailShutdownGrace)
// fails the write (the connection is closed), which gives its bytes back.
// beforeWrite sets the deadline of each write (writeDeadline).
func writeReadJSON(w http.ResponseWriter, res readResult, text bool, h *hold, beforeWrite func()) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	written := int64(0) // budget bytes of the records in buf
	flush := func() bool {
		beforeWrite()
		if _, err := w.Write(buf.Bytes()); err != nil {
			if errors.Is(err, os.ErrDeadlineExceeded) {
				h.b.stalled.Inc()
			}
			return false // the client left; the hold is released by the caller
		}
		buf.Reset()
		h.free(written)
		written = 0
		return true
	}
	buf.WriteString(`{"records":[`)
	for i := range res.records {
		if i > 0 {
			buf.WriteByte(',')
		}
		_ = enc.Encode(recordToJSON(res.records[i], text)) // plain fields: cannot fail
		buf.Truncate(buf.Len() - 1)                        // Encode's newline
		written += int64(len(res.records[i].Payload) + perRecordFraming)
		res.records[i].Payload = nil // the copy is garbage once encoded
		if buf.Len() >= httpWriteChunk && !flush() {
			return
		}
	}
	var next nextJSON
	switch res.next.kind {
	case posID:
		next.From = wire.FormatRecordID(res.next.id)
	case posOrdinal:
		next.Ordinal = new(res.next.ordinal)
	}
	buf.WriteString(`],"next":`)
	_ = enc.Encode(next)
	buf.Truncate(buf.Len() - 1)
	buf.WriteString(`,"end":` + strconv.FormatBool(res.end) + "}\n")
	flush()
}

func recordToJSON(rec core.Record, text bool) recordJSON {
	out := recordJSON{
		ID: wire.FormatRecordID(rec.ID), Ordinal: rec.Ordinal,
		Timestamp: strconv.FormatInt(rec.Timestamp, 10),
		Time:      time.Unix(0, rec.Timestamp).UTC().Format(time.RFC3339Nano),
		ExtID:     strconv.FormatUint(rec.ExtID, 10), Payload: rec.Payload,
	}
	if text && utf8.Valid(rec.Payload) {
		out.Text = new(string(rec.Payload))
	}
	return out
}

// httpClusterAppend answers an append on a cluster node: through Raft, and
// always durable (on a majority) once answered.
func (s *Server) httpClusterAppend(w http.ResponseWriter, r *http.Request, c *cluster.Node, id core.StreamID, args appendArgs) {
	if args.watermark != nil {
		s.writeError(w, r, errWatermarkInCluster)
		return
	}
	if args.producer.ID != 0 {
		s.writeError(w, r, errIdempotentUnsupported("in cluster mode"))
		return
	}
	ids, err := s.clusterAppend(r.Context(), c, id, args.entries)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	out := appendJSON{StreamID: strconv.FormatUint(uint64(id), 10), IDs: make([]string, len(ids)), Durable: true}
	for i, id := range ids {
		out.IDs[i] = wire.FormatRecordID(id)
	}
	writeJSON(w, http.StatusOK, out)
}
