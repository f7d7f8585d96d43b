package server_test

import (
	"encoding/base64"
	"fmt"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/aof2/aof2/api/wire"
	"github.com/aof2/aof2/core"
	"github.com/aof2/aof2/host/server"
	"github.com/aof2/aof2/host/server/servertest"
)

type appendResp struct {
	StreamID string   `json:"stream_id"`
	IDs      []string `json:"ids"`
	Durable  bool     `json:"durable"`
}

type recordOut struct {
	ID        string  `json:"id"`
	Ordinal   uint64  `json:"ordinal"`
	Timestamp string  `json:"timestamp_unix_nano"`
	ExtID     string  `json:"ext_id"`
	Payload   []byte  `json:"payload"`
	Text      *string `json:"text"`
}

type readResp struct {
	Records []recordOut `json:"records"`
	Next    struct {
		From    string  `json:"from"`
		Ordinal *uint64 `json:"ordinal"`
	} `json:"next"`
	End bool `json:"end"`
}

type infoResp struct {
	StreamID       string `json:"stream_id"`
	Records        uint64 `json:"records"`
	DurableRecords uint64 `json:"durable_records"`
	Segments       int    `json:"segments"`
	Sealed         int    `json:"sealed"`
	MaxRecordSize  int    `json:"max_record_size"`
	DurableMark    string `json:"durable_mark"`
}

var idForm = regexp.MustCompile(`^\d+:\d+$`)

func TestHTTPAppendForms(t *testing.T) {
	h := start(t, smallConfig(), server.Options{})
	url := h.HTTPURL + "/v1/streams/5/records"

	r := do(t, "POST", url, "application/octet-stream", []byte("raw bytes"))
	require.Equal(t, http.StatusOK, r.code, "%s", r.body)
	var a appendResp
	r.json(t, &a)
	require.Equal(t, "5", a.StreamID)
	require.Len(t, a.IDs, 1)
	require.Regexp(t, idForm, a.IDs[0])
	require.True(t, a.Durable)

	// curl -d sends a form type: still one raw record.
	r = do(t, "POST", url+"?ext_id=42&timestamp_unix_nano=1000", "application/x-www-form-urlencoded", []byte("form"))
	require.Equal(t, http.StatusOK, r.code, "%s", r.body)

	body := mustJSON(t, map[string]any{"records": []map[string]any{
		{"text": "héllo"},
		{"payload": base64.StdEncoding.EncodeToString([]byte{0, 1, 2, 0xff}), "ext_id": "18446744073709551615", "timestamp_unix_nano": 7},
	}})
	r = do(t, "POST", url, "application/json; charset=utf-8", body)
	require.Equal(t, http.StatusOK, r.code, "%s", r.body)
	r.json(t, &a)
	require.Len(t, a.IDs, 2)

	r = do(t, "POST", url+"?durable=false", "", []byte("not waited for"))
	require.Equal(t, http.StatusOK, r.code, "%s", r.body)
	r.json(t, &a)
	require.False(t, a.Durable)
	r = do(t, "POST", url, "application/json", []byte(`{"records":[{"text":"x"}],"durable":false}`))
	require.Equal(t, http.StatusOK, r.code, "%s", r.body)
	r.json(t, &a)
	require.False(t, a.Durable)

	r = do(t, "GET", url+"?text=1", "", nil)
	require.Equal(t, http.StatusOK, r.code, "%s", r.body)
	var rr readResp
	r.json(t, &rr)
	require.Len(t, rr.Records, 6)
	require.True(t, rr.End)
	require.Equal(t, "raw bytes", string(rr.Records[0].Payload))
	require.Equal(t, "form", *rr.Records[1].Text)
	require.Equal(t, "42", rr.Records[1].ExtID)
	require.Equal(t, "1000", rr.Records[1].Timestamp)
	require.Equal(t, "héllo", *rr.Records[2].Text)
	require.Equal(t, []byte{0, 1, 2, 0xff}, rr.Records[3].Payload)
	require.Nil(t, rr.Records[3].Text, "not UTF-8: no text")
	require.Equal(t, "18446744073709551615", rr.Records[3].ExtID)
	require.Equal(t, "7", rr.Records[3].Timestamp)
	for i, rec := range rr.Records {
		require.Equal(t, uint64(i), rec.Ordinal)
	}
	require.NotNil(t, rr.Next.Ordinal)
	require.Equal(t, uint64(6), *rr.Next.Ordinal)
}

// TestHTTPReadAcrossRollovers pages through a stream of several segments
// from the start, from ids (both spellings) and from ordinals.
func TestHTTPReadAcrossRollovers(t *testing.T) {
	cfg := smallConfig()
	cfg.SegmentTargetBytes = 64 << 10
	h := start(t, cfg, server.Options{})
	url := h.HTTPURL + "/v1/streams/9/records"
	const n, size = 40, 10 << 10 // 400 KB over 64 KiB segments
	var ids []string
	for i := 0; i < n; i += 5 {
		var recs []map[string]any
		for j := i; j < i+5; j++ {
			recs = append(recs, map[string]any{"payload": payload(j, size)})
		}
		r := do(t, "POST", url, "application/json", mustJSON(t, map[string]any{"records": recs}))
		require.Equal(t, http.StatusOK, r.code, "%s", r.body)
		var a appendResp
		r.json(t, &a)
		ids = append(ids, a.IDs...)
	}
	first, err := wire.ParseRecordID(ids[0])
	require.NoError(t, err)
	last, err := wire.ParseRecordID(ids[n-1])
	require.NoError(t, err)
	require.GreaterOrEqual(t, last.Segment()-first.Segment(), core.SegmentID(3), "several rollovers")

	readAll := func(query string) []recordOut {
		var out []recordOut
		for {
			r := do(t, "GET", url+query, "", nil)
			require.Equal(t, http.StatusOK, r.code, "%s", r.body)
			var rr readResp
			r.json(t, &rr)
			out = append(out, rr.Records...)
			if rr.End {
				return out
			}
			require.NotEmpty(t, rr.Records)
			if rr.Next.From != "" {
				query = "?limit=7&from=" + rr.Next.From
			} else {
				query = "?limit=7&ordinal=" + strconv.FormatUint(*rr.Next.Ordinal, 10)
			}
		}
	}
	check := func(got []recordOut, from int) {
		t.Helper()
		require.Len(t, got, n-from)
		for k, rec := range got {
			i := from + k
			require.Equal(t, uint64(i), rec.Ordinal)
			require.Equal(t, ids[i], rec.ID)
			require.Equal(t, payload(i, size), rec.Payload)
		}
	}
	check(readAll("?limit=7"), 0)
	check(readAll("?limit=1000&max_bytes=25000"), 0) // two or three records a page
	check(readAll("?from="+ids[13]), 13)
	id13, _ := wire.ParseRecordID(ids[13])
	check(readAll("?from="+strconv.FormatUint(uint64(id13), 10)), 13)
	check(readAll("?ordinal=21"), 21)
	check(readAll("?ordinal=40"), 40)
}

func TestHTTPStreamRoutes(t *testing.T) {
	h := start(t, smallConfig(), server.Options{})
	for _, id := range []string{"3", "1", "18446744073709551615"} {
		r := do(t, "POST", h.HTTPURL+"/v1/streams/"+id+"/records", "", []byte("x"))
		require.Equal(t, http.StatusOK, r.code, "%s", r.body)
	}
	r := do(t, "GET", h.HTTPURL+"/v1/streams", "", nil)
	require.Equal(t, http.StatusOK, r.code)
	var list struct {
		Streams []string `json:"streams"`
	}
	r.json(t, &list)
	require.Equal(t, []string{"1", "3", "18446744073709551615"}, list.Streams)

	r = do(t, "POST", h.HTTPURL+"/v1/streams/3/records?durable=false", "", []byte("y"))
	require.Equal(t, http.StatusOK, r.code)
	r = do(t, "POST", h.HTTPURL+"/v1/streams/3/flush", "", nil)
	require.Equal(t, http.StatusOK, r.code, "%s", r.body)
	var in infoResp
	r.json(t, &in)
	require.Equal(t, uint64(2), in.Records)
	require.Equal(t, uint64(2), in.DurableRecords)
	require.Regexp(t, idForm, in.DurableMark)

	r = do(t, "POST", h.HTTPURL+"/v1/streams/3/seal", "", nil)
	require.Equal(t, http.StatusOK, r.code, "%s", r.body)
	r.json(t, &in)
	require.Equal(t, 1, in.Sealed)

	r = do(t, "GET", h.HTTPURL+"/v1/streams/3", "", nil)
	require.Equal(t, http.StatusOK, r.code)
	r.json(t, &in)
	require.Equal(t, "3", in.StreamID)
	require.Equal(t, 1, in.Segments)
	require.Positive(t, in.MaxRecordSize)

	r = do(t, "GET", h.HTTPURL+"/healthz", "", nil)
	require.Equal(t, http.StatusOK, r.code)
	r = do(t, "GET", h.HTTPURL+"/metrics", "", nil)
	require.Equal(t, http.StatusNotFound, r.code, "no Gatherer, no route")
}

func TestHTTPMetrics(t *testing.T) {
	for _, tc := range []struct {
		name      string
		auth      bool
		wantNoTok int
	}{{"open", false, http.StatusOK}, {"behind the token", true, http.StatusUnauthorized}} {
		t.Run(tc.name, func(t *testing.T) {
			reg := prometheus.NewRegistry()
			cfg := smallConfig()
			cfg.Registerer = reg
			h := start(t, cfg, server.Options{Token: "s3cret", Gatherer: reg, MetricsAuth: tc.auth})
			r := do(t, "POST", h.HTTPURL+"/v1/streams/1/records", "", []byte("x"), "Authorization", "Bearer s3cret")
			require.Equal(t, http.StatusOK, r.code)
			r = do(t, "GET", h.HTTPURL+"/metrics", "", nil)
			require.Equal(t, tc.wantNoTok, r.code)
			r = do(t, "GET", h.HTTPURL+"/metrics", "", nil, "Authorization", "Bearer s3cret")
			require.Equal(t, http.StatusOK, r.code)
			require.Contains(t, string(r.body), `aof_append_records_total{stream_id="1"} 1`)
		})
	}
}

func TestHTTPAuth(t *testing.T) {
	h := start(t, smallConfig(), server.Options{Token: "s3cret"})
	url := h.HTTPURL + "/v1/streams/1/records"
	for _, tc := range []struct {
		name   string
		header []string
		want   int
	}{
		{"missing", nil, http.StatusUnauthorized},
		{"wrong", []string{"Authorization", "Bearer nope"}, http.StatusUnauthorized},
		{"prefix of the token", []string{"Authorization", "Bearer s3cre"}, http.StatusUnauthorized},
		{"not bearer", []string{"Authorization", "Basic s3cret"}, http.StatusUnauthorized},
		{"right", []string{"Authorization", "Bearer s3cret"}, http.StatusOK},
		{"scheme case-insensitive", []string{"Authorization", "bearer s3cret"}, http.StatusOK},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := do(t, "POST", url, "", []byte("x"), tc.header...)
			require.Equal(t, tc.want, r.code, "%s", r.body)
			if tc.want == http.StatusUnauthorized {
				var e errBody
				r.json(t, &e)
				require.Equal(t, "unauthenticated", e.Code)
				require.Contains(t, r.header.Get("WWW-Authenticate"), "Bearer")
			}
		})
	}
	for _, path := range []string{"/healthz", "/readyz"} {
		require.Equal(t, http.StatusOK, do(t, "GET", h.HTTPURL+path, "", nil).code, path)
	}
}

// TestHTTPBadRequests sends every kind of bad request; each gets its
// status and code, and the server keeps serving.
func TestHTTPBadRequests(t *testing.T) {
	h := start(t, smallConfig(), server.Options{})
	base := h.HTTPURL + "/v1/streams/"
	r := do(t, "POST", base+"1/records", "", payload(0, 100))
	require.Equal(t, http.StatusOK, r.code)
	var a appendResp
	r.json(t, &a)
	first, err := wire.ParseRecordID(a.IDs[0])
	require.NoError(t, err)
	s, err := h.Store.Lookup(1)
	require.NoError(t, err)
	tooBig := make([]byte, s.MaxRecordSize()+1)

	for _, tc := range []struct {
		name, method, path, ct string
		body                   []byte
		status                 int
		code                   string
	}{
		{"oversized raw record", "POST", "1/records", "", tooBig, 413, "record_too_large"},
		{"oversized JSON record", "POST", "1/records", "application/json",
			mustJSON(t, map[string]any{"records": []map[string]any{{"payload": tooBig}}}), 413, "record_too_large"},
		{"empty raw record", "POST", "1/records", "", nil, 400, "empty_record"},
		{"empty record for a new stream", "POST", "5/records", "", nil, 400, "empty_record"},
		{"oversized record for a new stream", "POST", "5/records", "", tooBig, 413, "record_too_large"},
		{"bad JSON for a new stream", "POST", "5/records", "application/json", []byte(`{`), 400, "bad_request"},
		{"empty JSON record", "POST", "1/records", "application/json", []byte(`{"records":[{"text":"a"},{"text":""}]}`), 400, "empty_record"},
		{"no records", "POST", "1/records", "application/json", []byte(`{"records":[]}`), 400, "bad_request"},
		{"truncated JSON", "POST", "1/records", "application/json", []byte(`{"records":[`), 400, "bad_request"},
		{"unknown field", "POST", "1/records", "application/json", []byte(`{"records":[{"paylod":"eA=="}]}`), 400, "bad_request"},
		{"payload and text", "POST", "1/records", "application/json", []byte(`{"records":[{"payload":"eA==","text":"x"}]}`), 400, "bad_request"},
		{"bad base64", "POST", "1/records", "application/json", []byte(`{"records":[{"payload":"!!"}]}`), 400, "bad_request"},
		{"wrong type", "POST", "1/records", "application/json", []byte(`{"records":{"text":"x"}}`), 400, "bad_request"},
		{"bad ext id", "POST", "1/records", "application/json", []byte(`{"records":[{"text":"x","ext_id":"-1"}]}`), 400, "bad_request"},
		{"data after the object", "POST", "1/records", "application/json", []byte(`{"records":[{"text":"x"}]} {}`), 400, "bad_request"},
		{"durable disagrees", "POST", "1/records?durable=true", "application/json", []byte(`{"records":[{"text":"x"}],"durable":false}`), 400, "bad_request"},
		{"bad durable", "POST", "1/records?durable=maybe", "", []byte("x"), 400, "bad_request"},
		{"query ext id with JSON", "POST", "1/records?ext_id=1", "application/json", []byte(`{"records":[{"text":"x"}]}`), 400, "bad_request"},
		{"bad stream id", "POST", "abc/records", "", []byte("x"), 400, "bad_request"},
		{"negative stream id", "GET", "-1", "", nil, 400, "bad_request"},
		{"unknown stream read", "GET", "2/records", "", nil, 404, "unknown_stream"},
		{"unknown stream info", "GET", "2", "", nil, 404, "unknown_stream"},
		{"unknown stream flush", "POST", "2/flush", "", nil, 404, "unknown_stream"},
		{"unknown stream seal", "POST", "2/seal", "", nil, 404, "unknown_stream"},
		{"malformed id", "GET", "1/records?from=abc", "", nil, 400, "invalid_record_id"},
		{"malformed id, three parts", "GET", "1/records?from=1:2:3", "", nil, 400, "invalid_record_id"},
		{"malformed id, sign", "GET", "1/records?from=%2B1:64", "", nil, 400, "invalid_record_id"},
		{"malformed id, segment over 32 bits", "GET", "1/records?from=4294967296:64", "", nil, 400, "invalid_record_id"},
		{"malformed id, over 64 bits", "GET", "1/records?from=18446744073709551616", "", nil, 400, "invalid_record_id"},
		{"id mid-record", "GET", fmt.Sprintf("1/records?from=%d:%d", first.Segment(), first.Offset()+8), "", nil, 400, "invalid_record_id"},
		{"id misaligned", "GET", fmt.Sprintf("1/records?from=%d:%d", first.Segment(), first.Offset()+3), "", nil, 400, "invalid_record_id"},
		{"id in the header", "GET", fmt.Sprintf("1/records?from=%d:8", first.Segment()), "", nil, 400, "invalid_record_id"},
		{"id past the end", "GET", fmt.Sprintf("1/records?from=%d:%d", first.Segment(), 1<<19), "", nil, 416, "record_not_found"},
		{"id in a missing segment", "GET", "1/records?from=77:64", "", nil, 416, "record_not_found"},
		{"ordinal past the end", "GET", "1/records?ordinal=5", "", nil, 416, "record_not_found"},
		{"from and ordinal", "GET", "1/records?from=1:64&ordinal=0", "", nil, 400, "bad_request"},
		{"limit zero", "GET", "1/records?limit=0", "", nil, 400, "bad_request"},
		{"limit too big", "GET", "1/records?limit=100001", "", nil, 400, "bad_request"},
		{"limit not a number", "GET", "1/records?limit=ten", "", nil, 400, "bad_request"},
		{"unknown parameter", "GET", "1/records?form=1:64", "", nil, 400, "bad_request"},
		{"repeated parameter", "GET", "1/records?limit=1&limit=2", "", nil, 400, "bad_request"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := do(t, tc.method, base+tc.path, tc.ct, tc.body)
			require.Equal(t, tc.status, r.code, "%s", r.body)
			var e errBody
			r.json(t, &e)
			require.Equal(t, tc.code, e.Code, e.Error)
			require.NotContains(t, e.Error, h.Store.Dir(), "no server paths")
			require.Equal(t, http.StatusOK, do(t, "GET", h.HTTPURL+"/healthz", "", nil).code)
		})
	}
	r = do(t, "DELETE", base+"1/records", "", nil)
	require.Equal(t, http.StatusMethodNotAllowed, r.code)

	// Refused appends did not create their stream.
	require.Equal(t, http.StatusNotFound, do(t, "GET", base+"5", "", nil).code)

	// Still serving, and nothing was appended by the bad requests.
	r = do(t, "GET", base+"1/records", "", nil)
	require.Equal(t, http.StatusOK, r.code)
	var rr readResp
	r.json(t, &rr)
	require.Len(t, rr.Records, 1)
}

// TestHTTPWouldBlock provokes a real WouldBlock(Flush): no background
// syncs, one unflushed byte allowed, and appends that do not wait.
func TestHTTPWouldBlock(t *testing.T) {
	cfg := smallConfig()
	cfg.Sync, cfg.MaxUnflushedBytes = core.SyncNone, 1
	h := start(t, cfg, server.Options{})
	url := h.HTTPURL + "/v1/streams/1/records"
	require.Equal(t, http.StatusOK, do(t, "POST", url+"?durable=false", "", []byte("a")).code)
	r := do(t, "POST", url+"?durable=false", "", []byte("b"))
	require.Equal(t, http.StatusServiceUnavailable, r.code, "%s", r.body)
	require.Equal(t, "1", r.header.Get("Retry-After"))
	var e errBody
	r.json(t, &e)
	require.Equal(t, "would_block", e.Code)
	require.Equal(t, "flush", e.Kind)
	require.Equal(t, int64(10), e.RetryAfterMS)
	require.Zero(t, e.Appended)

	// A durable append waits the backpressure out instead.
	r = do(t, "POST", url, "", []byte("c"))
	require.Equal(t, http.StatusOK, r.code, "%s", r.body)
	r = do(t, "GET", url+"?text=true", "", nil)
	var rr readResp
	r.json(t, &rr)
	var got []string
	for _, rec := range rr.Records {
		got = append(got, *rec.Text)
	}
	require.Equal(t, []string{"a", "c"}, got)
}

func TestReadyz(t *testing.T) {
	node := servertest.NewNode(nil)
	h := servertest.StartNode(t, node, server.Options{})
	r := do(t, "GET", h.HTTPURL+"/readyz", "", nil)
	require.Equal(t, http.StatusServiceUnavailable, r.code)
	require.Equal(t, http.StatusOK, do(t, "GET", h.HTTPURL+"/healthz", "", nil).code, "up, though not ready")
	r = do(t, "POST", h.HTTPURL+"/v1/streams/1/records", "", []byte("x"))
	require.Equal(t, http.StatusServiceUnavailable, r.code)
	require.Equal(t, "1", r.header.Get("Retry-After"))
	var e errBody
	r.json(t, &e)
	require.Equal(t, "not_ready", e.Code)

	st, err := core.Open(t.TempDir(), smallConfig())
	require.NoError(t, err)
	t.Cleanup(func() { h.Shutdown(t); _ = st.Close() })
	node.SetStore(st)
	require.Equal(t, http.StatusOK, do(t, "GET", h.HTTPURL+"/readyz", "", nil).code)
	require.Equal(t, http.StatusOK, do(t, "POST", h.HTTPURL+"/v1/streams/1/records", "", []byte("x")).code)
	require.True(t, strings.HasPrefix(h.HTTPURL, "http://"))
}
