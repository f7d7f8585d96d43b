package node

import (
	"context"
	"net"
	"path/filepath"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/aof2/aof2/core"
	"github.com/aof2/aof2/core/replica"
	"github.com/aof2/aof2/core/segment"
	"github.com/aof2/aof2/host/cluster"
	pluginhost "github.com/aof2/aof2/pluginapi/host"
)

// writerDir makes a single-node writer's data directory holding one
// stream with a durable record, and closes it.
func writerDir(t *testing.T, ctx context.Context) (string, Options) {
	dir := t.TempDir()
	opts := Options{DataDir: dir, Core: core.Config{SegmentSize: segment.MinCapacity}, Registerer: prometheus.NewRegistry()}
	n, err := New(opts)
	require.NoError(t, err)
	require.NoError(t, n.Start(ctx))
	s, err := n.Store().Stream(7)
	require.NoError(t, err)
	_, err = s.AppendDurable(ctx, []byte("acknowledged, never uploaded"), core.AppendOptions{})
	require.NoError(t, err)
	require.NoError(t, n.Close(ctx))
	return dir, opts
}

// requireRefusedThenOpens starts a node with bad, which must be refused
// with refusal and leave no marker in the directory, then with good, which
// must still start.
func requireRefusedThenOpens(t *testing.T, ctx context.Context, bad, good Options, refusal, marker string) {
	t.Helper()
	n, err := New(bad)
	require.NoError(t, err)
	require.ErrorContains(t, n.Start(ctx), refusal, "the start is refused")
	require.NoFileExists(t, filepath.Join(bad.DataDir, marker))

	good.Registerer = prometheus.NewRegistry()
	n, err = New(good)
	require.NoError(t, err)
	require.NoError(t, n.Start(ctx), "the directory still opens as before after the failed start")
	require.NoError(t, n.Close(ctx))
}

// TestFailedReplicaStartKeepsWriterDirectory: a start as a read replica on
// a writer's data directory is refused before anything is written (it
// holds streams and no replica marker), so the writer starts again once
// the mistake is corrected; before, the start wrote the marker first and
// the directory stayed a replica's even when the start failed.
func TestFailedReplicaStartKeepsWriterDirectory(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	dir, opts := writerDir(t, ctx)

	bad := opts
	bad.Registerer = prometheus.NewRegistry()
	bad.Plugin = &pluginhost.LaunchConfig{Path: filepath.Join(dir, "no-such-plugin"), StartTimeout: time.Second, Logger: hclog.NewNullLogger()}
	bad.Replica = &replica.Config{}
	requireRefusedThenOpens(t, ctx, bad, opts, "holds a writer's streams", ReplicaMarker)
}

// TestFailedClusterStartKeepsSingleNodeDirectory: the same for a start as
// a cluster member on a single node's data directory.
func TestFailedClusterStartKeepsSingleNodeDirectory(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	dir, opts := writerDir(t, ctx)

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close() // Raft cannot bind it
	addr := ln.Addr().String()
	bad := opts
	bad.Registerer = prometheus.NewRegistry()
	bad.Cluster = &cluster.Config{NodeID: "n1", RaftAddr: addr, Peers: []cluster.Peer{{ID: "n1", Addr: addr}}, Dir: filepath.Join(dir, "raft")}
	requireRefusedThenOpens(t, ctx, bad, opts, "holds a single node's streams", ClusterMarker)
}

// TestFailedReplicaStartOnAnEmptyDirectoryLeavesNoMarker: a replica start
// on an empty directory that fails before anything is written (the tier-2
// plugin does not launch) takes its marker back: the directory can be
// started as anything once the configuration is corrected.
func TestFailedReplicaStartOnAnEmptyDirectoryLeavesNoMarker(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	dir := t.TempDir()
	opts := Options{DataDir: dir, Core: core.Config{SegmentSize: segment.MinCapacity}, Registerer: prometheus.NewRegistry(),
		Plugin:  &pluginhost.LaunchConfig{Path: filepath.Join(dir, "no-such-plugin"), StartTimeout: time.Second, Logger: hclog.NewNullLogger()},
		Replica: &replica.Config{}}
	n, err := New(opts)
	require.NoError(t, err)
	require.Error(t, n.Start(ctx), "the replica start fails")
	require.NoFileExists(t, filepath.Join(dir, ReplicaMarker))
}
