package server_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	aof2v1 "github.com/aof2/aof2/api/proto/aof2/v1"
	"github.com/aof2/aof2/core"
	"github.com/aof2/aof2/host/server"
	"github.com/aof2/aof2/host/server/servertest"
	"github.com/aof2/aof2/internal/testwait"
)

// cursor is where a read starts, as each transport writes it.
type cursor struct {
	query string           // HTTP: "from=…" or "ordinal=…"; "" is the start
	pos   *aof2v1.Position // gRPC; nil is the start
}

// page is one read's answer, whichever transport carried it.
type page struct {
	ordinals []uint64
	payloads [][]byte
	next     cursor
	end      bool
}

func (p page) bytes() int {
	n := 0
	for _, b := range p.payloads {
		n += len(b)
	}
	return n
}

// readFunc reads stream from at with max_bytes (0: not given) and a
// record limit far above what any test reads.
type readFunc func(ctx context.Context, stream uint64, at cursor, maxBytes uint64) (page, error)

func httpReader(h *servertest.Host) readFunc {
	return func(ctx context.Context, stream uint64, at cursor, maxBytes uint64) (page, error) {
		url := fmt.Sprintf("%s/v1/streams/%d/records?limit=100000", h.HTTPURL, stream)
		if maxBytes > 0 {
			url += "&max_bytes=" + strconv.FormatUint(maxBytes, 10)
		}
		if at.query != "" {
			url += "&" + at.query
		}
		req, err := http.NewRequestWithContext(ctx, "GET", url, nil)
		if err != nil {
			return page{}, err
		}
		resp, err := httpClient.Do(req)
		if err != nil {
			return page{}, err
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		if err != nil {
			return page{}, err
		}
		if resp.StatusCode != http.StatusOK {
			return page{}, fmt.Errorf("HTTP %d: %s", resp.StatusCode, body)
		}
		var rr readResp
		if err := json.Unmarshal(body, &rr); err != nil {
			return page{}, fmt.Errorf("%w: %s", err, body)
		}
		p := page{end: rr.End}
		for _, r := range rr.Records {
			p.ordinals, p.payloads = append(p.ordinals, r.Ordinal), append(p.payloads, r.Payload)
		}
		switch {
		case rr.Next.From != "":
			p.next.query = "from=" + rr.Next.From
		case rr.Next.Ordinal != nil:
			p.next.query = "ordinal=" + strconv.FormatUint(*rr.Next.Ordinal, 10)
		}
		return p, nil
	}
}

func grpcReader(log aof2v1.LogClient) readFunc {
	return func(ctx context.Context, stream uint64, at cursor, maxBytes uint64) (page, error) {
		resp, err := log.Read(ctx, &aof2v1.ReadRequest{StreamId: stream, Start: at.pos, MaxRecords: 100000, MaxBytes: maxBytes})
		if err != nil {
			return page{}, err
		}
		p := page{end: resp.GetEnd(), next: cursor{pos: resp.GetNext()}}
		for _, r := range resp.GetRecords() {
			p.ordinals, p.payloads = append(p.ordinals, r.GetOrdinal()), append(p.payloads, r.GetPayload())
		}
		return p, nil
	}
}

// readAll pages through stream from the start with max_bytes, returning
// the payloads in order.
func readAll(ctx context.Context, read readFunc, stream, maxBytes uint64) ([][]byte, error) {
	var out [][]byte
	var at cursor
	for {
		p, err := read(ctx, stream, at, maxBytes)
		if err != nil {
			return nil, err
		}
		for i, o := range p.ordinals {
			if o != uint64(len(out)) {
				return nil, fmt.Errorf("record %d has ordinal %d", len(out), o)
			}
			out = append(out, p.payloads[i])
		}
		if p.end {
			return out, nil
		}
		if len(p.ordinals) == 0 {
			return nil, fmt.Errorf("an empty page before the end (at %+v)", at)
		}
		at = p.next
	}
}

func appendPayloads(t *testing.T, log aof2v1.LogClient, stream uint64, payloads ...[]byte) {
	t.Helper()
	_, err := log.Append(ctxT(t), &aof2v1.AppendRequest{StreamId: stream, Records: recs(payloads...)})
	require.NoError(t, err)
}

// budgetFreed waits until every read has given its bytes back (a gRPC
// response's are given back once the transport has written it out).
func budgetFreed(t *testing.T, srv *server.Server) {
	t.Helper()
	testwait.Until(t, testwait.Default, time.Millisecond, func() bool { return srv.ReadBudgetHeld() == 0 },
		"the read budget to be free again (%d bytes held)", srv.ReadBudgetHeld())
}

const (
	testRecord     = 64 << 10 // stream 1's records
	testRecords    = 40       // 2.5 MiB in all
	testDefault    = 256 << 10
	testMax        = 1 << 20
	testHugeRecord = 3 << 19 // 1.5 MiB: over the default, the max and the budget
)

// limitsHost serves stream 1 (testRecords records of testRecord bytes)
// and stream 2 (one record larger than the whole read budget, then two
// small ones) with small read limits.
func limitsHost(t *testing.T, budget int64) (*servertest.Host, aof2v1.LogClient, [][]byte) {
	t.Helper()
	return limitsHostStall(t, budget, 0)
}

// limitsHostStall is limitsHost with a read stall timeout (0: the default).
func limitsHostStall(t *testing.T, budget int64, stall time.Duration) (*servertest.Host, aof2v1.LogClient, [][]byte) {
	t.Helper()
	h := start(t, core.Config{SegmentSize: 4 << 20}, server.Options{ReadDefaultBytes: testDefault, ReadMaxBytes: testMax, ReadBudgetBytes: budget, ReadStallTimeout: stall})
	log, _, _ := dial(t, h.GRPCAddr)
	var want [][]byte
	for i := range testRecords {
		want = append(want, payload(i, testRecord))
	}
	appendPayloads(t, log, 1, want...)
	appendPayloads(t, log, 2, payload(100, testHugeRecord))
	appendPayloads(t, log, 2, []byte("small"), []byte("records"))
	return h, log, want
}

// TestReadResponseBounded: a read returns Options.ReadDefaultBytes of
// payload when it does not say, at most ReadMaxBytes when it asks for more
// (clamped, not refused), and always at least one record, even one larger
// than the default, the maximum and the whole read budget. Paging with
// the returned next position loses nothing. Both transports.
func TestReadResponseBounded(t *testing.T) {
	h, log, want := limitsHost(t, testMax)
	ctx := ctxT(t)
	for _, tr := range []struct {
		name string
		read readFunc
	}{
		{"http", httpReader(h)},
		{"grpc", grpcReader(log)},
	} {
		t.Run(tr.name, func(t *testing.T) {
			for _, tc := range []struct {
				name       string
				stream     uint64
				at         int // ordinal to start at
				maxBytes   uint64
				minRecords int
				maxRecords int
			}{
				{"no max_bytes: the default", 1, 0, 0, testDefault / testRecord, testDefault / testRecord},
				{"under the maximum", 1, 0, 8 * testRecord, 8, 8},
				{"over the maximum: clamped", 1, 0, 1 << 40, testDefault/testRecord + 1, testMax / testRecord},
				{"smaller than a record: one", 1, 3, 1, 1, 1},
				{"a record over every limit: alone", 2, 0, 0, 1, 1},
				{"a record over every limit, asked for more", 2, 0, 1 << 40, 1, 1},
				{"after it, the rest", 2, 1, 0, 2, 2},
			} {
				t.Run(tc.name, func(t *testing.T) {
					at := cursor{query: "ordinal=" + strconv.Itoa(tc.at), pos: &aof2v1.Position{Start: &aof2v1.Position_Ordinal{Ordinal: uint64(tc.at)}}}
					p, err := tr.read(ctx, tc.stream, at, tc.maxBytes)
					require.NoError(t, err)
					require.GreaterOrEqual(t, len(p.ordinals), tc.minRecords)
					require.LessOrEqual(t, len(p.ordinals), tc.maxRecords)
					if len(p.ordinals) > 1 {
						require.LessOrEqual(t, p.bytes(), testMax, "a response of several records stays within the maximum")
					}
					require.Equal(t, uint64(tc.at), p.ordinals[0])
					if tc.stream == 2 && tc.at == 0 {
						require.Equal(t, payload(100, testHugeRecord), p.payloads[0])
					}
					budgetFreed(t, h.Server)
				})
			}
			for _, maxBytes := range []uint64{0, 3 * testRecord, 1 << 40} {
				got, err := readAll(ctx, tr.read, 1, maxBytes)
				require.NoError(t, err, "max_bytes %d", maxBytes)
				require.Equal(t, want, got, "max_bytes %d", maxBytes)
			}
			budgetFreed(t, h.Server)
			require.LessOrEqual(t, h.Server.ReadBudgetPeak(), int64(testMax))
		})
	}
}

// TestReadBudgetWaits: with the read budget used up, reads and tails of
// both transports wait for room holding nothing; a waiting request whose
// client gives up (cancels, disconnects) leaves; once room is given back
// the others complete.
func TestReadBudgetWaits(t *testing.T) {
	h, log, want := limitsHost(t, testMax)
	ctx := ctxT(t)
	release, err := h.Server.HoldReadBudget(ctx, testMax)
	require.NoError(t, err)

	type result struct {
		name string
		n    int // records
		err  error
	}
	results := make(chan result, 8)
	cancels := map[string]context.CancelFunc{}
	run := func(name string, f func(ctx context.Context) (int, error)) {
		rctx, cancel := context.WithCancel(ctx)
		cancels[name] = cancel
		go func() {
			n, err := f(rctx)
			results <- result{name, n, err}
		}()
	}
	readers := map[string]readFunc{"http": httpReader(h), "grpc": grpcReader(log)}
	for _, name := range []string{"http", "grpc"} {
		for i := range 3 {
			run(fmt.Sprintf("%s read %d", name, i), func(ctx context.Context) (int, error) {
				p, err := readers[name](ctx, 1, cursor{}, 0)
				return len(p.ordinals), err
			})
		}
	}
	run("grpc tail", func(ctx context.Context) (int, error) {
		call, err := log.Tail(ctx, &aof2v1.TailRequest{StreamId: 1})
		if err != nil {
			return 0, err
		}
		m, err := call.Recv()
		return len(m.GetRecords()), err
	})
	testwait.Until(t, testwait.Default, time.Millisecond, func() bool { return h.Server.ReadBudgetWaiting() == 7 },
		"seven requests waiting for the read budget (%d)", h.Server.ReadBudgetWaiting())
	require.EqualValues(t, testMax, h.Server.ReadBudgetHeld(), "waiting requests hold nothing")

	for _, name := range []string{"http read 0", "grpc read 0"} {
		cancels[name]()
		r := testwait.Recv(t, results, testwait.Default, "the cancelled %s", name)
		require.Error(t, r.err, r.name)
	}
	testwait.Until(t, testwait.Default, time.Millisecond, func() bool { return h.Server.ReadBudgetWaiting() == 5 },
		"the cancelled requests to stop waiting (%d waiting)", h.Server.ReadBudgetWaiting())

	release()
	for range 5 {
		r := testwait.Recv(t, results, testwait.Default, "a waiting request to complete")
		require.NoError(t, r.err, r.name)
		require.Positive(t, r.n, r.name)
	}
	for _, cancel := range cancels {
		cancel() // the tail
	}
	budgetFreed(t, h.Server)
	require.LessOrEqual(t, h.Server.ReadBudgetPeak(), int64(testMax))
	got, err := readAll(ctx, grpcReader(log), 1, 0)
	require.NoError(t, err)
	require.Equal(t, want, got)
}

// TestConcurrentReadersWithinBudget: many readers of both transports,
// each asking for as much as it can get, never hold more than the read
// budget between them (the budget's own accounting, not timing), all
// read everything, and give all of it back.
func TestConcurrentReadersWithinBudget(t *testing.T) {
	const budget = testMax / 2
	h, log, want := limitsHost(t, budget)
	ctx := ctxT(t)
	readers := []readFunc{httpReader(h), grpcReader(log)}
	errs := make(chan error, 8)
	for i := range cap(errs) {
		go func() {
			got, err := readAll(ctx, readers[i%2], 1, 1<<40)
			if err == nil && len(got) != len(want) {
				err = fmt.Errorf("reader %d: %d records, want %d", i, len(got), len(want))
			}
			for j := range got {
				if err == nil && string(got[j]) != string(want[j]) {
					err = fmt.Errorf("reader %d: record %d differs", i, j)
				}
			}
			errs <- err
		}()
	}
	for range cap(errs) {
		require.NoError(t, testwait.Recv(t, errs, testwait.Default, "a reader to finish"))
	}
	budgetFreed(t, h.Server)
	require.Positive(t, h.Server.ReadBudgetPeak())
	require.LessOrEqual(t, h.Server.ReadBudgetPeak(), int64(budget))
}

// TestTailMessagesBounded: a Tail message carries at most
// Options.ReadDefaultBytes of payload (or one larger record), and its
// bytes go back to the budget once sent.
func TestTailMessagesBounded(t *testing.T) {
	h, log, want := limitsHost(t, testMax)
	ctx, cancel := context.WithCancel(ctxT(t))
	defer cancel()
	for _, tc := range []struct {
		stream uint64
		want   int
	}{{1, testRecords}, {2, 3}} {
		call, err := log.Tail(ctx, &aof2v1.TailRequest{StreamId: tc.stream})
		require.NoError(t, err)
		var got [][]byte
		messages := 0
		for len(got) < tc.want {
			m, err := call.Recv()
			require.NoError(t, err)
			messages++
			size := 0
			for _, r := range m.GetRecords() {
				require.Equal(t, uint64(len(got)), r.GetOrdinal())
				got = append(got, r.GetPayload())
				size += len(r.GetPayload())
			}
			if len(m.GetRecords()) > 1 {
				require.LessOrEqual(t, size, testDefault)
			}
		}
		if tc.stream == 1 {
			require.Equal(t, want, got)
			require.GreaterOrEqual(t, messages, testRecords*testRecord/testDefault)
		} else {
			require.Len(t, got[0], testHugeRecord)
		}
	}
	cancel()
	budgetFreed(t, h.Server)
}

// TestReadOptions: zero read limits take the defaults; negative ones, or
// a default above the maximum, are refused.
func TestReadOptions(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts server.Options
		ok   bool
	}{
		{"defaults", server.Options{}, true},
		{"default only, above the default maximum", server.Options{ReadDefaultBytes: 2 * server.DefaultReadMaxBytes}, true},
		{"all set", server.Options{ReadDefaultBytes: 1, ReadMaxBytes: 2, ReadBudgetBytes: 3}, true},
		{"default above the maximum", server.Options{ReadDefaultBytes: 2, ReadMaxBytes: 1}, false},
		{"negative default", server.Options{ReadDefaultBytes: -1}, false},
		{"negative maximum", server.Options{ReadMaxBytes: -1}, false},
		{"negative budget", server.Options{ReadBudgetBytes: -1}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := server.New(servertest.NewNode(nil), tc.opts)
			if tc.ok {
				require.NoError(t, err)
			} else {
				require.ErrorContains(t, err, "server: Read")
			}
		})
	}
}

// TestStalledReaderDoesNotWedge: an HTTP client that asks for a large read
// and then stops reading holds the whole read budget only until the stall
// timeout: the blocked write fails, its connection is closed, its bytes go
// back, and the reader that waited meanwhile gets its answer.
func TestStalledReaderDoesNotWedge(t *testing.T) {
	// Two records of 6 MiB: their JSON is more than loopback's socket
	// buffers take, and a record's bytes go back only once all of it is
	// written, so the stalled read keeps holding the whole budget.
	const record, n = 6 << 20, 2
	h := start(t, core.Config{SegmentSize: 32 << 20}, server.Options{ReadDefaultBytes: n * record, ReadMaxBytes: n*record + 1<<20,
		ReadBudgetBytes: n*record + 2*64, ReadStallTimeout: 300 * time.Millisecond})
	log, _, _ := dial(t, h.GRPCAddr)
	for i := range n {
		appendPayloads(t, log, 1, payload(i, record))
	}

	addr := strings.TrimPrefix(h.HTTPURL, "http://")
	conn, err := net.Dial("tcp", addr)
	require.NoError(t, err)
	defer conn.Close()
	require.NoError(t, conn.(*net.TCPConn).SetReadBuffer(4096))
	_, err = fmt.Fprintf(conn, "GET /v1/streams/1/records?max_bytes=%d HTTP/1.1\r\nHost: %s\r\n\r\n", n*record, addr)
	require.NoError(t, err)
	testwait.Until(t, testwait.Default, time.Millisecond, func() bool { return h.Server.ReadBudgetWaiting() == 0 && h.Server.ReadBudgetHeld() >= n*record },
		"the stalled read to take the budget (%d bytes held)", h.Server.ReadBudgetHeld())

	// This reader waits for room the stalled one holds, then gets it.
	res, err := log.Read(ctxT(t), &aof2v1.ReadRequest{StreamId: 1, MaxBytes: record})
	require.NoError(t, err)
	require.NotEmpty(t, res.GetRecords())
	require.Equal(t, 1.0, h.Server.ReadBudgetStalled())
	budgetFreed(t, h.Server)
}

// TestCancelledTailsGiveTheBudgetBack: tails cancelled by their clients
// at every point of a send give back what they held at once, not after
// the stall timeout (set here to an hour). gRPC drops without freeing it
// a message the handler queued just after the client reset the stream, so
// an RPC that ends without its status written releases its holds itself.
func TestCancelledTailsGiveTheBudgetBack(t *testing.T) {
	h, log, _ := limitsHostStall(t, testMax, time.Hour)
	ctx := ctxT(t)
	for i := range 200 {
		tctx, cancel := context.WithCancel(ctx)
		call, err := log.Tail(tctx, &aof2v1.TailRequest{StreamId: 1})
		require.NoError(t, err)
		_, err = call.Recv()
		require.NoError(t, err, "tail %d", i)
		if i%2 == 1 {
			time.Sleep(time.Duration(i%7) * 100 * time.Microsecond)
		}
		cancel()
	}
	budgetFreed(t, h.Server)
	require.Zero(t, h.Server.ReadBudgetStalled())
}
