package cluster

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"
	raftwal "github.com/hashicorp/raft-wal"

	"github.com/aof2/aof2/core"
	"github.com/aof2/aof2/core/types"
)

// Log store names for Config.LogStore.
const (
	LogStoreBolt = "boltdb"
	LogStoreWAL  = "wal"
)

// Peer is one voter of the initial cluster.
type Peer struct {
	ID   string
	Addr string // Raft address
}

// Config configures a Node.
type Config struct {
	// NodeID names this node in the cluster; it never changes.
	NodeID string
	// RaftAddr is the address Raft listens on and peers dial.
	RaftAddr string
	// API is where this node serves clients: followers redirect appends
	// to the leader's.
	API APIAddr
	// Peers bootstraps a new cluster: every voter, this node included,
	// identical on every node. Without Peers the node waits to be added
	// to an existing cluster (cluster add on the leader).
	Peers []Peer
	// Dir holds Raft's own files: log store, stable store, snapshots.
	Dir string
	// LogStore is LogStoreBolt (default) or LogStoreWAL.
	LogStore string
	// Raft tunes the library; nil takes raft.DefaultConfig(). LocalID,
	// NotifyCh, Logger and BatchApplyCh are set by the node.
	Raft *raft.Config
	// Faults, when set, injects network faults (fault runs).
	Faults *Faults
	Logger hclog.Logger
}

// Node is one member of a Raft group whose state machine is the store.
type Node struct {
	cfg    Config
	log    hclog.Logger
	store  *core.Store
	raft   *raft.Raft
	fsm    *fsm
	trans  *raft.NetworkTransport
	logs   raft.LogStore
	closer []io.Closer // log and stable stores
	cancel context.CancelFunc
	wg     sync.WaitGroup // the leadership watcher

	mu struct {
		sync.Mutex
		// readyTerm is the term in which this node, as leader, saw its
		// first barrier applied: reads may use the commit index from then.
		readyTerm uint64
		closed    bool
	}
}

func (c *Config) check() error {
	switch {
	case c.NodeID == "":
		return &types.ConfigError{Key: "cluster.node_id", Reason: "required"}
	case c.RaftAddr == "":
		return &types.ConfigError{Key: "cluster.raft_addr", Reason: "required"}
	case c.Dir == "":
		return &types.ConfigError{Key: "cluster.data", Reason: "required"}
	}
	if c.LogStore == "" {
		c.LogStore = LogStoreBolt
	}
	if c.LogStore != LogStoreBolt && c.LogStore != LogStoreWAL {
		return &types.ConfigError{Key: "cluster.log_store", Reason: fmt.Sprintf("%q: want %q or %q", c.LogStore, LogStoreBolt, LogStoreWAL)}
	}
	if len(c.Peers) > 0 {
		self := false
		for _, p := range c.Peers {
			self = self || (p.ID == c.NodeID && p.Addr == c.RaftAddr)
		}
		if !self {
			return &types.ConfigError{Key: "cluster.peers", Reason: fmt.Sprintf("must list this node (%s at %s)", c.NodeID, c.RaftAddr)}
		}
	}
	return nil
}

// Open starts Raft over store. The store must have been opened (recovered)
// by the caller, who closes it after the node.
func Open(cfg Config, store *core.Store) (_ *Node, err error) {
	if err := cfg.check(); err != nil {
		return nil, err
	}
	if cfg.Logger == nil {
		cfg.Logger = hclog.NewNullLogger()
	}
	if cfg.Faults == nil {
		cfg.Faults = NewFaults()
	}
	ctx, cancel := context.WithCancel(context.Background())
	n := &Node{cfg: cfg, log: cfg.Logger, store: store, cancel: cancel}
	defer func() {
		if err != nil {
			n.closeParts()
		}
	}()
	n.fsm = newFSM(ctx, store, cfg.Logger.Named("fsm"))
	if err := os.MkdirAll(cfg.Dir, 0o755); err != nil {
		return nil, fmt.Errorf("cluster data directory: %w", err)
	}
	logs, stable, err := n.openLogStore()
	if err != nil {
		return nil, err
	}
	n.logs = logs
	snaps, err := raft.NewFileSnapshotStoreWithLogger(cfg.Dir, 2, cfg.Logger.Named("snapshots"))
	if err != nil {
		return nil, fmt.Errorf("raft snapshot store: %w", err)
	}
	ln, err := net.Listen("tcp", cfg.RaftAddr)
	if err != nil {
		return nil, fmt.Errorf("raft listen on %s: %w", cfg.RaftAddr, err)
	}
	layer := &faultLayer{Listener: ln, self: raft.ServerAddress(cfg.RaftAddr), faults: cfg.Faults}
	n.trans = raft.NewNetworkTransportWithConfig(&raft.NetworkTransportConfig{
		Stream: layer, MaxPool: 3, Timeout: 10 * time.Second, Logger: cfg.Logger.Named("transport"),
	})
	rc := raft.DefaultConfig()
	if cfg.Raft != nil {
		c := *cfg.Raft
		rc = &c
	}
	notify := make(chan bool, 16)
	rc.LocalID = raft.ServerID(cfg.NodeID)
	rc.Logger = cfg.Logger.Named("raft")
	rc.NotifyCh = notify
	rc.BatchApplyCh = true
	exists, err := raft.HasExistingState(logs, stable, snaps)
	if err != nil {
		return nil, fmt.Errorf("raft state: %w", err)
	}
	if n.raft, err = raft.NewRaft(rc, n.fsm, logs, stable, snaps, n.trans); err != nil {
		return nil, fmt.Errorf("start raft: %w", err)
	}
	if !exists && len(cfg.Peers) > 0 {
		var servers []raft.Server
		for _, p := range cfg.Peers {
			servers = append(servers, raft.Server{ID: raft.ServerID(p.ID), Address: raft.ServerAddress(p.Addr), Suffrage: raft.Voter})
		}
		if err := n.raft.BootstrapCluster(raft.Configuration{Servers: servers}).Error(); err != nil && !errors.Is(err, raft.ErrCantBootstrap) {
			return nil, fmt.Errorf("bootstrap the cluster: %w", err)
		}
	}
	n.wg.Add(1)
	go n.watchLeadership(ctx, notify)
	return n, nil
}

func (n *Node) openLogStore() (raft.LogStore, raft.StableStore, error) {
	switch n.cfg.LogStore {
	case LogStoreWAL:
		dir := filepath.Join(n.cfg.Dir, "wal")
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, nil, fmt.Errorf("raft-wal directory: %w", err)
		}
		w, err := raftwal.Open(dir, raftwal.WithLogger(n.log.Named("wal")))
		if err != nil {
			return nil, nil, fmt.Errorf("raft-wal log store: %w", err)
		}
		n.closer = append(n.closer, w)
		return w, w, nil
	default:
		b, err := raftboltdb.New(raftboltdb.Options{Path: filepath.Join(n.cfg.Dir, "raft.db")})
		if err != nil {
			return nil, nil, fmt.Errorf("raft-boltdb log store: %w", err)
		}
		n.closer = append(n.closer, b)
		return b, b, nil
	}
}

// watchLeadership announces this node's client address each time it
// becomes leader (after a barrier, so that its reads see every committed
// entry). It stops when ctx is cancelled (Close).
func (n *Node) watchLeadership(ctx context.Context, notify <-chan bool) {
	defer n.wg.Done()
	for {
		select {
		case <-ctx.Done():
			return
		case leader := <-notify:
			if leader {
				n.becameLeader(ctx)
			}
		}
	}
}

func (n *Node) becameLeader(ctx context.Context) {
	term := n.term()
	if err := n.raft.Barrier(10 * time.Second).Error(); err != nil {
		n.log.Warn("leader barrier failed", "term", term, "error", err)
		return
	}
	n.mu.Lock()
	n.mu.readyTerm = term
	n.mu.Unlock()
	if addr, ok := n.fsm.member(n.cfg.NodeID); ok && addr == n.cfg.API {
		return
	}
	c := command{kind: kindMember, member: member{ID: n.cfg.NodeID, Addr: n.cfg.API}}
	if err := n.raft.Apply(c.encode(), 10*time.Second).Error(); err != nil && ctx.Err() == nil {
		n.log.Warn("announce the client address", "error", err)
	}
}

func (n *Node) term() uint64 {
	var t uint64
	_, _ = fmt.Sscan(n.raft.Stats()["term"], &t)
	return t
}

// Close stops Raft and the node's goroutines; the store stays open.
func (n *Node) Close() error {
	n.mu.Lock()
	if n.mu.closed {
		n.mu.Unlock()
		return nil
	}
	n.mu.closed = true
	n.mu.Unlock()
	return n.closeParts()
}

func (n *Node) closeParts() error {
	var errs []error
	if n.raft != nil {
		// Shutdown waits for the apply in progress; cancelling first ends
		// one blocked on backpressure (the log replays it on restart).
		n.cancel()
		errs = append(errs, n.raft.Shutdown().Error())
	} else {
		n.cancel()
	}
	n.wg.Wait()
	if n.trans != nil {
		errs = append(errs, n.trans.Close())
	}
	for _, c := range n.closer {
		errs = append(errs, c.Close())
	}
	return errors.Join(errs...)
}
