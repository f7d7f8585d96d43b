package main

import (
	"context"
	"errors"
	"fmt"
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

// runBench drives durable appends through the client API from concurrent
// clients against a running host.
func runBench(ctx context.Context, e *cmdEnv) error {
	t := targetFlags(e.flags)
	clients := e.flags.Int("clients", 16, "concurrent clients, each with its own connection")
	size := e.flags.Int("size", 256, "payload bytes per record")
	batch := e.flags.Int("batch", 1, "records per append call")
	records := e.flags.Int64("records", 0, "stop after this many records (default: run for -duration)")
	duration := e.flags.Duration("duration", 10*time.Second, "how long to run when -records is not set")
	stream := e.flags.Uint64("stream", 1, "the stream to append to")
	noWait := e.flags.Bool("no-wait", false, "do not wait for durability (acknowledge after the append)")
	if _, err := e.parse(0, 0); err != nil {
		return err
	}
	switch {
	case !t.online():
		return usagef("-addr (or AOF2_ADDR) is required: bench runs against a running host")
	case *clients < 1 || *size < 1 || *batch < 1:
		return usagef("-clients, -size and -batch must be positive")
	case *records < 0 || *duration <= 0:
		return usagef("-records must not be negative and -duration must be positive")
	}
	cs := make([]*client.Client, *clients)
	for i := range cs {
		c, err := t.dial(ctx)
		if err != nil {
			return err
		}
		defer c.Close()
		cs[i] = c
	}
	fmt.Fprintf(e.stdout, "bench: %d clients, %d B records, batch %d, durable=%v, stream %d\n", *clients, *size, *batch, !*noWait, *stream)
	res, err := bench(ctx, cs, client.StreamID(*stream), *size, *batch, *records, *duration, *noWait)
	if err != nil {
		return err
	}
	fmt.Fprintln(e.stdout, res)
	return nil
}

func bench(ctx context.Context, cs []*client.Client, stream client.StreamID, size, batch int, records int64, d time.Duration, noWait bool) (benchResult, error) {
	// The calls run under ctx (the caller's, cancelled by a signal); the
	// duration only stops clients from starting new calls, so no call is cut
	// off half-way by it.
	deadline := time.Now().Add(d)
	more := func() bool { return ctx.Err() == nil && (records > 0 || time.Now().Before(deadline)) }
	payload := make([]byte, size)
	for i := range payload {
		payload[i] = byte('a' + i%26)
	}
	payloads := make([][]byte, batch)
	for i := range payloads {
		payloads[i] = payload
	}
	var (
		taken   atomic.Int64
		wg      sync.WaitGroup
		mu      sync.Mutex
		lat     []time.Duration
		firstEr error
	)
	start := time.Now()
	for _, c := range cs {
		wg.Go(func() {
			var mine []time.Duration
			defer func() { mu.Lock(); lat = append(lat, mine...); mu.Unlock() }()
			for more() {
				if records > 0 && taken.Add(int64(batch)) > records {
					return
				}
				t0 := time.Now()
				var err error
				if noWait {
					_, err = c.AppendNoWait(ctx, stream, payloads...)
				} else {
					_, err = c.Append(ctx, stream, payloads...)
				}
				if err != nil {
					if ctx.Err() != nil {
						return // interrupted: the call is not counted
					}
					mu.Lock()
					firstEr = cmpErr(firstEr, err)
					mu.Unlock()
					return
				}
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
	n := int64(len(lat)) * int64(batch)
	return benchResult{Records: n, Bytes: n * int64(size), Elapsed: elapsed, P50: lat[len(lat)/2], P99: lat[len(lat)*99/100]}, nil
}

func cmpErr(first, err error) error {
	if first != nil {
		return first
	}
	return err
}
