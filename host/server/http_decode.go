package server

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/url"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/aof2/aof2/api/wire"
	"github.com/aof2/aof2/core"
)

// Decoding of HTTP requests into operation arguments, kept free of
// http.Request so it can be fuzzed directly.

// appendArgs is a decoded POST /v1/streams/{id}/records.
type appendArgs struct {
	entries   []entry
	durable   bool
	watermark *uint64 // coordinator_watermark, when given
	producer  core.Producer
}

// jsonRecord is one record of a JSON append body: payload (base64) or text.
type jsonRecord struct {
	Payload   []byte    `json:"payload"`
	Text      *string   `json:"text"`
	Timestamp flexInt64 `json:"timestamp_unix_nano"`
	ExtID     flexUint  `json:"ext_id"`
}

// appendBody is a JSON append body.
type appendBody struct {
	Records   jsonRecords `json:"records"`
	Durable   *bool       `json:"durable"`
	Watermark *flexUint   `json:"coordinator_watermark"`
	Producer  *flexUint   `json:"producer_id"`
	Sequence  *flexUint   `json:"sequence"`
}

// isJSON reports whether a Content-Type names JSON; anything else (a
// missing type, octet-stream, curl -d's form type) is one raw record.
func isJSON(contentType string) bool {
	mt, _, err := mime.ParseMediaType(contentType)
	if err != nil {
		return false
	}
	return mt == "application/json" || strings.HasSuffix(mt, "+json")
}

// decodeAppend decodes an append request. q may carry durable and
// coordinator_watermark (both body kinds) and ext_id / timestamp_unix_nano
// (raw bodies only).
func decodeAppend(contentType string, q url.Values, body []byte) (appendArgs, error) {
	if err := onlyParams(q, "durable", "ext_id", "timestamp_unix_nano", "coordinator_watermark", "producer_id", "sequence"); err != nil {
		return appendArgs{}, err
	}
	qDurable, err := boolParam(q, "durable")
	if err != nil {
		return appendArgs{}, err
	}
	args := appendArgs{durable: qDurable == nil || *qDurable}
	if q.Has("coordinator_watermark") {
		w, err := uintParam(q, "coordinator_watermark")
		if err != nil {
			return appendArgs{}, err
		}
		args.watermark = &w
	}
	for _, p := range []struct {
		name string
		to   *uint64
	}{{"producer_id", &args.producer.ID}, {"sequence", &args.producer.Seq}} {
		if *p.to, err = uintParam(q, p.name); err != nil {
			return appendArgs{}, err
		}
	}
	if !isJSON(contentType) {
		if args.producer.ID == 0 && args.producer.Seq != 0 {
			return appendArgs{}, errSequenceAlone
		}
		e := entry{Payload: body}
		if e.ExtID, err = uintParam(q, "ext_id"); err != nil {
			return appendArgs{}, err
		}
		ts, err := uintParam(q, "timestamp_unix_nano")
		if err != nil || ts > 1<<63-1 {
			return appendArgs{}, fmt.Errorf("timestamp_unix_nano %q: want a decimal int64: %w", q.Get("timestamp_unix_nano"), ErrBadRequest)
		}
		e.Timestamp = int64(ts)
		args.entries = []entry{e}
		return args, nil
	}
	if q.Has("ext_id") || q.Has("timestamp_unix_nano") {
		return appendArgs{}, fmt.Errorf("ext_id and timestamp_unix_nano go into each JSON record, not the query: %w", ErrBadRequest)
	}
	// encoding/json turns invalid UTF-8 in a string into U+FFFD: a
	// "text" record would be stored as other bytes than were sent.
	if !utf8.Valid(body) {
		return appendArgs{}, fmt.Errorf(`JSON body: not valid UTF-8 (send binary records base64-encoded in "payload"): %w`, ErrBadRequest)
	}
	var b appendBody
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&b); err != nil {
		return appendArgs{}, fmt.Errorf("JSON body: %w: %w", jsonProblem(err), ErrBadRequest)
	}
	if _, err := dec.Token(); err != io.EOF {
		return appendArgs{}, fmt.Errorf("JSON body: data after the object: %w", ErrBadRequest)
	}
	if len(b.Records) == 0 {
		return appendArgs{}, fmt.Errorf(`JSON body: "records" is empty: %w`, ErrBadRequest)
	}
	if b.Watermark != nil {
		if args.watermark != nil && *args.watermark != uint64(*b.Watermark) {
			return appendArgs{}, fmt.Errorf("coordinator_watermark is %d in the query but %d in the body: %w", *args.watermark, uint64(*b.Watermark), ErrBadRequest)
		}
		args.watermark = new(uint64(*b.Watermark))
	}
	for _, f := range []struct {
		name string
		body *flexUint
		to   *uint64
	}{{"producer_id", b.Producer, &args.producer.ID}, {"sequence", b.Sequence, &args.producer.Seq}} {
		if f.body == nil {
			continue
		}
		if q.Has(f.name) && *f.to != uint64(*f.body) {
			return appendArgs{}, fmt.Errorf("%s is %d in the query but %d in the body: %w", f.name, *f.to, uint64(*f.body), ErrBadRequest)
		}
		*f.to = uint64(*f.body)
	}
	if args.producer.ID == 0 && args.producer.Seq != 0 {
		return appendArgs{}, errSequenceAlone
	}
	if b.Durable != nil {
		if qDurable != nil && *qDurable != *b.Durable {
			return appendArgs{}, fmt.Errorf("durable is %t in the query but %t in the body: %w", *qDurable, *b.Durable, ErrBadRequest)
		}
		args.durable = *b.Durable
	}
	args.entries = make([]entry, len(b.Records))
	for i, r := range b.Records {
		if r.Payload != nil && r.Text != nil {
			return appendArgs{}, fmt.Errorf(`JSON body: record %d has both "payload" and "text": %w`, i, ErrBadRequest)
		}
		e := entry{Payload: r.Payload, Timestamp: int64(r.Timestamp), ExtID: uint64(r.ExtID)}
		if r.Text != nil {
			e.Payload = []byte(*r.Text)
		}
		args.entries[i] = e
	}
	return args, nil
}

// jsonProblem keeps encoding/json's description of what is wrong without
// Go type names.
func jsonProblem(err error) error {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		return fmt.Errorf("field %q has the wrong type (%s)", te.Field, te.Value)
	}
	return err
}

// readArgs is a decoded GET /v1/streams/{id}/records.
type readArgs struct {
	start    position
	records  int
	maxBytes uint64
	text     bool
	noWait   bool // no_wait_hydration
}

// HTTP read limits: a smaller default than gRPC's, for terminals.
const defaultHTTPReadRecords = 100

func decodeRead(q url.Values) (readArgs, error) {
	if err := onlyParams(q, "from", "ordinal", "limit", "max_bytes", "text", "no_wait_hydration", "consistency"); err != nil {
		return readArgs{}, err
	}
	a := readArgs{records: defaultHTTPReadRecords}
	switch {
	case q.Has("from") && q.Has("ordinal"):
		return readArgs{}, fmt.Errorf("give from or ordinal, not both: %w", ErrBadRequest)
	case q.Has("from"):
		id, err := wire.ParseRecordID(q.Get("from"))
		if err != nil {
			return readArgs{}, err
		}
		a.start = atID(id)
	case q.Has("ordinal"):
		n, err := uintParam(q, "ordinal")
		if err != nil {
			return readArgs{}, err
		}
		a.start = atOrdinal(n)
	}
	if q.Has("limit") {
		n, err := uintParam(q, "limit")
		if err != nil || n == 0 || n > maxReadRecords {
			return readArgs{}, fmt.Errorf("limit %q: want 1..%d: %w", q.Get("limit"), maxReadRecords, ErrBadRequest)
		}
		a.records = int(n)
	}
	var err error
	if a.maxBytes, err = uintParam(q, "max_bytes"); err != nil {
		return readArgs{}, err
	}
	text, err := boolParam(q, "text")
	if err != nil {
		return readArgs{}, err
	}
	a.text = text != nil && *text
	noWait, err := boolParam(q, "no_wait_hydration")
	if err != nil {
		return readArgs{}, err
	}
	a.noWait = noWait != nil && *noWait
	return a, nil
}

// onlyParams rejects query parameters outside allowed (and repeated ones):
// a misspelt "from" must not silently read from the start.
func onlyParams(q url.Values, allowed ...string) error {
	for k, v := range q {
		ok := false
		for _, a := range allowed {
			ok = ok || k == a
		}
		if !ok {
			return fmt.Errorf("unknown query parameter %q (allowed: %s): %w", k, strings.Join(allowed, ", "), ErrBadRequest)
		}
		if len(v) > 1 {
			return fmt.Errorf("query parameter %q given %d times: %w", k, len(v), ErrBadRequest)
		}
	}
	return nil
}

func boolParam(q url.Values, name string) (*bool, error) {
	if !q.Has(name) {
		return nil, nil
	}
	v, err := strconv.ParseBool(q.Get(name))
	if err != nil {
		return nil, fmt.Errorf("%s %q: want true or false: %w", name, q.Get(name), ErrBadRequest)
	}
	return &v, nil
}

// uintParam returns zero when the parameter is absent.
func uintParam(q url.Values, name string) (uint64, error) {
	if !q.Has(name) {
		return 0, nil
	}
	v, err := strconv.ParseUint(q.Get(name), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%s %q: want a decimal uint64: %w", name, q.Get(name), ErrBadRequest)
	}
	return v, nil
}

// flexUint is a uint64 written in JSON as a number or a decimal string.
type flexUint uint64

func (f *flexUint) UnmarshalJSON(b []byte) error {
	s, err := flexDigits(b)
	if err != nil {
		return err
	}
	v, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return fmt.Errorf("%s is not a uint64", b)
	}
	*f = flexUint(v)
	return nil
}

// flexInt64 is an int64 written in JSON as a number or a decimal string.
type flexInt64 int64

func (f *flexInt64) UnmarshalJSON(b []byte) error {
	s, err := flexDigits(b)
	if err != nil {
		return err
	}
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return fmt.Errorf("%s is not an int64", b)
	}
	*f = flexInt64(v)
	return nil
}

// flexDigits unquotes a JSON string or passes a JSON number through; null
// reads as zero.
func flexDigits(b []byte) (string, error) {
	if string(b) == "null" {
		return "0", nil
	}
	if len(b) > 0 && b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return "", err
		}
		return s, nil
	}
	return string(b), nil
}
