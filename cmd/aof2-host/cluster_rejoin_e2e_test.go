package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/aof2/aof2/client"
	"github.com/aof2/aof2/internal/testwait"
)

// scrape reads every series of metric name on h's /metrics (false: the
// scrape failed).
func scrape(h *hostProc, name string) ([]float64, bool) {
	resp, err := httpClient.Get(h.url("/metrics"))
	if err != nil {
		return nil, false
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, false
	}
	var out []float64
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, name+" ") && !strings.HasPrefix(line, name+"{") {
			continue
		}
		if v, err := strconv.ParseFloat(line[strings.LastIndexByte(line, ' ')+1:], 64); err == nil {
			out = append(out, v)
		}
	}
	return out, sc.Err() == nil
}

// scrapeSum sums every series of metric name on h's /metrics (false: the
// scrape failed).
func scrapeSum(h *hostProc, name string) (float64, bool) {
	vs, ok := scrape(h, name)
	sum := 0.0
	for _, v := range vs {
		sum += v
	}
	return sum, ok
}

// waitMetric waits (bounded) until metric name on h reaches at least v.
func waitMetric(t *testing.T, h *hostProc, name string, v float64) {
	t.Helper()
	testwait.Until(t, testwait.Default, 20*time.Millisecond, func() bool {
		got, ok := scrapeSum(h, name)
		return ok && got >= v
	}, "%s reaches %v", name, v)
}

// TestClusterWipedNodeRejoinsFromTier2: three real hosts over one fs tier
// 2, with Raft snapshots and log compaction every few dozen entries. A
// follower is killed and its data directory (store and Raft state)
// wiped; the others write on and compact their logs past everything it
// knew. It comes back with join instead of peers: it takes every
// segment tier 2 holds as cold (no bytes downloaded), Raft hands it the
// leader's snapshot, and it copies from a peer only what tier 2 does not
// hold yet. Then every node holds the same records with the same ids,
// ordinals and ext_ids, and the bytes copied from peers are a small part
// of the stream.
func TestClusterWipedNodeRejoinsFromTier2(t *testing.T) {
	bin := hostBinaries(t)
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	c := newTier2Cluster(t, bin, filepath.Join(t.TempDir(), "objects"))
	l := c.leader(ctx)
	cl, err := client.Dial(ctx, l.grpc)
	require.NoError(t, err)
	defer cl.Close()
	const stream = client.StreamID(9)
	writeBatches(ctx, t, cl, stream, 100) // 2,000 records, ≈ 8 MB: segments of 64 KiB doubling to 1 MiB
	waitMetric(t, l.h, "aof_cluster_tier_moves_total", 6)

	f := c.follower(l)
	c.wipe(f)
	writeBatches(ctx, t, cl, stream, 50)
	c.rejoin(ctx, f, l, cl, stream)
	writeBatches(ctx, t, cl, stream, 10)
	all := c.sameEverywhere(ctx, stream)
	require.Len(t, all[stream], 3240)
	c.copiedLittle(f, all[stream])
}

// newTier2Cluster starts three hosts over one fs tier 2 in objects, with
// Raft snapshots and log compaction every few dozen entries: a node
// away for a few appends is handed a snapshot.
func newTier2Cluster(t *testing.T, bin, objects string, env ...string) *testCluster {
	t.Helper()
	return newTestCluster(t, bin, 3, append([]string{"AOF2_TIER2_ENABLED=true", "AOF2_TIER2_SETTINGS_ROOT=" + objects,
		"AOF2_CLUSTER_SNAPSHOT_THRESHOLD=32", "AOF2_CLUSTER_SNAPSHOT_INTERVAL=100ms", "AOF2_CLUSTER_TRAILING_LOGS=8",
		"AOF2_COORDINATOR_SCAN_INTERVAL=20ms"}, env...)...)
}

// writeBatches appends n batches of 20 records of 4,000 bytes.
func writeBatches(ctx context.Context, t *testing.T, cl *client.Client, stream client.StreamID, n int) {
	t.Helper()
	payload := bytes.Repeat([]byte("r"), 4000)
	recs := make([][]byte, 20)
	for i := range recs {
		recs[i] = payload
	}
	for range n {
		_, err := cl.Append(ctx, stream, recs...)
		require.NoError(t, err)
	}
}

// follower is a running node other than l.
func (c *testCluster) follower(l *clusterNode) *clusterNode {
	c.t.Helper()
	for _, n := range c.up() {
		if n != l {
			return n
		}
	}
	c.t.Fatal("no running follower")
	return nil
}

// wipe kills n and removes its data directory (store and Raft state).
func (c *testCluster) wipe(n *clusterNode) {
	c.t.Helper()
	c.kill(n)
	require.NoError(c.t, os.RemoveAll(n.dataDir))
}

// rejoin starts wiped node n again with join (through the leader l)
// instead of peers, once l took a snapshot past everything written so
// far: the records of the active segment, which tier 2 cannot hold yet,
// must then come from a peer. Small appends to stream (one entry each,
// in that active segment) make the snapshot due.
func (c *testCluster) rejoin(ctx context.Context, n, l *clusterNode, cl *client.Client, stream client.StreamID) {
	c.t.Helper()
	written, ok := scrapeSum(l.h, "aof_cluster_commit_index")
	require.True(c.t, ok)
	for i := range 40 {
		_, err := cl.Append(ctx, stream, fmt.Appendf(nil, "small %d", i))
		require.NoError(c.t, err)
	}
	waitMetric(c.t, l.h, "aof_cluster_snapshot_index", written+1)
	n.env = []string{"AOF2_CLUSTER_PEERS=", "AOF2_CLUSTER_JOIN=" + l.grpc, "AOF2_LOG_LEVEL=info"}
	c.restart(n)
	c.t.Cleanup(func() {
		if c.t.Failed() && n.h != nil {
			c.t.Logf("%s (rejoined):\n%s", n.id, n.h.stderr)
		}
	})
}

// copiedLittle checks that rejoined node n copied from peers only a
// small part of recs, the stream as every node holds it (what tier 2
// holds is not copied), and uploaded nothing (a follower).
func (c *testCluster) copiedLittle(n *clusterNode, recs []client.Record) {
	c.t.Helper()
	total := 0.0
	for _, r := range recs {
		total += float64(len(r.Payload))
	}
	copied, ok := scrapeSum(n.h, "aof_cluster_catchup_bytes_total")
	require.True(c.t, ok)
	up, _ := scrapeSum(n.h, "aof_tier2_uploaded_bytes_total")
	c.t.Logf("the wiped node copied %.0f payload bytes from peers for a stream of %.0f (%.1f %%); it uploaded %.0f bytes",
		copied, total, 100*copied/total, up)
	require.Positive(c.t, copied, "the tail tier 2 did not hold came from a peer")
	require.Less(c.t, copied, total/2, "what tier 2 holds is not copied from peers")
	require.Zero(c.t, up, "a follower uploads nothing")
}
