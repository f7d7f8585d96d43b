package server

import (
	"encoding/json"
	"errors"
	"net/url"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/aof2/aof2/core"
)

func TestDecodeAppend(t *testing.T) {
	for _, tc := range []struct {
		name, ct, query, body string
		want                  []entry
		durable               bool
		watermark             *uint64
		bad                   bool
	}{
		{name: "raw", ct: "application/octet-stream", body: "abc", want: []entry{{Payload: []byte("abc")}}, durable: true},
		{name: "no type", body: "abc", want: []entry{{Payload: []byte("abc")}}, durable: true},
		{name: "bad media type is raw", ct: ";;", body: "{}", want: []entry{{Payload: []byte("{}")}}, durable: true},
		{name: "raw with options", query: "durable=0&ext_id=9&timestamp_unix_nano=5", body: "x",
			want: []entry{{Payload: []byte("x"), ExtID: 9, Timestamp: 5}}},
		{name: "raw timestamp over int64", query: "timestamp_unix_nano=9223372036854775808", body: "x", bad: true},
		{name: "json", ct: "application/json", body: `{"records":[{"text":"a","ext_id":3},{"payload":"Yg==","timestamp_unix_nano":"-5"}]}`,
			want: []entry{{Payload: []byte("a"), ExtID: 3}, {Payload: []byte("b"), Timestamp: -5}}, durable: true},
		{name: "json suffix", ct: "application/vnd.aof2+json", body: `{"records":[{"text":"a"}],"durable":false}`,
			want: []entry{{Payload: []byte("a")}}},
		{name: "json null fields", ct: "application/json", body: `{"records":[{"text":"a","ext_id":null}],"durable":null}`,
			want: []entry{{Payload: []byte("a")}}, durable: true},
		{name: "json agreeing durable", ct: "application/json", query: "durable=false", body: `{"records":[{"text":"a"}],"durable":false}`,
			want: []entry{{Payload: []byte("a")}}},
		{name: "json empty", ct: "application/json", body: ``, bad: true},
		{name: "json null", ct: "application/json", body: `null`, bad: true},
		{name: "json array", ct: "application/json", body: `[]`, bad: true},
		{name: "ext id float", ct: "application/json", body: `{"records":[{"text":"a","ext_id":1.5}]}`, bad: true},
		{name: "ext id over 64 bits", ct: "application/json", body: `{"records":[{"text":"a","ext_id":"18446744073709551616"}]}`, bad: true},
		{name: "unknown query", query: "foo=1", body: "x", bad: true},
		{name: "raw watermark", query: "coordinator_watermark=18446744073709551615", body: "x",
			want: []entry{{Payload: []byte("x")}}, durable: true, watermark: new(uint64(1<<64 - 1))},
		{name: "json watermark", ct: "application/json", body: `{"records":[{"text":"a"}],"coordinator_watermark":"7"}`,
			want: []entry{{Payload: []byte("a")}}, durable: true, watermark: new(uint64(7))},
		{name: "json watermark in both", ct: "application/json", query: "coordinator_watermark=7", body: `{"records":[{"text":"a"}],"coordinator_watermark":7}`,
			want: []entry{{Payload: []byte("a")}}, durable: true, watermark: new(uint64(7))},
		{name: "watermarks disagree", ct: "application/json", query: "coordinator_watermark=8", body: `{"records":[{"text":"a"}],"coordinator_watermark":7}`, bad: true},
		{name: "watermark not a number", query: "coordinator_watermark=x", body: "x", bad: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			q, err := url.ParseQuery(tc.query)
			require.NoError(t, err)
			got, err := decodeAppend(tc.ct, q, []byte(tc.body))
			if tc.bad {
				require.ErrorIs(t, err, ErrBadRequest)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tc.want, got.entries)
			require.Equal(t, tc.durable, got.durable)
			require.Equal(t, tc.watermark, got.watermark)
		})
	}
}

func TestDecodeRead(t *testing.T) {
	for _, tc := range []struct {
		query string
		want  readArgs
		err   error
	}{
		{"", readArgs{records: defaultHTTPReadRecords}, nil},
		{"from=2:64&limit=5&text=1&max_bytes=10", readArgs{start: atID(core.MakeRecordID(2, 64)), records: 5, maxBytes: 10, text: true}, nil},
		{"from=8589934656", readArgs{start: atID(core.MakeRecordID(2, 64)), records: defaultHTTPReadRecords}, nil},
		{"ordinal=0", readArgs{start: atOrdinal(0), records: defaultHTTPReadRecords}, nil},
		{"from=2:", readArgs{}, core.ErrInvalidRecordID},
		{"ordinal=-1", readArgs{}, ErrBadRequest},
		{"max_bytes=x", readArgs{}, ErrBadRequest},
		{"text=yes", readArgs{}, ErrBadRequest},
		{"no_wait_hydration=true", readArgs{records: defaultHTTPReadRecords, noWait: true}, nil},
		{"no_wait_hydration=0", readArgs{records: defaultHTTPReadRecords}, nil},
		{"no_wait_hydration=later", readArgs{}, ErrBadRequest},
	} {
		q, err := url.ParseQuery(tc.query)
		require.NoError(t, err)
		got, err := decodeRead(q)
		if tc.err != nil {
			require.ErrorIs(t, err, tc.err, tc.query)
			continue
		}
		require.NoError(t, err, tc.query)
		require.Equal(t, tc.want, got, tc.query)
	}
}

// FuzzDecodeAppend: any body, type and query either decodes into at least
// one record or fails as a bad request; decoded JSON records survive a
// round trip through the documented JSON shape.
func FuzzDecodeAppend(f *testing.F) {
	f.Add("application/json", "", []byte(`{"records":[{"text":"a","ext_id":"3","timestamp_unix_nano":-1}],"durable":true}`))
	f.Add("application/json", "durable=false", []byte(`{"records":[{"payload":"AAEC"}]}`))
	f.Add("application/json", "", []byte(`{"records":[{"payload":"!!"}]}`))
	f.Add("application/json; charset=utf-8", "", []byte(`{"records":[`))
	f.Add("text/plain", "ext_id=7&timestamp_unix_nano=9", []byte("hello"))
	f.Add("", "durable=maybe", []byte{0xff})
	f.Fuzz(func(t *testing.T, ct, query string, body []byte) {
		q, err := url.ParseQuery(query)
		if err != nil {
			return
		}
		got, err := decodeAppend(ct, q, body)
		if err != nil {
			require.ErrorIs(t, err, ErrBadRequest)
			return
		}
		require.NotEmpty(t, got.entries)
		if !isJSON(ct) {
			require.Equal(t, body, got.entries[0].Payload)
			return
		}
		type rec struct {
			Payload   []byte `json:"payload"`
			Timestamp int64  `json:"timestamp_unix_nano"`
			ExtID     uint64 `json:"ext_id"`
		}
		var recs []rec
		for _, e := range got.entries {
			recs = append(recs, rec(e))
		}
		b, err := json.Marshal(map[string]any{"records": recs, "durable": got.durable})
		require.NoError(t, err)
		again, err := decodeAppend("application/json", url.Values{}, b)
		require.NoError(t, err)
		require.Equal(t, len(got.entries), len(again.entries))
		for i := range got.entries {
			require.Equal(t, string(got.entries[i].Payload), string(again.entries[i].Payload))
			require.Equal(t, got.entries[i].Timestamp, again.entries[i].Timestamp)
			require.Equal(t, got.entries[i].ExtID, again.entries[i].ExtID)
		}
		require.Equal(t, got.durable, again.durable)
	})
}

// FuzzDecodeRead: any query either decodes within the limits or fails as a
// bad request or a malformed id.
func FuzzDecodeRead(f *testing.F) {
	for _, s := range []string{"", "from=1:64&limit=10", "ordinal=5&text=1", "from=x", "limit=0", "from=1:64&ordinal=1", "max_bytes=18446744073709551615"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, query string) {
		q, err := url.ParseQuery(query)
		if err != nil {
			return
		}
		got, err := decodeRead(q)
		if err != nil {
			if !errors.Is(err, ErrBadRequest) {
				require.ErrorIs(t, err, core.ErrInvalidRecordID)
			}
			return
		}
		require.True(t, got.records >= 1 && got.records <= maxReadRecords)
	})
}
