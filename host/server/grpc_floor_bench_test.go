package server_test

import (
	"context"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	aof2v1 "github.com/aof2/aof2/api/proto/aof2/v1"
)

// echoLog answers Append with ids and stores nothing: the cost of a gRPC
// unary call on this machine, the floor under what the host can serve
// one call at a time (docs/performance.md).
type echoLog struct {
	aof2v1.UnimplementedLogServer
	next atomic.Uint64
}

func (e *echoLog) Append(_ context.Context, req *aof2v1.AppendRequest) (*aof2v1.AppendResponse, error) {
	ids := make([]uint64, len(req.GetRecords()))
	for i := range ids {
		ids[i] = e.next.Add(1)
	}
	return &aof2v1.AppendResponse{Ids: ids, Durable: true}, nil
}

// BenchmarkGRPCUnaryFloor: 64 clients, one 256 B record per Append, over
// one connection each or all over one, against a server that stores
// nothing. rec/s is the most any host could serve through plain unary
// calls here, whatever it does with the records.
func BenchmarkGRPCUnaryFloor(b *testing.B) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	srv := grpc.NewServer()
	aof2v1.RegisterLogServer(srv, &echoLog{})
	go func() { _ = srv.Serve(l) }()
	b.Cleanup(srv.Stop)
	const clients = 64
	for _, conns := range []int{clients, 1} {
		b.Run(fmt.Sprintf("clients=%d/conns=%d", clients, conns), func(b *testing.B) {
			logs := make([]aof2v1.LogClient, conns)
			for i := range logs {
				cc, err := grpc.NewClient(l.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
				if err != nil {
					b.Fatal(err)
				}
				b.Cleanup(func() { _ = cc.Close() })
				logs[i] = aof2v1.NewLogClient(cc)
			}
			req := &aof2v1.AppendRequest{StreamId: 1, Records: []*aof2v1.Record{{Payload: make([]byte, 256)}}}
			var left atomic.Int64
			left.Store(int64(b.N))
			var wg sync.WaitGroup
			var firstErr atomic.Value
			b.ResetTimer()
			for i := range clients {
				log := logs[i%conns]
				wg.Go(func() {
					for left.Add(-1) >= 0 {
						if _, err := log.Append(context.Background(), req); err != nil {
							firstErr.CompareAndSwap(nil, err)
							return
						}
					}
				})
			}
			wg.Wait()
			b.StopTimer()
			if err, _ := firstErr.Load().(error); err != nil {
				b.Fatal(err)
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "rec/s")
		})
	}
}
