package server_test

import (
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/aof2/aof2/host/server"
)

// TestHTTPIdempotentAppend: a request resent with the same producer id
// and sequence (JSON body or query) answers with the first ids and
// "duplicate", and appends nothing; stale and reused sequences, and a
// sequence alone, are refused with their codes.
func TestHTTPIdempotentAppend(t *testing.T) {
	h := start(t, smallConfig(), server.Options{})
	url := h.HTTPURL + "/v1/streams/3/records"
	type resp struct {
		appendResp
		Duplicate bool `json:"duplicate"`
	}
	post := func(ct, query string, body []byte) (int, resp, string) {
		t.Helper()
		r := do(t, "POST", url+query, ct, body)
		var a resp
		if r.code == http.StatusOK {
			r.json(t, &a)
		}
		return r.code, a, string(r.body)
	}
	body := []byte(`{"records":[{"text":"a"},{"text":"b"}],"producer_id":"99","sequence":1}`)
	code, first, msg := post("application/json", "", body)
	require.Equal(t, http.StatusOK, code, msg)
	require.False(t, first.Duplicate)
	require.Len(t, first.IDs, 2)
	code, again, msg := post("application/json", "", body)
	require.Equal(t, http.StatusOK, code, msg)
	require.True(t, again.Duplicate)
	require.Equal(t, first.IDs, again.IDs)

	code, raw, msg := post("", "?producer_id=99&sequence=2", []byte("raw"))
	require.Equal(t, http.StatusOK, code, msg)
	code, rawAgain, msg := post("", "?producer_id=99&sequence=2", []byte("raw"))
	require.Equal(t, http.StatusOK, code, msg)
	require.True(t, rawAgain.Duplicate)
	require.Equal(t, raw.IDs, rawAgain.IDs)

	for _, tc := range []struct {
		name, ct, query string
		body            []byte
		status          int
		code            string
	}{
		{"stale", "", "?producer_id=99&sequence=1", []byte("late"), 409, "sequence_stale"},
		{"reused with other records", "", "?producer_id=99&sequence=2", []byte("other"), 409, "sequence_mismatch"},
		{"sequence alone", "", "?sequence=3", []byte("x"), 400, "bad_request"},
		{"sequence alone in JSON", "application/json", "", []byte(`{"records":[{"text":"x"}],"sequence":3}`), 400, "bad_request"},
		{"query and body disagree", "application/json", "?producer_id=1", []byte(`{"records":[{"text":"x"}],"producer_id":2}`), 400, "bad_request"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := do(t, "POST", url+tc.query, tc.ct, tc.body)
			require.Equal(t, tc.status, r.code, "%s", r.body)
			var e errBody
			r.json(t, &e)
			require.Equal(t, tc.code, e.Code, e.Error)
		})
	}
	s, err := h.Store.Lookup(3)
	require.NoError(t, err)
	require.Equal(t, uint64(3), s.Info().Records, "a, b and raw, once each")
}
