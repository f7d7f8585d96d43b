package core

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"
)

// BenchmarkIdempotentDurable: durable appends of one 256 B record per
// request, plain against idempotent (one producer per appender), 1 and 8
// appenders on one stream. The idempotent request costs one more
// fdatasync (the producer log's), taken under the stream's writer lock.
func BenchmarkIdempotentDurable(b *testing.B) {
	for _, n := range []int{1, 8} {
		for _, idem := range []bool{false, true} {
			b.Run(fmt.Sprintf("appenders=%d/idempotent=%t", n, idem), func(b *testing.B) {
				settle(b)
				per := 2000 / n
				for range b.N {
					b.StopTimer()
					st, err := Open(benchDir(b), Config{Sync: SyncAlways})
					if err != nil {
						b.Fatal(err)
					}
					s, err := st.Stream(1)
					if err != nil {
						b.Fatal(err)
					}
					lat := make([][]time.Duration, n)
					errs := make(chan error, n)
					b.StartTimer()
					var wg sync.WaitGroup
					for g := range n {
						wg.Go(func() {
							ctx := context.Background()
							p := benchPayload(256)
							for i := range per {
								t0 := time.Now()
								if idem {
									res, err := s.AppendIdempotent(ctx, Producer{ID: uint64(g + 1), Seq: uint64(i + 1)}, []BatchRecord{{Payload: p}}, true)
									if err == nil {
										err = s.Flush(ctx, res.IDs[0])
									}
									if err != nil {
										errs <- err
										return
									}
								} else if _, err := s.AppendDurable(ctx, p, AppendOptions{}); err != nil {
									errs <- err
									return
								}
								lat[g] = append(lat[g], time.Since(t0))
							}
						})
					}
					wg.Wait()
					b.StopTimer()
					close(errs)
					for err := range errs {
						b.Fatal(err)
					}
					if err := st.Close(); err != nil {
						b.Fatal(err)
					}
					reportLatency(b, slices.Concat(lat...))
					b.StartTimer()
				}
				reportRate(b, n*per, n*per*256)
			})
		}
	}
}
