package cluster

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/aof2/aof2/core"
	"github.com/aof2/aof2/internal/testnet"
)

// BenchmarkClusterAppend compares durable appends of one record per call
// from 64 concurrent callers: one node's store alone (the baseline), and
// a three-node cluster on loopback with each Raft log store — boltdb and
// raft-wal (design A: a separate log, every record written twice), and an
// in-memory log (the floor of design B, where the streams would be the
// log: no second write, but the segments' own flush per batch stays).
// Reports records/s and p50/p99 latency. AOF2_BENCH_CLIENTS and
// AOF2_BENCH_STREAMS (default 64 and 4) spread the callers.
//
//	go test -run '^$' -bench ClusterAppend -benchtime 20000x ./host/cluster
func BenchmarkClusterAppend(b *testing.B) {
	for _, size := range []int{256, 4096} {
		for _, mode := range []string{"single", LogStoreBolt, LogStoreWAL, "inmem"} {
			if f := os.Getenv("AOF2_BENCH_INFLIGHT"); f != "" {
				maxInflightEntries, _ = strconv.Atoi(f)
			}
			b.Run(fmt.Sprintf("%s/%dB", mode, size), func(b *testing.B) {
				clients := 64
				if v, err := strconv.Atoi(os.Getenv("AOF2_BENCH_CLIENTS")); err == nil {
					clients = v
				}
				streams := 4
				if v, err := strconv.Atoi(os.Getenv("AOF2_BENCH_STREAMS")); err == nil && v > 0 {
					streams = v
				}
				benchAppend(b, mode, size, clients, streams)
			})
		}
	}
}

// benchAppend: client w appends to stream w%streams+1.
func benchAppend(b *testing.B, mode string, size, clients, streams int) {
	payload := make([]byte, size)
	var appendOne func(ctx context.Context, stream core.StreamID) error
	if mode == "single" {
		st, err := core.Open(b.TempDir(), core.Config{SegmentSize: 64 << 20, TailReplayed: true})
		if err != nil {
			b.Fatal(err)
		}
		defer st.Close()
		appendOne = func(ctx context.Context, id core.StreamID) error {
			s, err := st.Stream(id)
			if err != nil {
				return err
			}
			_, err = s.AppendDurable(ctx, payload, core.AppendOptions{})
			return err
		}
	} else {
		c := newBenchCluster(b, mode)
		defer c.close()
		l := c.leader(b)
		appendOne = func(ctx context.Context, id core.StreamID) error {
			_, err := l.Append(ctx, id, []Record{{Payload: payload}})
			return err
		}
	}
	lat := make([]time.Duration, b.N)
	var next atomic.Int64
	var wg sync.WaitGroup
	ctx := context.Background()
	b.SetBytes(int64(size))
	b.ResetTimer()
	start := time.Now()
	for w := range clients {
		wg.Go(func() {
			for {
				i := next.Add(1) - 1
				if i >= int64(b.N) {
					return
				}
				t0 := time.Now()
				if err := appendOne(ctx, core.StreamID(w%streams+1)); err != nil {
					b.Error(err)
					return
				}
				lat[i] = time.Since(t0)
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "rec/s")
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
}

type benchCluster struct {
	nodes  []*Node
	stores []*core.Store
}

func newBenchCluster(b *testing.B, mode string) *benchCluster {
	c := &benchCluster{}
	var peers []Peer
	addrs := testnet.LoopbackAddrs(b, 3)
	for i := range addrs {
		peers = append(peers, Peer{ID: fmt.Sprintf("n%d", i+1), Addr: addrs[i]})
	}
	root := b.TempDir()
	for i := range addrs {
		st, err := core.Open(filepath.Join(root, peers[i].ID, "store"), core.Config{SegmentSize: 64 << 20, TailReplayed: true})
		if err != nil {
			b.Fatal(err)
		}
		cfg := Config{NodeID: peers[i].ID, RaftAddr: addrs[i], Peers: peers, Dir: filepath.Join(root, peers[i].ID, "raft"), LogStore: mode}
		if mode == "inmem" {
			cfg.LogStore, cfg.logs = LogStoreBolt, raft.NewInmemStore()
		}
		n, err := Open(cfg, st)
		if err != nil {
			b.Fatal(err)
		}
		c.nodes, c.stores = append(c.nodes, n), append(c.stores, st)
	}
	return c
}

func (c *benchCluster) leader(b *testing.B) *Node {
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		for _, n := range c.nodes {
			if n.IsLeader() && n.ReadBarrier(context.Background()) == nil {
				return n
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	b.Fatal("no leader")
	return nil
}

func (c *benchCluster) close() {
	for _, n := range c.nodes {
		_ = n.Close()
	}
	for _, st := range c.stores {
		_ = st.Close()
	}
}
