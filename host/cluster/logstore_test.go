package cluster

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/hashicorp/raft"
	raftwal "github.com/hashicorp/raft-wal"
	"github.com/stretchr/testify/require"

	"github.com/aof2/aof2/core/types"
)

func TestChooseLogStore(t *testing.T) {
	tests := []struct {
		name   string
		held   []string // stores whose files are in the directory
		want   string
		got    string
		badKey string // the ConfigError's key, when refused
	}{
		{name: "new node, auto", want: LogStoreAuto, got: LogStoreWAL},
		{name: "new node, boltdb", want: LogStoreBolt, got: LogStoreBolt},
		{name: "new node, wal", want: LogStoreWAL, got: LogStoreWAL},
		{name: "boltdb node, auto", held: []string{LogStoreBolt}, want: LogStoreAuto, got: LogStoreBolt},
		{name: "wal node, auto", held: []string{LogStoreWAL}, want: LogStoreAuto, got: LogStoreWAL},
		{name: "boltdb node, boltdb", held: []string{LogStoreBolt}, want: LogStoreBolt, got: LogStoreBolt},
		{name: "boltdb node asked for wal", held: []string{LogStoreBolt}, want: LogStoreWAL, badKey: "cluster.log_store"},
		{name: "wal node asked for boltdb", held: []string{LogStoreWAL}, want: LogStoreBolt, badKey: "cluster.log_store"},
		{name: "both", held: []string{LogStoreBolt, LogStoreWAL}, want: LogStoreAuto, badKey: "cluster.data"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			for _, s := range tt.held {
				p := filepath.Join(dir, logStoreFiles[s])
				if s == LogStoreWAL {
					require.NoError(t, os.Mkdir(p, 0o755))
				} else {
					require.NoError(t, os.WriteFile(p, nil, 0o644))
				}
			}
			got, err := chooseLogStore(dir, tt.want)
			if tt.badKey == "" {
				require.NoError(t, err)
				require.Equal(t, tt.got, got)
				return
			}
			var ce *types.ConfigError
			require.ErrorAs(t, err, &ce)
			require.Equal(t, tt.badKey, ce.Key)
		})
	}
}

// TestWALTailTruncationSurvivesARestart is the case that made raft-wal
// v0.4.0 unusable here (hashicorp/raft-wal#31, fixed in v0.4.1): a
// follower whose uncommitted tail a new leader truncates, killed and
// restarted, found a sealed segment without an index and panicked.
func TestWALTailTruncationSurvivesARestart(t *testing.T) {
	dir := t.TempDir()
	open := func() *raftwal.WAL {
		w, err := raftwal.Open(dir)
		require.NoError(t, err)
		return w
	}
	w := open()
	var logs []*raft.Log
	for i := uint64(1); i <= 20; i++ {
		logs = append(logs, &raft.Log{Index: i, Term: 1, Type: raft.LogCommand, Data: []byte{byte(i)}})
	}
	require.NoError(t, w.StoreLogs(logs))
	require.NoError(t, w.DeleteRange(16, 20))
	require.NoError(t, w.StoreLogs([]*raft.Log{{Index: 16, Term: 2, Type: raft.LogCommand, Data: []byte{99}}}))
	require.NoError(t, w.Close())

	w = open()
	defer w.Close()
	last, err := w.LastIndex()
	require.NoError(t, err)
	require.Equal(t, uint64(16), last)
	var got raft.Log
	for i := uint64(1); i <= 16; i++ {
		require.NoError(t, w.GetLog(i, &got), "index %d", i)
	}
	require.Equal(t, uint64(2), got.Term)
	require.Equal(t, []byte{99}, got.Data)
}

// TestWALEntriesBelowTheFirstIndexAreGone: after the compaction that
// follows a snapshot, the log store no longer gives out the compacted
// entries, so the leader sends a lagging node the snapshot.
func TestWALEntriesBelowTheFirstIndexAreGone(t *testing.T) {
	w, err := raftwal.Open(t.TempDir())
	require.NoError(t, err)
	defer w.Close()
	logs := walLogs{w}
	var entries []*raft.Log
	for i := uint64(1); i <= 20; i++ {
		entries = append(entries, &raft.Log{Index: i, Term: 1, Type: raft.LogCommand, Data: []byte{byte(i)}})
	}
	require.NoError(t, logs.StoreLogs(entries))
	require.NoError(t, logs.DeleteRange(1, 12))
	first, err := logs.FirstIndex()
	require.NoError(t, err)
	require.Equal(t, uint64(13), first)
	var got raft.Log
	for i := uint64(1); i <= 12; i++ {
		require.ErrorIs(t, logs.GetLog(i, &got), raft.ErrLogNotFound, "index %d", i)
	}
	for i := uint64(13); i <= 20; i++ {
		require.NoError(t, logs.GetLog(i, &got), "index %d", i)
		require.Equal(t, i, got.Index)
	}
}
