package core

import (
	"context"
	"fmt"
	"testing"
)

// BenchmarkIdempotentDurable: durable appends of one 256 B record per
// request, plain against idempotent (one producer per appender), 1 and 8
// appenders on one stream. Idempotent requests cost one more fdatasync
// (the producer log's) per group commit, under the stream's writer lock.
func BenchmarkIdempotentDurable(b *testing.B) {
	for _, n := range []int{1, 8} {
		for _, idem := range []bool{false, true} {
			b.Run(fmt.Sprintf("appenders=%d/idempotent=%t", n, idem), func(b *testing.B) {
				settle(b)
				per := 2000 / n
				for range b.N {
					seqs := make([]uint64, n) // seqs[g] is goroutine g's own
					runStreamAppenders(b, Config{Sync: SyncAlways}, n, per, func(s *Stream, g int, p []byte) error {
						ctx := context.Background()
						if !idem {
							_, err := s.AppendDurable(ctx, p, AppendOptions{})
							return err
						}
						seqs[g]++
						res, err := s.AppendIdempotent(ctx, Producer{ID: uint64(g + 1), Seq: seqs[g]}, []BatchRecord{{Payload: p}}, true)
						if err != nil {
							return err
						}
						return s.Flush(ctx, res.IDs[0])
					})
				}
				reportRate(b, n*per, n*per*256)
			})
		}
	}
}
