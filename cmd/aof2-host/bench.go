package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"runtime/pprof"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aof2/aof2/client"
)

// benchResult is what one bench run measured.
type benchResult struct {
	Records  int64
	Bytes    int64
	Elapsed  time.Duration
	P50, P99 time.Duration
}

func (r benchResult) String() string {
	s := r.Elapsed.Seconds()
	return fmt.Sprintf("%d records in %v: %.0f records/s, %.1f MB/s, latency p50 %v p99 %v",
		r.Records, r.Elapsed.Round(time.Millisecond), float64(r.Records)/s, float64(r.Bytes)/s/1e6,
		r.P50.Round(time.Microsecond), r.P99.Round(time.Microsecond))
}

// Bench modes: which client surface the appends go through.
const (
	benchUnary  = "unary"  // one Append call per batch (gRPC)
	benchStream = "stream" // AppendStream: -per-call batches, then CloseAndFlush
	benchHTTP   = "http"   // POST /v1/streams/{id}/records per batch
	// benchIdempotent: one idempotent Append per batch through a
	// client.Producer per client and stream.
	benchIdempotent = "idempotent"
)

// benchConfig is one bench run's shape.
type benchConfig struct {
	mode                 string
	stream               client.StreamID
	streams              int // client i appends to stream + i mod streams
	size, batch, perCall int
	records              int64
	duration             time.Duration
	noWait, coalesce     bool
	pipeline             bool
	// callTimeout bounds each call (the admin commands' -timeout; 0:
	// none): a host that stops answering ends the run with an error
	// instead of holding it.
	callTimeout time.Duration
}

// runBench drives durable appends through the client API from concurrent
// clients against a running host.
func runBench(ctx context.Context, e *cmdEnv) error {
	t := targetFlags(e.flags)
	clients := e.flags.Int("clients", 16, "concurrent clients (goroutines making one call at a time)")
	conns := e.flags.Int("conns", 0, "gRPC connections the clients share, each a client.Client (default one per client); clients sharing one have their appends coalesced")
	mode := e.flags.String("mode", benchUnary, "client surface: unary (an Append call per batch), stream (AppendStream: -per-call batches, then CloseAndFlush), http (a POST per batch to -http-addr) or idempotent (an Append per batch with a producer id and sequence, through client.Producer)")
	httpAddr := e.flags.String("http-addr", "", "HTTP address of the host, for -mode http")
	size := e.flags.Int("size", 256, "payload bytes per record")
	batch := e.flags.Int("batch", 1, "records per append call (per Send in stream mode)")
	perCall := e.flags.Int("per-call", 100, "stream mode: batches sent per AppendStream call before it is closed and flushed")
	records := e.flags.Int64("records", 0, "stop after this many records (default: run for -duration)")
	duration := e.flags.Duration("duration", 10*time.Second, "how long to run when -records is not set")
	stream := e.flags.Uint64("stream", 1, "the stream to append to")
	streams := e.flags.Int("streams", 1, "spread the clients over this many streams, -stream and the ones after it (client i appends to -stream + i mod -streams)")
	noWait := e.flags.Bool("no-wait", false, "do not wait for durability (acknowledge after the append)")
	coalesce := e.flags.Bool("coalesce", true, "unary mode: coalesce concurrent appends of clients sharing a connection (see -conns)")
	pipeline := e.flags.Bool("pipeline", true, "unary mode: coalesced appends travel on one AppendPipeline call per connection (false: an Append call each)")
	cpuProfile := e.flags.String("cpuprofile", "", "write the bench client's CPU profile to this file (go tool pprof)")
	if _, err := e.parse(0, 0); err != nil {
		return err
	}
	switch {
	case *mode != benchUnary && *mode != benchStream && *mode != benchHTTP && *mode != benchIdempotent:
		return usagef("-mode %q: want unary, stream, http or idempotent", *mode)
	case *mode == benchIdempotent && *noWait:
		return usagef("-mode idempotent waits for durability (client.Producer): drop -no-wait")
	case *mode == benchHTTP && *httpAddr == "":
		return usagef("-mode http needs -http-addr")
	case *mode != benchHTTP && !t.online():
		return usagef("-addr (or AOF2_ADDR) is required: bench runs against a running host")
	case *clients < 1 || *size < 1 || *batch < 1 || *perCall < 1:
		return usagef("-clients, -size, -batch and -per-call must be positive")
	case *conns < 0 || *conns > *clients:
		return usagef("-conns must be between 1 and -clients (0: one per client)")
	case *conns > 0 && *mode == benchHTTP:
		return usagef("-conns is for the gRPC modes")
	case *streams < 1 || *streams > *clients:
		return usagef("-streams must be between 1 and -clients")
	case *records < 0 || *duration <= 0:
		return usagef("-records must not be negative and -duration must be positive")
	}
	cfg := benchConfig{mode: *mode, stream: client.StreamID(*stream), streams: *streams, size: *size, batch: *batch, perCall: *perCall,
		records: *records, duration: *duration, noWait: *noWait, coalesce: *coalesce, pipeline: *pipeline, callTimeout: t.timeout}
	if *conns == 0 {
		*conns = *clients
	}
	calls := make([]benchCall, *clients)
	for i := range *conns {
		call, closeFn, err := newBenchCall(ctx, t, cfg, *httpAddr)
		if err != nil {
			return err
		}
		defer closeFn()
		for j := i; j < len(calls); j += *conns {
			calls[j] = call
		}
	}
	where := fmt.Sprintf("stream %d", cfg.stream)
	if cfg.streams > 1 {
		where = fmt.Sprintf("streams %d-%d", cfg.stream, cfg.stream+client.StreamID(cfg.streams-1))
	}
	fmt.Fprintf(e.stdout, "bench: %s, %d clients over %d connections, %d B records, batch %d, durable=%v, %s\n", cfg.mode, *clients, *conns, cfg.size, cfg.batch, !cfg.noWait, where)
	if *cpuProfile != "" {
		stop, err := startCPUProfile(*cpuProfile)
		if err != nil {
			return err
		}
		defer stop()
	}
	res, err := bench(ctx, calls, cfg)
	if err != nil {
		return err
	}
	fmt.Fprintln(e.stdout, res)
	return nil
}

// benchCall makes one measured call to a stream and says how many records
// it carried.
type benchCall func(ctx context.Context, stream client.StreamID, payloads [][]byte) (int, error)

// newBenchCall connects one client (its own connection) for cfg.mode.
func newBenchCall(ctx context.Context, t *target, cfg benchConfig, httpAddr string) (benchCall, func(), error) {
	if cfg.mode == benchHTTP {
		tok, err := t.bearer()
		if err != nil {
			return nil, nil, err
		}
		hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 1}}
		return httpBenchCall(hc, httpAddr, cfg.noWait, tok), hc.CloseIdleConnections, nil
	}
	c, err := t.dial(ctx, client.WithAppendCoalescing(cfg.coalesce), client.WithAppendPipeline(cfg.pipeline))
	if err != nil {
		return nil, nil, err
	}
	closeFn := func() { _ = c.Close() }
	switch {
	case cfg.mode == benchStream:
		return streamBenchCall(c, cfg), closeFn, nil
	case cfg.mode == benchIdempotent:
		return idempotentBenchCall(c), closeFn, nil
	case cfg.noWait:
		return func(ctx context.Context, stream client.StreamID, p [][]byte) (int, error) {
			_, err := c.AppendNoWait(ctx, stream, p...)
			return len(p), err
		}, closeFn, nil
	default:
		return func(ctx context.Context, stream client.StreamID, p [][]byte) (int, error) {
			_, err := c.Append(ctx, stream, p...)
			return len(p), err
		}, closeFn, nil
	}
}

// idempotentBenchCall appends each batch as one idempotent request of a
// client.Producer, one per stream (clients sharing a connection share its
// producers, whose requests go one at a time).
func idempotentBenchCall(c *client.Client) benchCall {
	var mu sync.Mutex
	producers := map[client.StreamID]*client.Producer{} // guarded by mu
	return func(ctx context.Context, stream client.StreamID, p [][]byte) (int, error) {
		mu.Lock()
		pr := producers[stream]
		if pr == nil {
			var err error
			if pr, err = c.NewProducer(stream); err != nil {
				mu.Unlock()
				return 0, err
			}
			producers[stream] = pr
		}
		mu.Unlock()
		_, err := pr.Append(ctx, p...)
		return len(p), err
	}
}

// streamBenchCall sends cfg.perCall batches over one AppendStream call and
// closes it, flushing.
func streamBenchCall(c *client.Client, cfg benchConfig) benchCall {
	return func(ctx context.Context, stream client.StreamID, p [][]byte) (int, error) {
		a, err := c.NewAppender(ctx, stream)
		if err != nil {
			return 0, err
		}
		recs := make([]client.Record, len(p))
		for i := range p {
			recs[i] = client.Record{Payload: p[i]}
		}
		for range cfg.perCall {
			if err := a.SendRecords(recs, cfg.noWait); err != nil {
				a.Abort()
				return 0, err
			}
		}
		sum, err := a.CloseAndFlush()
		if err == nil && sum.Count != cfg.perCall*len(p) {
			err = fmt.Errorf("bench: the host appended %d records of a stream call's %d", sum.Count, cfg.perCall*len(p))
		}
		return sum.Count, err
	}
}

// httpBenchCall posts one batch: a single record as the raw body, more as
// JSON.
func httpBenchCall(hc *http.Client, addr string, noWait bool, token string) benchCall {
	return func(ctx context.Context, stream client.StreamID, p [][]byte) (int, error) {
		url := fmt.Sprintf("http://%s/v1/streams/%d/records", addr, stream)
		if noWait {
			url += "?durable=false"
		}
		body, ctype := p[0], "application/octet-stream"
		if len(p) > 1 {
			type rec struct {
				Payload []byte `json:"payload"`
			}
			recs := make([]rec, len(p))
			for i := range p {
				recs[i].Payload = p[i]
			}
			b, err := json.Marshal(map[string]any{"records": recs})
			if err != nil {
				return 0, err
			}
			body, ctype = b, "application/json"
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
		if err != nil {
			return 0, err
		}
		req.Header.Set("Content-Type", ctype)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := hc.Do(req)
		if err != nil {
			return 0, err
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		if resp.StatusCode != http.StatusOK {
			return 0, fmt.Errorf("bench: POST %s: %s: %s", url, resp.Status, bytes.TrimSpace(b))
		}
		return len(p), nil
	}
}

func bench(ctx context.Context, calls []benchCall, cfg benchConfig) (benchResult, error) {
	// The calls run under ctx (the caller's, cancelled by a signal) and
	// cfg.callTimeout; the duration only stops clients from starting new
	// calls, so no call is cut off half-way by it.
	deadline := time.Now().Add(cfg.duration)
	more := func() bool { return ctx.Err() == nil && (cfg.records > 0 || time.Now().Before(deadline)) }
	payload := make([]byte, cfg.size)
	for i := range payload {
		payload[i] = byte('a' + i%26)
	}
	payloads := make([][]byte, cfg.batch)
	for i := range payloads {
		payloads[i] = payload
	}
	perCall := int64(cfg.batch)
	if cfg.mode == benchStream {
		perCall *= int64(cfg.perCall)
	}
	var (
		taken   atomic.Int64
		done    atomic.Int64
		wg      sync.WaitGroup
		mu      sync.Mutex
		lat     []time.Duration
		firstEr error
	)
	start := time.Now()
	for i, call := range calls {
		stream := cfg.stream + client.StreamID(i%max(cfg.streams, 1))
		wg.Go(func() {
			var mine []time.Duration
			defer func() { mu.Lock(); lat = append(lat, mine...); mu.Unlock() }()
			for more() {
				if cfg.records > 0 && taken.Add(perCall) > cfg.records {
					return
				}
				t0 := time.Now()
				cctx, cancel := ctx, context.CancelFunc(func() {})
				if cfg.callTimeout > 0 {
					cctx, cancel = context.WithTimeout(ctx, cfg.callTimeout)
				}
				n, err := call(cctx, stream, payloads)
				timedOut := cctx.Err() != nil && ctx.Err() == nil
				cancel()
				if err != nil {
					if ctx.Err() != nil {
						return // interrupted: the call is not counted
					}
					if timedOut {
						err = fmt.Errorf("bench: a call took longer than -timeout %s: %w", cfg.callTimeout, err)
					}
					mu.Lock()
					firstEr = cmpErr(firstEr, err)
					mu.Unlock()
					return
				}
				done.Add(int64(n))
				mine = append(mine, time.Since(t0))
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	if firstEr != nil {
		return benchResult{}, firstEr
	}
	if len(lat) == 0 {
		return benchResult{}, errors.New("bench: no append completed")
	}
	slices.Sort(lat)
	n := done.Load()
	return benchResult{Records: n, Bytes: n * int64(cfg.size), Elapsed: elapsed, P50: lat[len(lat)/2], P99: lat[len(lat)*99/100]}, nil
}

func cmpErr(first, err error) error {
	if first != nil {
		return first
	}
	return err
}

// startCPUProfile profiles this process's CPU into path until stop.
func startCPUProfile(path string) (stop func(), err error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("cpuprofile: %w", err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("cpuprofile: %w", err)
	}
	return func() {
		pprof.StopCPUProfile()
		_ = f.Close()
	}, nil
}
