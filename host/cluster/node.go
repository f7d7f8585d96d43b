package cluster

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/aof2/aof2/core"
	"github.com/aof2/aof2/core/types"
)

// Log store names for Config.LogStore.
const (
	// LogStoreAuto keeps the store the node's directory holds and gives
	// a new node LogStoreWAL.
	LogStoreAuto = "auto"
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
	// LogStore is LogStoreAuto (the default), LogStoreWAL or
	// LogStoreBolt. A node keeps the store it was created with
	// (chooseLogStore).
	LogStore string
	// Raft tunes the library; nil takes raft.DefaultConfig(). LocalID,
	// NotifyCh, Logger and BatchApplyCh are set by the node.
	Raft *raft.Config
	// Tiering, when set, records the leader's uploads on this node
	// (tiering.go): the node's coordinator, when it has a tier 2.
	Tiering Tiering
	// Admission, when set, is asked before the leader proposes appends to
	// a stream: an error (a *core.WouldBlock while the node's tier 0 is
	// over its budget) refuses the request, nothing proposed.
	Admission func(core.StreamID) error
	// PeerReader, when set, reads records from other members' APIs: a
	// node that a snapshot finds behind (new, wiped, or down while the
	// log was compacted) copies what it lacks with it (catchup.go).
	PeerReader PeerReader
	// Faults, when set, injects network faults (fault runs).
	Faults *Faults
	// logs replaces the log store (benchmarks: an in-memory log).
	logs raft.LogStore
	// Registerer, when set, gets the aof_cluster_* metrics (metrics.go).
	Registerer prometheus.Registerer
	// FaultFile, when set, is a JSON file ({"cut": [raft addresses],
	// "loss": 0.05}) the node applies to its Faults whenever it changes:
	// how a fault run drives a node in another process. Testing only.
	FaultFile string
	Logger    hclog.Logger
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
	closer []io.Closer        // log and stable stores
	cancel context.CancelFunc // ends the FSM's waits, after raft stopped (or failed to)
	// closing is closed first thing in Close: requests are refused and
	// waits for proposals end.
	closing chan struct{}
	// proposals feeds the proposer (proposer.go).
	proposals chan *proposal
	wg        sync.WaitGroup // the leadership watcher, the fault-file watcher
	// contactWait bounds how long a follower waits to hear from a
	// leader (CatchUp): two heartbeat timeouts. Set by Open.
	contactWait time.Duration
	// commitTimeout is raft's CommitTimeout: the longest a follower goes
	// without an AppendEntries carrying the commit index. Set by Open.
	commitTimeout time.Duration
	// rewound counts the damaged tails Open rewound (damage.go); written
	// before Raft starts, read by the metrics.
	rewound atomic.Uint64

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
		c.LogStore = LogStoreAuto
	}
	if !slices.Contains([]string{LogStoreAuto, LogStoreBolt, LogStoreWAL}, c.LogStore) {
		return &types.ConfigError{Key: "cluster.log_store", Reason: fmt.Sprintf("%q: want %q, %q or %q", c.LogStore, LogStoreAuto, LogStoreBolt, LogStoreWAL)}
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

// ErrStoreNotReplayed is returned by Open for a store opened without
// core.Config.TailReplayed: after a crash it would seal its tail and give
// the records Raft replays other ids than the other nodes gave them.
var ErrStoreNotReplayed = errors.New("cluster: the store must be opened with core.Config.TailReplayed")

// Open starts Raft over store. The store must have been opened (recovered)
// by the caller, with core.Config.TailReplayed, and is closed by the
// caller after the node.
func Open(cfg Config, store *core.Store) (_ *Node, err error) {
	if err := cfg.check(); err != nil {
		return nil, err
	}
	if !store.TailReplayed() {
		return nil, ErrStoreNotReplayed
	}
	if cfg.Logger == nil {
		cfg.Logger = hclog.NewNullLogger()
	}
	if cfg.Faults == nil {
		cfg.Faults = NewFaults()
	}
	ctx, cancel := context.WithCancel(context.Background())
	n := &Node{cfg: cfg, log: cfg.Logger, store: store, cancel: cancel, closing: make(chan struct{}), proposals: make(chan *proposal, 1024)}
	defer func() {
		if err != nil {
			n.closeParts()
		}
	}()
	n.fsm = newFSM(ctx, store, cfg.Logger.Named("fsm"))
	n.fsm.onFail = n.stepDown
	n.fsm.tiering = cfg.Tiering
	n.fsm.peers, n.fsm.self = cfg.PeerReader, cfg.NodeID
	if err := os.MkdirAll(cfg.Dir, 0o755); err != nil {
		return nil, fmt.Errorf("cluster data directory: %w", err)
	}
	ls, stable, err := n.openLogStore()
	if err != nil {
		return nil, err
	}
	// The newest entries stay in memory: the leader sends each to every
	// follower, and reading it back from the store (and decoding it) per
	// follower cost about 5 % of the leader's CPU.
	logs, err := raft.NewLogCache(logCacheEntries, ls)
	if err != nil {
		return nil, err
	}
	n.logs = logs
	files, err := raft.NewFileSnapshotStoreWithLogger(cfg.Dir, 2, cfg.Logger.Named("snapshots"))
	if err != nil {
		return nil, fmt.Errorf("raft snapshot store: %w", err)
	}
	snaps := restorableSnapshots{SnapshotStore: files, logs: logs}
	ln, err := net.Listen("tcp", cfg.RaftAddr)
	if err != nil {
		return nil, fmt.Errorf("raft listen on %s: %w", cfg.RaftAddr, err)
	}
	layer := &faultLayer{Listener: ln, self: raft.ServerAddress(cfg.RaftAddr), faults: cfg.Faults}
	n.trans = raft.NewNetworkTransportWithConfig(&raft.NetworkTransportConfig{
		Stream: layer, MaxPool: 3, Timeout: 10 * time.Second, Logger: cfg.Logger.Named("transport"),
		MaxRPCsInFlight: rpcsInFlight,
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
	n.contactWait, n.commitTimeout = 2*rc.HeartbeatTimeout, rc.CommitTimeout
	if err := n.rewindDamagedTails(ctx, snaps); err != nil {
		return nil, err
	}
	exists, err := raft.HasExistingState(logs, stable, snaps)
	if err != nil {
		return nil, fmt.Errorf("raft state: %w", err)
	}
	if n.raft, err = raft.NewRaft(rc, n.fsm, logs, stable, snaps, n.trans); err != nil {
		// raft logs the restore's error and returns its own ("failed to
		// load any existing snapshots"): say why.
		if rerr := n.fsm.restoreErr(); rerr != nil {
			return nil, fmt.Errorf("start raft: %w: restore the newest snapshot: %w", err, rerr)
		}
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
	if cfg.Registerer != nil {
		if err := cfg.Registerer.Register(newCollector(n)); err != nil {
			return nil, fmt.Errorf("cluster metrics: %w", err)
		}
	}
	n.wg.Add(2)
	go n.watchLeadership(notify)
	go n.proposeLoop()
	if cfg.FaultFile != "" {
		n.wg.Add(1)
		go func() {
			defer n.wg.Done()
			cfg.Faults.watchFile(n.closing, cfg.FaultFile, n.log.Named("faults"))
		}()
	}
	return n, nil
}

// watchLeadership runs becameLeader each time this node becomes leader,
// in a goroutine of its own so that raft, which blocks on the notify
// channel, is never held up by it; losing leadership cancels it. It stops
// when the node closes.
func (n *Node) watchLeadership(notify <-chan bool) {
	defer n.wg.Done()
	var cancelLeader context.CancelFunc
	stop := func() {
		if cancelLeader != nil {
			cancelLeader()
		}
	}
	defer stop()
	for {
		select {
		case <-n.closing:
			return
		case leader := <-notify:
			stop()
			if leader {
				ctx, cancel := context.WithCancel(context.Background())
				cancelLeader = cancel
				n.wg.Add(1)
				go func() {
					defer n.wg.Done()
					n.becameLeader(ctx)
				}()
			}
		}
	}
}

// becameLeader waits for a barrier (so that reads see every committed
// entry), then announces this node's client addresses in the log.
func (n *Node) becameLeader(ctx context.Context) {
	term := n.term()
	// Retried while this node leads the term: until it applies, the
	// node serves no linearizable read and its coordinator uploads and
	// deletes nothing.
	for {
		_, err := n.wait(ctx, barrierFuture{n.raft.Barrier(enqueueTimeout)})
		if err == nil {
			break
		}
		n.log.Warn("leader barrier failed", "term", term, "error", err)
		if !n.IsLeader() || n.term() != term {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-n.closing:
			return
		case <-time.After(100 * time.Millisecond):
		}
	}
	n.mu.Lock()
	n.mu.readyTerm = term
	n.mu.Unlock()
	if addr, ok := n.fsm.member(n.cfg.NodeID); ok && addr == n.cfg.API {
		return
	}
	c := command{kind: kindMember, member: member{ID: n.cfg.NodeID, Addr: n.cfg.API}}
	if _, err := n.wait(ctx, n.raft.Apply(c.encode(), enqueueTimeout)); err != nil && ctx.Err() == nil {
		n.log.Warn("announce the client address", "error", err)
	}
}

// stepDown hands leadership away once this node stopped applying: its
// clients would get only errors from it.
func (n *Node) stepDown() {
	if n.IsLeader() {
		ctx, cancel := context.WithTimeout(context.Background(), enqueueTimeout)
		defer cancel()
		if err := n.waitFuture(ctx, n.raft.LeadershipTransfer()); err != nil {
			n.log.Warn("hand leadership away after applying stopped", "error", err)
		}
	}
}

func (n *Node) term() uint64 { return n.raft.CurrentTerm() }

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

// handOffTimeout bounds the leadership transfer of a leader that closes.
const handOffTimeout = 3 * time.Second

// handOff hands leadership to another voter before a leader closes, so
// that a planned stop costs the cluster a transfer (a round trip or two)
// instead of an election timeout. Close logs a failure: the election
// covers it.
func (n *Node) handOff() error {
	if n.raft == nil || !n.IsLeader() {
		return nil
	}
	f := n.raft.GetConfiguration()
	if f.Error() != nil || len(f.Configuration().Servers) < 2 {
		return nil
	}
	done := make(chan error, 1)
	go func() { done <- n.raft.LeadershipTransfer().Error() }()
	t := time.NewTimer(handOffTimeout)
	defer t.Stop()
	select {
	case err := <-done:
		return err
	case <-t.C:
		return errors.New("the leadership transfer did not finish in time")
	}
}

// rpcsInFlight turns hashicorp/raft's pipelined replication off: each
// follower has one AppendEntries in flight, which carries every entry the
// leader has (raft batches them). Pipelining deadlocks in raft v1.7.2: when
// a follower answers one pipelined request with Success=false, the
// response reader stops, the next send blocks for ever on the pipeline's
// full in-flight queue, and that follower gets no entry again (heartbeats
// go on, so no election heals it) while raft.Shutdown waits for the stuck
// sender. HashiCorp measured pipelining as no help with batching
// (hashicorp/raft#541); docs/adr-replication.md has our measurements.
const rpcsInFlight = 1

// errShutdownStuck: raft did not stop; Close gave up waiting.
var errShutdownStuck = errors.New("shutdown stuck")

// shutdownGrace is how long Close lets raft finish the apply in progress
// before it cancels the FSM's waits (an apply blocked on backpressure;
// the log replays it on restart).
var shutdownGrace = 10 * time.Second

func (n *Node) closeParts() error {
	if err := n.handOff(); err != nil {
		n.log.Warn("hand leadership over before closing; the others will elect", "error", err)
	}
	close(n.closing)
	var errs []error
	if n.raft != nil {
		done := make(chan error, 1)
		go func() { done <- n.raft.Shutdown().Error() }()
		t := time.NewTimer(shutdownGrace)
		select {
		case err := <-done:
			errs = append(errs, err)
		case <-t.C:
			n.log.Warn("raft did not stop within the grace period; cancelling the apply in progress")
			n.cancel()
			t.Reset(shutdownGrace)
			select {
			case err := <-done:
				errs = append(errs, err)
			case <-t.C:
				// Its stores stay open: closing them under a raft still
				// running could lose what it writes. The process exits
				// next; the log replays what was cut.
				return fmt.Errorf("cluster node: %w: raft did not stop within %v of its apply being cancelled", errShutdownStuck, shutdownGrace)
			}
		}
		t.Stop()
	}
	n.cancel()
	n.wg.Wait()
	if n.trans != nil {
		errs = append(errs, n.trans.Close())
	}
	for _, c := range n.closer {
		errs = append(errs, c.Close())
	}
	return errors.Join(errs...)
}
