package server

import (
	"bytes"
	"encoding/json"
	"fmt"
	"reflect"
)

// jsonRecords is the "records" array of a JSON append body, decoded one
// record at a time: a body with more than maxAnswerRecords records (the
// cap gRPC appends have) is refused once the cap is passed, instead of
// costing memory for every record first.
type jsonRecords []jsonRecord

func (rs *jsonRecords) UnmarshalJSON(b []byte) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	tok, err := dec.Token()
	if err != nil {
		return err
	}
	if tok == nil { // null
		*rs = nil
		return nil
	}
	if tok != json.Delim('[') {
		return &json.UnmarshalTypeError{Value: jsonKind(tok), Type: reflect.TypeFor[jsonRecords]()}
	}
	// Into the elements already there, as encoding/json decodes a
	// repeated "records" key.
	out := (*rs)[:0]
	for dec.More() {
		if len(out) == maxAnswerRecords {
			return fmt.Errorf("more than %d records in one request: split it", maxAnswerRecords)
		}
		if len(out) < cap(out) {
			out = out[:len(out)+1]
		} else {
			out = append(out, jsonRecord{})
		}
		if err := dec.Decode(&out[len(out)-1]); err != nil {
			return err
		}
	}
	*rs = out
	return nil
}

// jsonKind names the kind of a JSON value from its first token, as
// encoding/json's type errors do.
func jsonKind(tok json.Token) string {
	switch tok.(type) {
	case json.Delim:
		return "object"
	case string:
		return "string"
	case bool:
		return "bool"
	}
	return "number"
}
