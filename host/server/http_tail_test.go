package server_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/aof2/aof2/core"
	"github.com/aof2/aof2/host/server"
	"github.com/aof2/aof2/internal/testwait"
)

// sseEvent is one Server-Sent Event.
type sseEvent struct{ id, event, data string }

// readEvents reads the events of an SSE body into a channel (closed at
// the body's end), comments skipped.
func readEvents(body *bufio.Reader) <-chan sseEvent {
	ch := make(chan sseEvent, 64)
	go func() {
		defer close(ch)
		var ev sseEvent
		for {
			line, err := body.ReadString('\n')
			if err != nil {
				return
			}
			line = strings.TrimSuffix(line, "\n")
			switch {
			case line == "":
				if ev.event != "" {
					ch <- ev
				}
				ev = sseEvent{}
			case strings.HasPrefix(line, ":"):
			case strings.HasPrefix(line, "id: "):
				ev.id = line[4:]
			case strings.HasPrefix(line, "event: "):
				ev.event = line[7:]
			case strings.HasPrefix(line, "data: "):
				ev.data = line[6:]
			}
		}
	}()
	return ch
}

// TestHTTPTail: GET /v1/streams/{id}/tail streams records as events as
// they are appended, each with its record id; a client reconnecting with
// Last-Event-ID gets the records after it and none twice; ?ordinal=
// starts at a record; an unknown stream is a JSON error before any event;
// a server shutdown ends the stream with an error event.
func TestHTTPTail(t *testing.T) {
	h := start(t, smallConfig(), server.Options{})
	s, err := h.Store.Stream(1)
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var ids []string
	appendN := func(from, to int) {
		for i := from; i < to; i++ {
			id, err := s.AppendDurable(ctx, fmt.Appendf(nil, "record %d", i), core.AppendOptions{})
			require.NoError(t, err)
			ids = append(ids, id.String())
		}
	}
	open := func(query, lastID string) (<-chan sseEvent, func()) {
		t.Helper()
		rctx, rcancel := context.WithCancel(ctx)
		req, err := http.NewRequestWithContext(rctx, http.MethodGet, h.HTTPURL+"/v1/streams/1/tail"+query, nil)
		require.NoError(t, err)
		if lastID != "" {
			req.Header.Set("Last-Event-ID", lastID)
		}
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		require.Equal(t, http.StatusOK, resp.StatusCode)
		require.Equal(t, "text/event-stream", resp.Header.Get("Content-Type"))
		return readEvents(bufio.NewReader(resp.Body)), func() { rcancel(); resp.Body.Close() }
	}
	expect := func(ch <-chan sseEvent, i int) {
		t.Helper()
		ev := testwait.Recv(t, ch, testwait.Default, "record %d", i)
		require.Equal(t, "record", ev.event, ev.data)
		require.Equal(t, ids[i], ev.id)
		var rec struct {
			ID      string `json:"id"`
			Ordinal uint64 `json:"ordinal"`
			Payload []byte `json:"payload"`
		}
		require.NoError(t, json.Unmarshal([]byte(ev.data), &rec))
		require.Equal(t, ids[i], rec.ID)
		require.Equal(t, uint64(i), rec.Ordinal)
		require.Equal(t, fmt.Sprintf("record %d", i), string(rec.Payload))
	}

	appendN(0, 3)
	ch, stop := open("", "")
	for i := range 3 {
		expect(ch, i)
	}
	appendN(3, 6) // live
	for i := 3; i < 6; i++ {
		expect(ch, i)
	}
	stop()

	// Reconnecting after record 4: records 5 and on, 4 not again.
	appendN(6, 8)
	ch, stop = open("", ids[4])
	for i := 5; i < 8; i++ {
		expect(ch, i)
	}
	stop()

	ch, stop = open("?ordinal=6", "")
	expect(ch, 6)
	expect(ch, 7)
	stop()

	r := do(t, http.MethodGet, h.HTTPURL+"/v1/streams/9/tail", "", nil)
	require.Equal(t, http.StatusNotFound, r.code)
	r = do(t, http.MethodGet, h.HTTPURL+"/v1/streams/1/tail", "", nil, "Last-Event-ID", "garbage")
	require.Equal(t, http.StatusBadRequest, r.code)

	// A shutdown ends an open tail with an error event.
	ch, stop = open("?ordinal=8", "")
	defer stop()
	h.Shutdown(t) // the events are buffered by readEvents
	ev := testwait.Recv(t, ch, testwait.Default, "the shutdown's error event")
	require.Equal(t, "error", ev.event)
	require.Contains(t, ev.data, `"code":`)
}
