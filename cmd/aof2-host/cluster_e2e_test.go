package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/aof2/aof2/client"
	"github.com/aof2/aof2/core/types"
	"github.com/aof2/aof2/internal/testnet"
	"github.com/aof2/aof2/internal/testwait"
)

// A three-node cluster of real aof2-host processes on loopback, for the
// fault runs (cluster_faults_e2e_test.go). Each node keeps its ports and
// data directory across restarts; its Raft transport obeys a fault file
// the test writes (AOF2_TEST_RAFT_FAULT_FILE).

type clusterNode struct {
	id, raftAddr, grpc, http string
	dataDir, faultFile       string
	env                      []string  // this node's own AOF2_* settings, after the cluster's
	h                        *hostProc // nil while the node is down
}

type testCluster struct {
	t     *testing.T
	bin   string
	nodes []*clusterNode
	peers string
	env   []string // extra AOF2_* settings for every node
}

// retention reports whether the cluster runs with a retention policy.
func (c *testCluster) retention() bool {
	return slices.ContainsFunc(c.env, func(e string) bool { return strings.HasPrefix(e, "AOF2_RETENTION_") })
}

func newTestCluster(t *testing.T, bin string, size int, env ...string) *testCluster {
	t.Helper()
	return newTestClusterWith(t, bin, size, nil, env...)
}

// newTestClusterWith is newTestCluster with setup run on each node before
// it first starts (to place its data directory elsewhere, or give it
// settings of its own in n.env).
func newTestClusterWith(t *testing.T, bin string, size int, setup func(*clusterNode), env ...string) *testCluster {
	t.Helper()
	c := &testCluster{t: t, bin: bin, env: env}
	root := t.TempDir()
	var peers []string
	addrs := testnet.LoopbackAddrs(t, 3*size)
	for i := range size {
		n := &clusterNode{id: fmt.Sprintf("n%d", i+1), raftAddr: addrs[3*i], grpc: addrs[3*i+1], http: addrs[3*i+2]}
		n.dataDir = filepath.Join(root, n.id)
		n.faultFile = filepath.Join(root, n.id+".faults")
		if setup != nil {
			setup(n)
		}
		c.nodes = append(c.nodes, n)
		peers = append(peers, n.id+"="+n.raftAddr)
	}
	c.peers = strings.Join(peers, ",")
	for _, n := range c.nodes {
		c.start(n)
	}
	for _, n := range c.nodes {
		n.h.waitReady()
	}
	return c
}

func (c *testCluster) start(n *clusterNode) {
	c.t.Helper()
	env := append([]string{
		"AOF2_TIER2_ENABLED=false",
		"AOF2_CLUSTER_NODE_ID=" + n.id,
		"AOF2_CLUSTER_RAFT_ADDR=" + n.raftAddr,
		"AOF2_CLUSTER_PEERS=" + c.peers,
		"AOF2_TEST_RAFT_FAULT_FILE=" + n.faultFile,
	}, c.env...)
	env = append(env, n.env...)
	n.h = startHost(c.t, c.bin, env, "-data-dir", n.dataDir, "-listen-grpc", n.grpc, "-listen-http", n.http,
		"-segment-size", "1MiB", "-log-level", "warn")
}

func (c *testCluster) kill(n *clusterNode) {
	c.t.Helper()
	if n.h != nil {
		n.h.kill()
		n.h = nil
	}
}

// restart starts a node that is down and waits until it is ready.
func (c *testCluster) restart(n *clusterNode) {
	c.t.Helper()
	if n.h == nil {
		c.start(n)
		n.h.waitReady()
	}
}

func (c *testCluster) up() []*clusterNode {
	var out []*clusterNode
	for _, n := range c.nodes {
		if n.h != nil {
			out = append(out, n)
		}
	}
	return out
}

// setFaults writes a node's fault file: the Raft peers it cannot reach and
// the chance that a write on a connection fails.
func (c *testCluster) setFaults(n *clusterNode, cut []*clusterNode, loss float64) {
	c.t.Helper()
	doc := struct {
		Cut  []string `json:"cut"`
		Loss float64  `json:"loss"`
	}{Cut: []string{}, Loss: loss}
	for _, p := range cut {
		doc.Cut = append(doc.Cut, p.raftAddr)
	}
	b, err := json.Marshal(doc)
	require.NoError(c.t, err)
	tmp := n.faultFile + ".tmp"
	require.NoError(c.t, os.WriteFile(tmp, b, 0o644))
	require.NoError(c.t, os.Rename(tmp, n.faultFile))
}

// isolate cuts n off from every other node, both ways.
func (c *testCluster) isolate(n *clusterNode) {
	var others []*clusterNode
	for _, o := range c.nodes {
		if o != n {
			others = append(others, o)
			c.setFaults(o, []*clusterNode{n}, 0)
		}
	}
	c.setFaults(n, others, 0)
}

func (c *testCluster) heal() {
	for _, n := range c.nodes {
		c.setFaults(n, nil, 0)
	}
}

// status asks one node for its view; ok is false when it does not answer.
func (c *testCluster) status(ctx context.Context, n *clusterNode) (client.ClusterStatus, bool) {
	if n.h == nil {
		return client.ClusterStatus{}, false
	}
	cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	cl, err := client.Dial(cctx, n.grpc)
	if err != nil {
		return client.ClusterStatus{}, false
	}
	defer cl.Close()
	st, err := cl.ClusterStatus(cctx)
	return st, err == nil
}

// leader waits (bounded) until a running node says it leads.
func (c *testCluster) leader(ctx context.Context) *clusterNode {
	c.t.Helper()
	var l *clusterNode
	testwait.Until(c.t, 30*time.Second, 20*time.Millisecond, func() bool {
		for _, n := range c.up() {
			if st, ok := c.status(ctx, n); ok && st.State == "Leader" {
				l = n
				return true
			}
		}
		return false
	}, "a leader among the running nodes")
	return l
}

// readNode reads a stream from one node, whole, in pages. With
// retention, a read that finds its segment dropped starts over.
func readNode(ctx context.Context, t *testing.T, n *clusterNode, stream client.StreamID, retention bool) []client.Record {
	t.Helper()
	cl, err := client.Dial(ctx, n.grpc)
	require.NoError(t, err)
	defer cl.Close()
	var out []client.Record
	pos := client.AtStart()
	for {
		res, err := cl.Read(ctx, stream, pos, 10000)
		if errors.Is(err, client.ErrNotReady) {
			time.Sleep(20 * time.Millisecond)
			continue
		}
		if errors.Is(err, types.ErrNotFound) && retention {
			// Retention dropped the segment being read (a member applies
			// the Drop as it reads it): the stream starts later now.
			out, pos = nil, client.AtStart()
			time.Sleep(20 * time.Millisecond)
			continue
		}
		require.NoError(t, err)
		for _, r := range res.Records {
			r.Payload = append([]byte(nil), r.Payload...)
			out = append(out, r)
		}
		if res.End || len(res.Records) == 0 {
			return out
		}
		pos = res.Next
	}
}

// sameEverywhere waits (bounded) until every node holds the same records
// of each stream, and returns them.
func (c *testCluster) sameEverywhere(ctx context.Context, streams ...client.StreamID) map[client.StreamID][]client.Record {
	c.t.Helper()
	out := map[client.StreamID][]client.Record{}
	var diff string
	ok := false
	deadline := time.Now().Add(60 * time.Second)
	for !ok && time.Now().Before(deadline) {
		ok, diff = true, ""
		for _, s := range streams {
			want := readNode(ctx, c.t, c.nodes[0], s, c.retention())
			for _, n := range c.nodes[1:] {
				got := readNode(ctx, c.t, n, s, c.retention())
				if len(got) != len(want) {
					ok, diff = false, fmt.Sprintf("stream %d: %s holds %d records, %s %d\n%s", s, c.nodes[0].id, len(want), n.id, len(got),
						recordDiff(c.nodes[0].id, want, n.id, got))
					break
				}
				for i := range got {
					if got[i].ID != want[i].ID || got[i].Ordinal != want[i].Ordinal || got[i].ExtID != want[i].ExtID || string(got[i].Payload) != string(want[i].Payload) {
						c.t.Fatalf("stream %d record %d differs: %s has %v %q ext %d, %s has %v %q ext %d", s, i,
							c.nodes[0].id, want[i].ID, want[i].Payload, want[i].ExtID, n.id, got[i].ID, got[i].Payload, got[i].ExtID)
					}
				}
			}
			out[s] = want
		}
		if !ok {
			time.Sleep(100 * time.Millisecond)
		}
	}
	if !ok {
		c.logTails(ctx, 60)
	}
	require.True(c.t, ok, "the nodes did not converge within 60s: %s", diff)
	return out
}

// recordDiff describes where two nodes' copies of a stream part: the
// first position they differ at, with the records around it on each, and
// the payloads one holds that the other does not (or holds twice).
func recordDiff(an string, a []client.Record, bn string, b []client.Record) string {
	i := 0
	for i < min(len(a), len(b)) && a[i].ID == b[i].ID && string(a[i].Payload) == string(b[i].Payload) {
		i++
	}
	var sb strings.Builder
	fmt.Fprintf(&sb, "first difference at position %d\n", i)
	around := func(name string, rs []client.Record) {
		for j := max(0, i-2); j < min(len(rs), i+4); j++ {
			r := rs[j]
			fmt.Fprintf(&sb, "  %s[%d]: id %v ordinal %d ext %d %.40q\n", name, j, r.ID, r.Ordinal, r.ExtID, r.Payload)
		}
	}
	around(an, a)
	around(bn, b)
	count := func(rs []client.Record) map[string]int {
		m := map[string]int{}
		for _, r := range rs {
			m[string(r.Payload)]++
		}
		return m
	}
	ca, cb := count(a), count(b)
	for p, n := range ca {
		if cb[p] != n {
			fmt.Fprintf(&sb, "  %.40q: %d on %s, %d on %s\n", p, n, an, cb[p], bn)
		}
	}
	for p, n := range cb {
		if _, in := ca[p]; !in {
			fmt.Fprintf(&sb, "  %.40q: 0 on %s, %d on %s\n", p, an, n, bn)
		}
	}
	return sb.String()
}

// logTails logs what each running node says about itself: its Raft
// status, the last n lines it wrote to stderr, and then (it ends the
// node) the stacks of its Raft and cluster goroutines, which show where
// a node that stopped replicating or applying waits.
func (c *testCluster) logTails(ctx context.Context, n int) {
	c.t.Helper()
	for _, node := range c.nodes {
		if node.h == nil {
			c.t.Logf("%s: down", node.id)
			continue
		}
		st, ok := c.status(ctx, node)
		c.t.Logf("%s: status (answered %v): state %s term %d commit %d last %d applied %d last contact %s apply failed %q",
			node.id, ok, st.State, st.Term, st.CommitIndex, st.LastIndex, st.AppliedIndex, st.LastContact, st.ApplyFailed)
		lines := strings.Split(strings.TrimRight(node.h.stderr.String(), "\n"), "\n")
		c.t.Logf("%s: last %d of %d log lines:\n%s", node.id, min(n, len(lines)), len(lines), strings.Join(lines[max(0, len(lines)-n):], "\n"))
	}
	for _, node := range c.nodes {
		if node.h != nil {
			c.t.Logf("%s: goroutines in raft and the cluster package:\n%s", node.id, node.h.stacks("hashicorp/raft", "aof2/host/cluster"))
			node.h = nil
		}
	}
}

// clientFor dials a random node (down or not: the addresses never change,
// so writers need not look at which nodes run); the client follows the
// leader.
func (c *testCluster) clientFor(ctx context.Context, rng *rand.Rand) (*client.Client, error) {
	addr := c.nodes[rng.IntN(len(c.nodes))].grpc
	dctx, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
	defer cancel()
	return client.Dial(dctx, addr)
}
