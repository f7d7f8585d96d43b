package node

import (
	"fmt"
	"path/filepath"

	"github.com/aof2/aof2/core/types"
	"github.com/aof2/aof2/core/vfs"
)

// Files that say what a data directory is, beside the lock:
//
//   - ReplicaMarker: the directory is a read replica's (written at its
//     first start as one). Its manifests describe what it followed, not
//     the writer's history, so it never serves as the writer: it is
//     promoted (aof2-host promote), which restores the history in place.
//   - PromotePending: a promote is under way; nothing serves the
//     directory until a rerun of promote finished it.
const (
	ReplicaMarker  = "replica"
	PromotePending = "promote.pending"
)

// checkMarkers refuses to serve a directory a promote left unfinished,
// and a replica's directory as the writer.
func checkMarkers(dataDir string, replica bool) error {
	if exists(filepath.Join(dataDir, PromotePending)) {
		return &types.ConfigError{Key: "data_dir", Reason: fmt.Sprintf("%s: a promote did not finish (%s exists): rerun aof2-host promote", dataDir, PromotePending)}
	}
	if !replica && exists(filepath.Join(dataDir, ReplicaMarker)) {
		return &types.ConfigError{Key: "role", Reason: fmt.Sprintf("%s is a read replica's data directory (%s exists): start it with role = \"replica\", or make it the writer with aof2-host promote", dataDir, ReplicaMarker)}
	}
	return nil
}

// markReplica records that dataDir is a read replica's.
func markReplica(dataDir string) error {
	path := filepath.Join(dataDir, ReplicaMarker)
	if exists(path) {
		return nil
	}
	if err := vfs.WriteFileAtomic(vfs.OS, path, []byte("aof2 read replica: promote with aof2-host promote\n")); err != nil {
		return err
	}
	return vfs.OS.SyncDir(dataDir)
}

func exists(path string) bool {
	_, err := vfs.OS.Stat(path)
	return err == nil
}
