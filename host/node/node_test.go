package node

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/aof2/aof2/core"
	"github.com/aof2/aof2/core/budget"
	"github.com/aof2/aof2/core/coordinator"
	"github.com/aof2/aof2/core/segment"
	"github.com/aof2/aof2/host/dump"
	"github.com/aof2/aof2/host/server"
	"github.com/aof2/aof2/internal/testbin"
	"github.com/aof2/aof2/pluginapi"
	pluginhost "github.com/aof2/aof2/pluginapi/host"
)

func buildFSPlugin(t *testing.T) string {
	t.Helper()
	return testbin.Path(t, "aof2-plugin-fs")
}

func TestMain(m *testing.M) { os.Exit(testbin.Run(m)) }

func testOptions(dir, bin string, reg prometheus.Registerer) Options {
	return Options{
		DataDir:     dir,
		Core:        core.Config{SegmentSize: segment.MinCapacity},
		Coordinator: coordinator.Config{ScanInterval: 10 * time.Millisecond, Tier0: budget.Config{MaxBytes: 4 * segment.MinCapacity, Policy: budget.PolicyTier2}},
		Plugin: &pluginhost.LaunchConfig{Path: bin, StartTimeout: 10 * time.Second, Logger: hclog.NewNullLogger(),
			Configure: pluginapi.ConfigureRequest{Config: map[string]string{"root": filepath.Join(dir, "tier2")}, StagingDir: dir}},
		Registerer: reg,
	}
}

// TestNodeLifecycle starts a node with the fs plugin as a real process,
// writes through several rollovers with a tiny tier-0 budget, waits until
// segments reach tier 2 and leave tier 0, and checks the online and the
// offline dump agree on where everything is, the directory lock, and a
// restart that reads everything back.
func TestNodeLifecycle(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a plugin binary")
	}
	bin := buildFSPlugin(t)
	t.Run("segments", func(t *testing.T) { nodeLifecycle(t, bin, false) })
	// Appends durable through the node WAL: the same tiering, and a
	// restart after a clean close that finds no WAL to replay.
	t.Run("node-wal", func(t *testing.T) { nodeLifecycle(t, bin, true) })
}

func nodeLifecycle(t *testing.T, bin string, nodeWAL bool) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	dir := t.TempDir()
	testOptions := func(dir, bin string, reg prometheus.Registerer) Options {
		o := testOptions(dir, bin, reg)
		o.Core.NodeWAL = nodeWAL
		return o
	}
	reg := prometheus.NewRegistry()
	n, err := New(testOptions(dir, bin, reg))
	require.NoError(t, err)
	require.False(t, n.Ready())
	require.Nil(t, n.Store())
	require.NoError(t, n.Start(ctx))
	require.True(t, n.Ready())

	locked, err := Locked(dir)
	require.NoError(t, err)
	require.True(t, locked)
	other, err := New(testOptions(dir, bin, prometheus.NewRegistry()))
	require.NoError(t, err)
	require.ErrorIs(t, other.Start(ctx), ErrLocked)

	s, err := n.Store().Stream(9)
	require.NoError(t, err)
	payload := bytes.Repeat([]byte("x"), 4000)
	const records = 3000 // ≈ 12 MiB: a dozen 1 MiB segments through a 4 MiB tier 0
	for i := range records {
		if i%100 == 0 {
			_, err := s.AppendDurable(ctx, payload, core.AppendOptions{})
			require.NoError(t, err)
			continue
		}
		_, err := s.AppendCtx(ctx, payload, core.AppendOptions{})
		require.NoError(t, err)
	}
	require.NoError(t, s.FlushAll(ctx))
	require.NoError(t, s.Seal(ctx))

	var d *dump.Dump
	require.Eventually(t, func() bool {
		d, err = n.View()
		require.NoError(t, err)
		return d.Tiers[2].Segments == len(d.Streams[0].Segments) && d.Tiers[0].Segments < d.Tiers[2].Segments
	}, time.Minute, 20*time.Millisecond, "every sealed segment reaches tier 2 and most leave tier 0")
	require.Equal(t, dump.Online, d.Source)
	require.Equal(t, uint64(records), d.Streams[0].Records)
	var total uint64
	for _, g := range d.Streams[0].Segments {
		total += g.Records
		require.True(t, g.Sealed)
	}
	require.Equal(t, uint64(records), total)
	var buf bytes.Buffer
	require.NoError(t, d.WriteTable(&buf))
	require.Contains(t, buf.String(), "stream 9:")
	require.Empty(t, d.Problems)

	require.NoError(t, n.Close(ctx))
	require.NoError(t, n.Close(ctx), "idempotent")
	locked, err = Locked(dir)
	require.NoError(t, err)
	require.False(t, locked)
	if nodeWAL {
		walSegs, err := os.ReadDir(filepath.Join(dir, "wal", "segments"))
		require.NoError(t, err)
		require.Empty(t, walSegs, "a clean close removes the node WAL")
	}

	off, err := dump.FromDataDir(ctx, nil, dir)
	require.NoError(t, err)
	require.Equal(t, dump.Offline, off.Source)
	require.Len(t, off.Streams, 1)
	require.Len(t, off.Streams[0].Segments, len(d.Streams[0].Segments))
	require.Equal(t, d.Tiers[2].Segments, off.Tiers[2].Segments)
	for i, g := range off.Streams[0].Segments {
		want := d.Streams[0].Segments[i]
		require.Equal(t, want.ID, g.ID)
		require.Equal(t, want.BaseRecord, g.BaseRecord, "offline base of segment %d (cold stub or file)", g.ID)
		require.Equal(t, want.Records, g.Records, "offline records of segment %d", g.ID)
	}
	require.Equal(t, uint64(records), off.Streams[0].Records)
	buf.Reset()
	require.NoError(t, off.WriteJSON(&buf))
	var back dump.Dump
	require.NoError(t, json.Unmarshal(buf.Bytes(), &back))
	require.Equal(t, off.Tiers, back.Tiers)

	n, err = New(testOptions(dir, bin, prometheus.NewRegistry()))
	require.NoError(t, err)
	require.NoError(t, n.Start(ctx))
	defer n.Close(ctx)
	s, err = n.Store().Lookup(9)
	require.NoError(t, err)
	r, err := s.NewReader(core.AtStart())
	require.NoError(t, err)
	defer r.Close()
	for i := range records {
		rec, err := r.NextCtx(ctx)
		require.NoError(t, err, "record %d", i)
		require.Equal(t, payload, rec.Payload)
	}
}

// TestHydrateRangeRefused: from after to is a bad request, not a
// hydration of nothing that reports success.
func TestHydrateRangeRefused(t *testing.T) {
	var n Node
	err := n.Hydrate(context.Background(), 1, 3, 2, nil)
	require.ErrorIs(t, err, server.ErrBadRequest)
	require.Contains(t, err.Error(), "segment 3 is after segment 2")
}
