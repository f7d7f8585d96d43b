package cluster

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"
	raftwal "github.com/hashicorp/raft-wal"
	bbolt "go.etcd.io/bbolt"

	"github.com/aof2/aof2/core/types"
)

// logCacheEntries is how many of the newest Raft entries the log cache
// keeps: with one entry in flight (proposer.go) followers ask for the
// last few, and an entry may be up to maxEntryBytes, so the cache holds
// at most 8 × 4 MiB.
const logCacheEntries = 8

// logStoreFiles is what each log store keeps in Config.Dir.
var logStoreFiles = map[string]string{LogStoreBolt: "raft.db", LogStoreWAL: "wal"}

// chooseLogStore resolves LogStoreAuto and refuses a store other than
// the one dir already holds. The log, the stable store (term and vote)
// and the snapshots belong together: opening an empty log beside them
// would forget entries this node stored for the leader and the vote it
// cast, which Raft's safety rests on. Changing a node's store is
// replacing the node (docs/adr-replication.md, "The log store").
func chooseLogStore(dir, want string) (string, error) {
	var held []string
	for _, s := range []string{LogStoreBolt, LogStoreWAL} {
		_, err := os.Stat(filepath.Join(dir, logStoreFiles[s]))
		switch {
		case err == nil:
			held = append(held, s)
		case !errors.Is(err, fs.ErrNotExist):
			return "", fmt.Errorf("raft log store: %w", err)
		}
	}
	switch {
	case len(held) > 1:
		return "", &types.ConfigError{Key: "cluster.data", Reason: fmt.Sprintf(
			"%s holds a boltdb log (raft.db) and a raft-wal log (wal/): move aside the one this node was not running on", dir)}
	case len(held) == 1 && want != LogStoreAuto && want != held[0]:
		return "", &types.ConfigError{Key: "cluster.log_store", Reason: fmt.Sprintf(
			"%q, but %s holds a %s log (%s): a node keeps the store it was created with; set %q or %q, or replace the node (deploy/README.md, \"Replace a dead node\")",
			want, dir, held[0], logStoreFiles[held[0]], held[0], LogStoreAuto)}
	case len(held) == 1:
		return held[0], nil
	case want == LogStoreAuto:
		return LogStoreWAL, nil
	}
	return want, nil
}

// walLogs is raft-wal as raft's LogStore, with one rule added: an entry
// below the first index is gone. raft-wal v0.4.2 moves the first index at
// a head truncation but goes on serving the entries still in the
// segment file, so a leader that compacted its log after a snapshot still
// found them and sent a rejoining node its whole history instead of the
// snapshot (TestWALEntriesBelowTheFirstIndexAreGone).
type walLogs struct{ *raftwal.WAL }

func (w walLogs) GetLog(index uint64, log *raft.Log) error {
	first, err := w.FirstIndex()
	if err != nil {
		return err
	}
	if index < first {
		return raft.ErrLogNotFound
	}
	return w.WAL.GetLog(index, log)
}

func (n *Node) openLogStore() (raft.LogStore, raft.StableStore, error) {
	if n.cfg.logs != nil {
		stable := raft.NewInmemStore()
		return n.cfg.logs, stable, nil
	}
	store, err := chooseLogStore(n.cfg.Dir, n.cfg.LogStore)
	if err != nil {
		return nil, nil, err
	}
	n.log.Info("raft log store", "store", store, "dir", n.cfg.Dir)
	switch store {
	case LogStoreWAL:
		dir := filepath.Join(n.cfg.Dir, logStoreFiles[LogStoreWAL])
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, nil, fmt.Errorf("raft-wal directory: %w", err)
		}
		w, err := raftwal.Open(dir, raftwal.WithLogger(n.log.Named("wal")))
		if err != nil {
			return nil, nil, fmt.Errorf("raft-wal log store: %w", err)
		}
		n.closer = append(n.closer, w)
		return walLogs{w}, w, nil
	default:
		// The freelist is rebuilt at open instead of written at every
		// commit (each commit is one entry batch): fewer pages per
		// commit, as Consul runs it (docs/adr-replication.md,
		// "Throughput, measured by CPU per record").
		b, err := raftboltdb.New(raftboltdb.Options{Path: filepath.Join(n.cfg.Dir, logStoreFiles[LogStoreBolt]),
			BoltOptions: &bbolt.Options{NoFreelistSync: true, FreelistType: bbolt.FreelistMapType}})
		if err != nil {
			return nil, nil, fmt.Errorf("raft-boltdb log store: %w", err)
		}
		n.closer = append(n.closer, b)
		return b, b, nil
	}
}
