package conformance

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/aof2/aof2/pluginapi"
)

// A certification says a backend is correct; an author and an operator
// also want to know how fast it moved bytes when it was certified. The
// numbers are measured, not judged: nothing passes or fails on them, and
// they depend on the machine and the store behind the backend.

// BenchOptions size RunBenchmarks. Zero fields take the defaults.
type BenchOptions struct {
	// ObjectSize is the size of each object (default 4 MiB).
	ObjectSize int
	// Objects is how many objects are written and read (default 8).
	Objects int
	// Concurrency is how many streams run at once (default 4, at most the
	// backend's Limits.MaxConcurrentStreams).
	Concurrency int
}

func (o BenchOptions) withDefaults(limits pluginapi.Limits) BenchOptions {
	if o.ObjectSize <= 0 {
		o.ObjectSize = 4 << 20
	}
	if m := limits.MaxObjectSize; m != 0 && uint64(o.ObjectSize) > m {
		o.ObjectSize = int(m)
	}
	if o.Objects <= 0 {
		o.Objects = 8
	}
	if o.Concurrency <= 0 {
		o.Concurrency = 4
	}
	if m := limits.MaxConcurrentStreams; m != 0 {
		o.Concurrency = min(o.Concurrency, int(m))
	}
	o.Concurrency = min(o.Concurrency, o.Objects)
	return o
}

// Benchmarks are the throughput RunBenchmarks measured through the host's
// client (gRPC framing and checksums included).
type Benchmarks struct {
	ObjectSize  int           `json:"object_bytes"`
	Objects     int           `json:"objects"`
	Concurrency int           `json:"concurrency"`
	ChunkSize   uint32        `json:"chunk_size"`
	PutDuration time.Duration `json:"put_duration_ns"`
	GetDuration time.Duration `json:"get_duration_ns"`
	// PutMiBps and GetMiBps are MiB (2^20 bytes) per second over the
	// whole phase, wall clock.
	PutMiBps float64 `json:"put_mib_per_s"`
	GetMiBps float64 `json:"get_mib_per_s"`
	// Error, in a Report, says why the measurement could not be made.
	Error string `json:"error,omitempty"`
}

// RunBenchmarks starts a target from h, writes opts.Objects objects of
// opts.ObjectSize bytes with opts.Concurrency streams at a time, reads them
// all back (checking their CRC-64/NVME), deletes them, and reports the Put
// and Get throughput. Everything is written under a fresh random prefix.
func RunBenchmarks(ctx context.Context, h Harness, opts BenchOptions) (*Benchmarks, error) {
	tgt, err := h.Start(ctx, StartOptions{})
	if err != nil {
		return nil, fmt.Errorf("starting the backend: %w", err)
	}
	defer func() { _ = tgt.Close() }()
	o := opts.withDefaults(tgt.Info.Limits)
	prefix := randomPrefix() + "bench/"
	keys := make([]string, o.Objects)
	for i := range keys {
		keys[i] = fmt.Sprintf("%s%04d", prefix, i)
	}
	defer func() {
		// Best effort, whatever happened: the context may be done already.
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
		defer cancel()
		for _, k := range keys {
			_ = tgt.Backend.Delete(cctx, k)
		}
	}()
	data := pattern(0xbe4c, o.ObjectSize)
	crc := pluginapi.CRC64(data)
	b := &Benchmarks{ObjectSize: o.ObjectSize, Objects: o.Objects, Concurrency: o.Concurrency, ChunkSize: tgt.ChunkSize}

	b.PutDuration, err = inParallel(ctx, keys, o.Concurrency, func(ctx context.Context, key string) error {
		_, err := tgt.Backend.Put(ctx, pluginapi.PutRequest{Key: key, Size: uint64(len(data)), CRC64: crc}, &patternReader{seed: 0xbe4c, n: uint64(len(data))})
		return err
	})
	if err != nil {
		return b, fmt.Errorf("put: %w", err)
	}
	b.GetDuration, err = inParallel(ctx, keys, o.Concurrency, func(ctx context.Context, key string) error {
		_, rc, err := tgt.Backend.Get(ctx, pluginapi.GetRequest{Key: key})
		if err != nil {
			return err
		}
		defer func() { _ = rc.Close() }()
		got, n, err := pluginapi.CRC64Reader(rc)
		if err != nil {
			return err
		}
		if got != crc || n != uint64(len(data)) {
			return fmt.Errorf("%q: got %d bytes with CRC-64/NVME %016x, want %d with %016x", key, n, got, len(data), crc)
		}
		return nil
	})
	if err != nil {
		return b, fmt.Errorf("get: %w", err)
	}
	total := float64(o.ObjectSize) * float64(o.Objects) / (1 << 20)
	b.PutMiBps = rate(total, b.PutDuration)
	b.GetMiBps = rate(total, b.GetDuration)
	return b, nil
}

func rate(mib float64, d time.Duration) float64 {
	if d <= 0 {
		return 0
	}
	return float64(int64(mib/d.Seconds()*10)) / 10
}

// inParallel runs f on every key with at most n at once and returns the
// wall time; the first error cancels the rest.
func inParallel(parent context.Context, keys []string, n int, f func(context.Context, string) error) (time.Duration, error) {
	ctx, cancel := context.WithCancel(parent)
	defer cancel()
	next := make(chan string)
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []error
	)
	start := time.Now()
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for key := range next {
				if err := f(ctx, key); err != nil {
					mu.Lock()
					errs = append(errs, err)
					mu.Unlock()
					cancel()
				}
			}
		}()
	}
feed:
	for _, k := range keys {
		select {
		case next <- k:
		case <-ctx.Done():
			break feed
		}
	}
	close(next)
	wg.Wait()
	elapsed := time.Since(start)
	if len(errs) == 0 && parent.Err() != nil {
		errs = append(errs, parent.Err())
	}
	return elapsed, errors.Join(errs...)
}
