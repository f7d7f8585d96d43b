// Package node assembles one AOF2 node from its parts — the tier-2 plugin
// under its supervisor, the remote store over it, the coordinator, and the
// store — in the order their dependencies require, and takes them apart in
// the reverse order. It owns the data directory's lock so that two hosts
// (or a host and an offline admin command that writes) never open the same
// directory. Recovery runs in Start, not in New, so that a host can serve
// /healthz and an unready /readyz while it recovers.
package node

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"sync/atomic"

	"github.com/hashicorp/go-hclog"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/aof2/aof2/client"
	"github.com/aof2/aof2/core"
	"github.com/aof2/aof2/core/coordinator"
	"github.com/aof2/aof2/core/replica"
	"github.com/aof2/aof2/core/restore"
	"github.com/aof2/aof2/core/tier2"
	"github.com/aof2/aof2/core/types"
	"github.com/aof2/aof2/core/vfs"
	"github.com/aof2/aof2/host/cluster"
	"github.com/aof2/aof2/host/dump"
	pluginhost "github.com/aof2/aof2/pluginapi/host"
)

// Options configure a Node. Registerer and Logger are filled into the
// component configs that leave them unset.
type Options struct {
	DataDir     string
	Core        core.Config
	Coordinator coordinator.Config
	// Plugin launches the tier-2 backend; nil runs without a tier 2.
	Plugin     *pluginhost.LaunchConfig
	Supervisor pluginhost.SupervisorConfig // Launch is taken from Plugin
	Tier2      tier2.Config
	// Replica, when set, runs the node as a read replica of the prefix's
	// writer (core/replica): Store, Remote, Writer, Registerer and Logger
	// are filled in. It needs a Plugin.
	Replica *replica.Config
	// Takeover claims the prefix at the next epoch before tiering starts
	// (serve -takeover; coordinator.Takeover). It needs a Plugin and no
	// Replica.
	Takeover bool
	// Cluster, when set, runs the node as a member of a replicated
	// cluster (host/cluster): the store is Raft's state machine, and
	// appends and seals go through the leader. With a Plugin, only the
	// leader uploads (coordinator.Cluster). Not with Replica or Takeover.
	Cluster *cluster.Config
	// ClusterClient is how a cluster member dials the others' client
	// APIs (a token) when a Raft snapshot finds its store behind and it
	// copies what it lacks (cluster.Config.PeerReader, unless set).
	ClusterClient []client.Option
	// ClusterJoin is the gRPC address of the member a joining node
	// enters the cluster through (cluster.join). A wiped node rejoining
	// from tier 2 asks it where each stream now starts (retention may
	// have dropped its first segments).
	ClusterJoin string
	Registerer  prometheus.Registerer
	Logger      hclog.Logger
}

// Node is one running data directory.
type Node struct {
	opts  Options
	log   hclog.Logger
	ready atomic.Bool

	mu struct {
		sync.Mutex
		lock   *dirLock
		sup    *pluginhost.Supervisor
		remote *tier2.Store
		coord  *coordinator.Coordinator
		store  *core.Store
		peers  *peerReader // a cluster member's, nil otherwise
		closed bool
		// follower runs while the node is a replica; stopFollow cancels
		// its Run and waits for it.
		follower   *replica.Follower
		stopFollow func()
	}
	// raft is the node's Raft member when it runs in a cluster: set in
	// Start and cleared in Close under mu, read without it (coordinator
	// jobs ask for it while Close waits for them).
	raft atomic.Pointer[cluster.Node]
}

// New validates the options; nothing is opened until Start.
func New(opts Options) (*Node, error) {
	if opts.DataDir == "" {
		return nil, &types.ConfigError{Key: "data_dir", Reason: "required"}
	}
	if opts.Logger == nil {
		opts.Logger = hclog.NewNullLogger()
	}
	if opts.Takeover && (opts.Replica != nil || opts.Plugin == nil) {
		return nil, &types.ConfigError{Key: "takeover", Reason: "claims the tier-2 prefix as its writer: needs a tier 2 and no replica role"}
	}
	if opts.Cluster != nil && (opts.Replica != nil || opts.Takeover) {
		return nil, &types.ConfigError{Key: "cluster", Reason: "a cluster node replicates through Raft: no replica role or takeover"}
	}
	if opts.Replica != nil && opts.Plugin == nil {
		return nil, &types.ConfigError{Key: "role", Reason: "a replica follows its writer from tier 2 and needs one configured"}
	}
	return &Node{opts: opts, log: opts.Logger}, nil
}

// Start locks the data directory, launches the plugin, recovers every
// stream and starts tiering. On error everything opened so far is closed.
func (n *Node) Start(ctx context.Context) (err error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.mu.closed {
		return core.ErrClosed
	}
	if n.mu.store != nil {
		return errors.New("node already started")
	}
	defer func() {
		if err != nil {
			n.closeLocked(context.Background())
		}
	}()
	o := n.opts
	if n.mu.lock, err = lockDir(o.DataDir); err != nil {
		return err
	}
	if err := checkMarkers(o.DataDir, o.Replica != nil, o.Cluster != nil); err != nil {
		return err
	}
	// A marker this start writes is taken back if the start fails: a
	// writer's (or a single node's) directory opened by mistake with
	// role = "replica" or a cluster block must open as before once the
	// configuration is corrected.
	var marked string
	defer func() {
		// Only while nothing was written under it: a member's Raft log or
		// a replica's followed segments keep the label.
		raftDir := filepath.Join(o.DataDir, "raft")
		if o.Cluster != nil && o.Cluster.Dir != "" {
			raftDir = o.Cluster.Dir
		}
		if err != nil && marked != "" && !holdsStreams(o.DataDir) && !exists(raftDir) {
			_ = unmark(o.DataDir, marked)
		}
	}()
	if o.Cluster != nil {
		if marked, err = markFresh(o.DataDir, ClusterMarker, markCluster(o.Cluster.NodeID)); err != nil {
			return fmt.Errorf("mark the data directory as a cluster member's: %w", err)
		}
	}
	if o.Replica != nil {
		if marked, err = markFresh(o.DataDir, ReplicaMarker, markReplica); err != nil {
			return fmt.Errorf("mark the data directory as a replica's: %w", err)
		}
	}
	cc := o.Coordinator
	cc.DataDir = o.DataDir
	cc.Registerer = or(cc.Registerer, o.Registerer)
	cc.Logger = orLog(cc.Logger, n.log.Named("coordinator"))
	if o.Plugin != nil {
		sc := o.Supervisor
		sc.Launch = *o.Plugin
		sc.Launch.Logger = orLog(sc.Launch.Logger, n.log.Named("plugin"))
		sc.Registerer = or(sc.Registerer, o.Registerer)
		sc.Logger = orLog(sc.Logger, n.log.Named("supervisor"))
		if n.mu.sup, err = pluginhost.NewSupervisor(ctx, sc); err != nil {
			return fmt.Errorf("start tier-2 plugin: %w", err)
		}
		if err := checkCapabilities(ctx, n.mu.sup, o.Replica != nil); err != nil {
			return err
		}
		tc := o.Tier2
		tc.Registerer = or(tc.Registerer, o.Registerer)
		tc.Logger = orLog(tc.Logger, n.log) // tier2.New names it "tier2"
		if n.mu.remote, err = tier2.New(n.mu.sup, tc); err != nil {
			return fmt.Errorf("tier 2: %w", err)
		}
		cc.Tier2 = n.mu.remote
	}
	if err := n.rejoinFromTier2(ctx); err != nil {
		return err
	}
	if pending, err := restore.Pending(vfs.OS, o.DataDir); err != nil {
		return fmt.Errorf("check for an unfinished restore: %w", err)
	} else if pending {
		return fmt.Errorf("%w (%s exists)", restore.ErrIncomplete, filepath.Join(o.DataDir, restore.StagingDir))
	}
	if o.Cluster != nil {
		// Seals the coordinator decides are Raft entries, so that every
		// node seals at the same record.
		cc.SealActive = func(s *core.Stream, id types.SegmentID) error {
			if c := n.Cluster(); c != nil {
				return c.SealActive(s, id)
			}
			return nil
		}
		// Only the leader uploads, and every node records an upload
		// when the log does (docs/adr-replication.md).
		cc.Cluster = &coordinator.Cluster{
			Leading: func() bool {
				c := n.Cluster()
				return c != nil && c.Leading()
			},
			RecordUpload: func(ctx context.Context, k types.SegmentKey, key, etag string) error {
				c := n.Cluster()
				if c == nil {
					return cluster.ErrNotLeader
				}
				return c.RecordUpload(ctx, k, key, etag)
			},
			RecordDrop: func(ctx context.Context, k types.SegmentKey, key string) error {
				c := n.Cluster()
				if c == nil {
					return cluster.ErrNotLeader
				}
				return c.RecordDrop(ctx, k, key)
			},
			LeadTerm: func() (uint64, bool) {
				c := n.Cluster()
				if c == nil {
					return 0, false
				}
				return c.LeadTerm()
			},
			CatchUp: func(ctx context.Context) error {
				c := n.Cluster()
				if c == nil {
					return cluster.ErrNoQuorum
				}
				return c.CatchUp(ctx)
			},
		}
	}
	var writer *replica.Writer
	if o.Replica != nil {
		cc.Replica = true
		writer = &replica.Writer{}
	}
	if n.mu.coord, err = coordinator.New(cc); err != nil {
		return err
	}
	sc := o.Core
	if writer != nil {
		sc.Follower = writer.Refusal
	}
	sc.Tiering = n.mu.coord
	// In a cluster, Raft's log gives back what a crash lost of the tail.
	sc.TailReplayed = o.Cluster != nil
	sc.RequireExtID = o.Cluster != nil // only the log writes to a member's store
	sc.Registerer = or(sc.Registerer, o.Registerer)
	sc.Logger = orLog(sc.Logger, n.log.Named("core"))
	if n.mu.store, err = core.Open(o.DataDir, sc); err != nil {
		return err
	}
	if o.Takeover {
		if err := n.takeover(ctx); err != nil {
			return err
		}
	}
	if err := n.mu.coord.Start(ctx, n.mu.store); err != nil {
		return err
	}
	if writer != nil {
		return n.startFollowing(ctx, writer)
	}
	if o.Cluster != nil {
		cfg := *o.Cluster
		cfg.Logger = orLog(cfg.Logger, n.log.Named("cluster"))
		cfg.Registerer = or(cfg.Registerer, o.Registerer)
		if n.mu.remote != nil {
			cfg.Tiering, cfg.Admission = n.mu.coord, n.mu.coord.Tier0Admission
		}
		if cfg.PeerReader == nil {
			n.mu.peers = newPeerReader(o.ClusterClient)
			cfg.PeerReader = n.mu.peers
		}
		c, err := cluster.Open(cfg, n.mu.store)
		if err != nil {
			return fmt.Errorf("join the cluster: %w", err)
		}
		n.raft.Store(c)
		n.ready.Store(true)
		return nil
	}
	if err := n.checkNotEmptyOverStreams(); err != nil {
		return err
	}
	for _, r := range n.mu.coord.Reconciliations() {
		if len(r.Lost) > 0 || len(r.Unknown) > 0 || r.Err != nil || r.Ahead != "" {
			n.log.Warn("tier-2 reconciliation found problems", "stream_id", uint64(r.Stream),
				"needs_recovery", len(r.Lost), "unknown_objects", len(r.Unknown), "tier2_ahead", r.Ahead, "error", r.Err)
		}
	}
	n.ready.Store(true)
	return nil
}

// Ready reports whether recovery has finished and the node serves.
func (n *Node) Ready() bool { return n.ready.Load() }

// Store is the open store, or nil before Start finished or after Close.
func (n *Node) Store() *core.Store {
	if !n.ready.Load() {
		return nil
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.mu.store
}

// Cluster is the node's Raft member, nil on a single node (and before
// Start). It implements server.ClusterNode.
func (n *Node) Cluster() *cluster.Node {
	if !n.ready.Load() {
		return nil
	}
	return n.raft.Load()
}

// Clustered reports whether the node runs in a cluster.
func (n *Node) Clustered() bool { return n.opts.Cluster != nil }

// Coordinator is the running coordinator (nil before Start).
func (n *Node) Coordinator() *coordinator.Coordinator {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.mu.coord
}

// Supervisor is the tier-2 plugin's supervisor (nil without tier 2).
func (n *Node) Supervisor() *pluginhost.Supervisor {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.mu.sup
}

// View is the online tier table.
func (n *Node) View() (*dump.Dump, error) {
	n.mu.Lock()
	st, c := n.mu.store, n.mu.coord
	n.mu.Unlock()
	if st == nil || !n.ready.Load() {
		return nil, fmt.Errorf("node is not ready: %w", core.ErrWouldBlock)
	}
	return dump.Live(st, c), nil
}

// Close flushes and closes the store, then stops tiering and the plugin,
// and releases the directory. Safe to call more than once.
func (n *Node) Close(ctx context.Context) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.mu.closed {
		return nil
	}
	n.mu.closed = true
	return n.closeLocked(ctx)
}

func (n *Node) closeLocked(ctx context.Context) error {
	n.ready.Store(false)
	var errs []error
	if n.mu.stopFollow != nil {
		n.mu.stopFollow()
		n.mu.stopFollow, n.mu.follower = nil, nil
	}
	// Raft before the store it applies to.
	if c := n.raft.Swap(nil); c != nil {
		errs = append(errs, c.Close())
	}
	if n.mu.peers != nil {
		errs = append(errs, n.mu.peers.Close())
		n.mu.peers = nil
	}
	// The store first: closing it flushes and it may still hydrate
	// through the coordinator.
	if n.mu.store != nil {
		errs = append(errs, n.mu.store.Close())
		n.mu.store = nil
	}
	if n.mu.coord != nil {
		errs = append(errs, n.mu.coord.Close())
		n.mu.coord = nil
	}
	if n.mu.sup != nil {
		errs = append(errs, n.mu.sup.Close(ctx))
		n.mu.sup = nil
	}
	n.mu.remote = nil
	if n.mu.lock != nil {
		errs = append(errs, n.mu.lock.release())
		n.mu.lock = nil
	}
	return errors.Join(errs...)
}

func or(a, b prometheus.Registerer) prometheus.Registerer {
	if a != nil {
		return a
	}
	return b
}

func orLog(a, b hclog.Logger) hclog.Logger {
	if a != nil {
		return a
	}
	return b
}

// checkNotEmptyOverStreams refuses to serve a data directory without
// streams over a prefix that holds some: it is a lost node's replacement,
// and what it needs is a restore, not a fresh start that would refuse
// those streams one append at a time.
func (n *Node) checkNotEmptyOverStreams() error {
	remote, known := n.mu.coord.RemoteStreams()
	if !known || len(remote) == 0 || len(n.mu.store.Streams()) > 0 {
		return nil
	}
	shown := remote
	if len(shown) > 5 {
		shown = shown[:5]
	}
	return fmt.Errorf("%w: the data directory %s holds no stream and tier 2 holds %d (%v…): rebuild it with `aof2-host restore` first (docs/adr-restore.md)",
		types.ErrNeedsRestore, n.opts.DataDir, len(remote), shown)
}
