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
//   - ClusterMarker: the directory is a cluster member's (written at its
//     first start as one). Its store is Raft's state machine: opened
//     outside the cluster it would take appends no majority holds, and a
//     recovery after a crash would seal its tail where the other nodes
//     did not, so every later id would differ. Only serve with its
//     cluster block opens it.
const (
	ReplicaMarker  = "replica"
	PromotePending = "promote.pending"
	ClusterMarker  = "cluster"
)

// checkMarkers refuses to serve a directory a promote left unfinished,
// a replica's directory as the writer, and a cluster member's outside its
// cluster.
func checkMarkers(dataDir string, replica, cluster bool) error {
	if !cluster && exists(filepath.Join(dataDir, ClusterMarker)) {
		return &types.ConfigError{Key: "cluster", Reason: fmt.Sprintf("%s is a cluster member's data directory (%s exists): only aof2-host serve with its cluster block opens it; run admin commands against the running node (-addr)", dataDir, ClusterMarker)}
	}
	if exists(filepath.Join(dataDir, PromotePending)) {
		return &types.ConfigError{Key: "data_dir", Reason: fmt.Sprintf("%s: a promote did not finish (%s exists): rerun aof2-host promote", dataDir, PromotePending)}
	}
	if !replica && exists(filepath.Join(dataDir, ReplicaMarker)) {
		return &types.ConfigError{Key: "role", Reason: fmt.Sprintf("%s is a read replica's data directory (%s exists): start it with role = \"replica\", or make it the writer with aof2-host promote", dataDir, ReplicaMarker)}
	}
	// A replica or a cluster member starts from an empty directory: one
	// that holds a writer's (or a single node's) streams and no marker
	// would be relabelled by the start, and its records not uploaded yet
	// would be lost to a later promote or rejoin.
	if replica && !exists(filepath.Join(dataDir, ReplicaMarker)) && holdsStreams(dataDir) {
		return &types.ConfigError{Key: "role", Reason: fmt.Sprintf("%s holds a writer's streams and is not a read replica's (%s is missing): a replica starts from an empty data directory", dataDir, ReplicaMarker)}
	}
	if cluster && !exists(filepath.Join(dataDir, ClusterMarker)) && holdsStreams(dataDir) {
		return &types.ConfigError{Key: "cluster", Reason: fmt.Sprintf("%s holds a single node's streams and is not a cluster member's (%s is missing): a member starts from an empty data directory and takes its records from the cluster", dataDir, ClusterMarker)}
	}
	return nil
}

// holdsStreams reports whether dataDir has a stream directory.
func holdsStreams(dataDir string) bool {
	names, err := vfs.OS.List(filepath.Join(dataDir, "streams"))
	return err == nil && len(names) > 0
}

// markReplica records that dataDir is a read replica's.
func markReplica(dataDir string) error {
	return mark(dataDir, ReplicaMarker, "aof2 read replica: promote with aof2-host promote\n")
}

// markCluster records that dataDir is a cluster member's.
func markCluster(nodeID string) func(string) error {
	return func(dataDir string) error {
		return mark(dataDir, ClusterMarker, "aof2 cluster member "+nodeID+": open it only with aof2-host serve and its cluster block\n")
	}
}

// markFresh runs markFn and returns name when the marker did not exist
// before (the caller removes it again if its start fails), "" otherwise.
func markFresh(dataDir, name string, markFn func(string) error) (string, error) {
	had := exists(filepath.Join(dataDir, name))
	if err := markFn(dataDir); err != nil {
		return "", err
	}
	if had {
		return "", nil
	}
	return name, nil
}

// unmark removes a marker a failed start wrote.
func unmark(dataDir, name string) error {
	if err := vfs.OS.Remove(filepath.Join(dataDir, name)); err != nil && !vfs.IsNotExist(err) {
		return err
	}
	return vfs.OS.SyncDir(dataDir)
}

func mark(dataDir, name, text string) error {
	path := filepath.Join(dataDir, name)
	if exists(path) {
		return nil
	}
	if err := vfs.WriteFileAtomic(vfs.OS, path, []byte(text)); err != nil {
		return err
	}
	return vfs.OS.SyncDir(dataDir)
}

func exists(path string) bool {
	_, err := vfs.OS.Stat(path)
	return err == nil
}
