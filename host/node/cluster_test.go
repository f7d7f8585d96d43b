package node

import (
	"context"
	"net"
	"path/filepath"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/aof2/aof2/core"
	"github.com/aof2/aof2/core/segment"
	"github.com/aof2/aof2/core/types"
	"github.com/aof2/aof2/host/cluster"
)

// A cluster member's data directory opens only as a cluster member: alone,
// its store would take appends no majority holds, and recover a crash
// differently from the other nodes.
func TestClusterDirectoryOpensOnlyInItsCluster(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	dir := t.TempDir()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close())
	opts := Options{DataDir: dir, Core: core.Config{SegmentSize: segment.MinCapacity}, Registerer: prometheus.NewRegistry(),
		Cluster: &cluster.Config{NodeID: "n1", RaftAddr: addr, Peers: []cluster.Peer{{ID: "n1", Addr: addr}}, Dir: filepath.Join(dir, "raft")}}
	n, err := New(opts)
	require.NoError(t, err)
	require.NoError(t, n.Start(ctx))
	require.NotNil(t, n.Cluster())
	require.Eventually(t, func() bool { return n.Cluster().IsLeader() }, 20*time.Second, 10*time.Millisecond)
	_, err = n.Cluster().Append(ctx, 1, []cluster.Record{{Payload: []byte("x")}})
	require.NoError(t, err)
	require.NoError(t, n.Close(ctx))

	opts.Cluster, opts.Registerer = nil, prometheus.NewRegistry()
	alone, err := New(opts)
	require.NoError(t, err)
	err = alone.Start(ctx)
	var ce *types.ConfigError
	require.ErrorAs(t, err, &ce)
	require.Contains(t, err.Error(), "cluster member")
}
