package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/coreos/go-systemd/v22/daemon"
	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
	"github.com/mattn/go-isatty"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/aof2/aof2/core/replica"
	"github.com/aof2/aof2/core/segment"
	"github.com/aof2/aof2/host/cluster"
	"github.com/aof2/aof2/host/config"
	"github.com/aof2/aof2/host/node"
	"github.com/aof2/aof2/host/server"
	"github.com/aof2/aof2/host/streamlabels"
	"github.com/aof2/aof2/host/telemetry"
	"github.com/aof2/aof2/internal/buildinfo"
)

// shutdownGrace bounds how long SIGTERM waits for in-flight requests.
const shutdownGrace = 30 * time.Second

// runServe runs a node behind the client API until SIGTERM/SIGINT: the
// listeners come up first (so /healthz answers and /readyz says "not yet"
// during recovery), then the node recovers and starts tiering, then
// /readyz turns ready. On a signal it stops accepting, lets in-flight
// requests finish, flushes and closes the store, and stops the plugin.
func runServe(ctx context.Context, e *cmdEnv) error {
	takeover := e.flags.Bool("takeover", false, "claim the tier-2 prefix at the next epoch before starting, as `aof2-host takeover` does: the previous writer is fenced at its next tier-2 write (docs/adr-fencing.md). Not with role = \"replica\".")
	cfg, err := loadServeConfig(e)
	if err != nil {
		return err
	}
	if *takeover && (cfg.IsReplica() || !cfg.Tier2Enabled()) {
		return usagef("-takeover claims the tier-2 prefix as its writer: it needs a tier 2 and role = \"writer\"")
	}
	logger := newLogger(cfg, e)
	// SIGHUP reloads what may change (reload.go) instead of ending the
	// process; one arriving before the node is ready waits for it.
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))

	build := buildinfo.Read()
	reg.MustRegister(buildInfoMetric(build))
	stopTracing, err := telemetry.Setup(ctx, "aof2-host", build.Version, logger.Named("telemetry"))
	if err != nil {
		return err
	}
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = stopTracing(ctx) // flush the last spans, bounded
	}()

	opts, err := nodeOptions(cfg, reg, logger)
	if err == nil && cfg.Clustered() {
		opts.Cluster, opts.ClusterJoin = clusterConfig(cfg), cfg.Cluster.Join
		if opts.ClusterClient, err = memberClientOptions(cfg); err != nil {
			return err
		}
	}
	opts.Takeover = *takeover
	if err != nil {
		return err
	}
	n, err := node.New(opts)
	if err != nil {
		return err
	}
	tlsCfg, err := cfg.TLSConfig()
	if err != nil {
		return err
	}
	var certs *certReloader
	if tlsCfg != nil {
		certs = &certReloader{}
		tlsCfg = certs.wrap(tlsCfg)
	}
	sopts := cfg.ServerOptions()
	sopts.TLS, sopts.Gatherer, sopts.Registerer, sopts.Logger = tlsCfg, streamlabels.Cap(reg, cfg.Listen.MetricsMaxStreams), reg, logger.Named("server")
	srv, err := server.New(n, sopts)
	if err != nil {
		return err
	}
	serveErr := make(chan error, 3)
	var addrs []string
	fields := []any{"version", build.Version}
	if cfg.Listen.GRPC != "" {
		l, err := net.Listen("tcp", cfg.Listen.GRPC)
		if err != nil {
			return fmt.Errorf("listen.grpc: %w", err)
		}
		addrs = append(addrs, "grpc="+l.Addr().String())
		fields = append(fields, "grpc", l.Addr().String())
		go func() { serveErr <- srv.ServeGRPC(l) }()
	}
	if cfg.Listen.HTTP != "" {
		l, err := net.Listen("tcp", cfg.Listen.HTTP)
		if err != nil {
			return fmt.Errorf("listen.http: %w", err)
		}
		addrs = append(addrs, "http="+l.Addr().String())
		fields = append(fields, "http", l.Addr().String())
		go func() { serveErr <- srv.ServeHTTP(l) }()
	}
	if cfg.Listen.Admin != "" {
		l, err := net.Listen("tcp", cfg.Listen.Admin)
		if err != nil {
			return fmt.Errorf("listen.admin: %w", err)
		}
		addrs = append(addrs, "admin="+l.Addr().String())
		fields = append(fields, "admin", l.Addr().String())
		go func() { serveErr <- srv.ServeAdmin(l) }()
	}
	// The banner: tests and scripts wait for it to learn the bound ports.
	banner, jsonLogs := bannerLogger(cfg, e)
	banner.Info("serving", append(fields, "data_dir", cfg.DataDir, "tier2_plugin", cfg.Tier2.Plugin)...)
	if !jsonLogs {
		fmt.Fprintf(e.stdout, "aof2-host %s serving %v data=%s\n", build, addrs, cfg.DataDir)
	}

	started := make(chan error, 1)
	startCtx, cancelStart := context.WithCancel(ctx) // a start that waits (a rejoin) ends when serving fails
	defer cancelStart()
	go func() { started <- n.Start(startCtx) }()

	var runErr error
	select {
	case err := <-started:
		if err != nil && ctx.Err() != nil && errors.Is(err, context.Canceled) {
			// SIGTERM/SIGINT while starting: a stop, not a failure.
			logger.Info("shutting down before the node was ready", "reason", context.Cause(ctx), "start", err)
			break
		}
		if err != nil {
			runErr = fmt.Errorf("start: %w", err)
			break
		}
		banner.Info("ready", "streams", len(n.Store().Streams()))
		if !jsonLogs {
			fmt.Fprintln(e.stdout, "aof2-host ready")
		}
		sdNotify(logger, daemon.SdNotifyReady+"\nSTATUS=serving")
		if c := n.Cluster(); c != nil {
			actx, stopAnnounce := context.WithCancel(ctx)
			announced := make(chan struct{})
			defer func() { stopAnnounce(); <-announced }()
			go func() {
				defer close(announced)
				announce(actx, cfg, c, logger.Named("cluster"))
			}()
		}
		r := &reloader{args: e.args, started: cfg, last: cfg, logger: logger, node: n, srv: srv, cert: certs}
	serving:
		for {
			select {
			case <-hup:
				sdNotify(logger, daemon.SdNotifyReloading+"\n"+monotonicUsec())
				r.reload()
				sdNotify(logger, daemon.SdNotifyReady+"\nSTATUS=serving")
			case <-ctx.Done():
				logger.Info("shutting down", "reason", context.Cause(ctx))
				break serving
			case err := <-serveErr:
				runErr = fmt.Errorf("serve: %w", err)
				break serving
			}
		}
	case err := <-serveErr:
		runErr = fmt.Errorf("serve: %w", err)
		cancelStart()
		<-started
	}
	sdNotify(logger, daemon.SdNotifyStopping)
	sctx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		logger.Warn("shutdown of the client API did not finish cleanly", "error", err)
	}
	if err := n.Close(sctx); err != nil {
		runErr = errors.Join(runErr, fmt.Errorf("close: %w", err))
	}
	if runErr == nil {
		logger.Info("stopped")
	}
	return runErr
}

func newLogger(cfg *config.Config, e *cmdEnv) hclog.Logger {
	return hclog.New(&hclog.LoggerOptions{Name: "aof2", Level: cfg.HCLogLevel(), Output: e.stderr, JSONFormat: cfg.JSONLogs(stderrIsTerminal(e))})
}

func stderrIsTerminal(e *cmdEnv) bool {
	f, ok := e.stderr.(*os.File)
	return ok && isatty.IsTerminal(f.Fd())
}

// bannerLogger logs serve's two banner lines ("serving" with the bound
// addresses, "ready"), which scripts and tests read, whatever log_level
// says: the log's own format and output at level info. With JSON logs
// they are JSON lines on stderr and stdout stays empty, so nothing plain
// lands among the JSON when both streams reach one journal; with text
// logs serve also prints them plainly on stdout (jsonLogs false).
func bannerLogger(cfg *config.Config, e *cmdEnv) (banner hclog.Logger, jsonLogs bool) {
	jsonLogs = cfg.JSONLogs(stderrIsTerminal(e))
	return hclog.New(&hclog.LoggerOptions{Name: "aof2", Level: hclog.Info, Output: e.stderr, JSONFormat: jsonLogs}), jsonLogs
}

// nodeOptions turns the loaded configuration into the node's.
func nodeOptions(cfg *config.Config, reg prometheus.Registerer, logger hclog.Logger) (node.Options, error) {
	o := node.Options{DataDir: cfg.DataDir, Core: cfg.CoreConfig(), Coordinator: cfg.CoordinatorConfig(), Registerer: reg, Logger: logger}
	if cfg.Tier2Enabled() {
		launch, err := cfg.PluginLaunch()
		if err != nil {
			return o, err
		}
		o.Plugin = &launch
		o.Tier2 = cfg.Tier2Config()
	}
	if cfg.IsReplica() {
		o.Replica = &replica.Config{Interval: cfg.Replica.PollInterval, ListInterval: cfg.Replica.ListInterval, SegmentSize: cfg.Segment.Size}
	}
	return o, nil
}

func maxRecordSize(cfg *config.Config) int { return int(segment.MaxRecordSize(cfg.Segment.Size)) }

// loadConfigFile loads the host configuration an admin command works with:
// the file (path, else $AOF2_CONFIG, else ./aof2.hcl when present), the
// AOF2_* environment, and dataDir when set.
func loadConfigFile(path, dataDir string) (*config.Config, error) {
	var args []string
	if path != "" {
		args = []string{"-config", path}
	}
	if dataDir != "" {
		args = append(args, "-data-dir", dataDir)
	}
	cfg, err := config.Load(args, os.Environ(), config.SkipPluginLookup())
	if err != nil {
		return nil, usageError{err}
	}
	return cfg, nil
}

// withNode opens the node of the target's data directory (offline: no host
// may be running on it), runs fn and closes the node.
func withNode(ctx context.Context, t *target, e *cmdEnv, fn func(*node.Node) error, adjust ...func(*node.Options) error) (err error) {
	cfg, err := loadConfigFile(t.config, t.dataDir)
	if err != nil {
		return err
	}
	if _, err := os.Stat(cfg.DataDir); err != nil {
		return fmt.Errorf("data directory: %w", err)
	}
	if why := clusterMember(cfg); why != "" {
		return usagef("%s is a cluster member's data directory (%s): an offline command would change its store outside the Raft log "+
			"and make it differ from the other members; run it against the running member with -addr (docs/adr-replication.md#a-damaged-member)", cfg.DataDir, why)
	}
	logger := hclog.New(&hclog.LoggerOptions{Name: "aof2", Level: hclog.Warn, Output: e.stderr})
	opts, err := nodeOptions(cfg, prometheus.NewRegistry(), logger)
	if err != nil {
		return err
	}
	for _, f := range adjust {
		if err := f(&opts); err != nil {
			return err
		}
	}
	n, err := node.New(opts)
	if err != nil {
		return err
	}
	if err := n.Start(ctx); err != nil {
		return err
	}
	defer func() { err = errors.Join(err, n.Close(context.Background())) }()
	return fn(n)
}

// clusterMember says why cfg's data directory belongs to a cluster member
// ("" when it does not): the configuration names the node, or the
// directory holds a Raft log (the configuration may not have been given).
func clusterMember(cfg *config.Config) string {
	if cfg.Clustered() {
		return "cluster.node_id is set"
	}
	dir := cmp.Or(cfg.Cluster.Data, filepath.Join(cfg.DataDir, "raft"))
	if _, err := os.Stat(dir); err == nil {
		return "it holds the Raft directory " + dir
	}
	return ""
}

// clusterConfig is the Raft member's configuration (serve only: offline
// commands never join Raft).
func clusterConfig(cfg *config.Config) *cluster.Config {
	cl := cfg.Cluster
	c := &cluster.Config{NodeID: cl.NodeID, RaftAddr: cl.RaftAddr, Dir: cl.Data, LogStore: cl.LogStore,
		API: cluster.APIAddr{GRPC: cmp.Or(cl.AdvertiseGRPC, cfg.Listen.GRPC), HTTP: cmp.Or(cl.AdvertiseHTTP, cfg.Listen.HTTP)}}
	if c.Dir == "" {
		c.Dir = filepath.Join(cfg.DataDir, "raft")
	}
	rc := raft.DefaultConfig()
	rc.HeartbeatTimeout, rc.ElectionTimeout, rc.LeaderLeaseTimeout = cl.ElectionTimeout, cl.ElectionTimeout, cl.ElectionTimeout/2
	rc.SnapshotThreshold, rc.SnapshotInterval, rc.TrailingLogs = uint64(cl.SnapshotThreshold), cl.SnapshotInterval, uint64(cl.TrailingLogs)
	c.Raft = rc
	// Fault runs drive a node's transport through this file (testing only).
	c.FaultFile = os.Getenv("AOF2_TEST_RAFT_FAULT_FILE")
	for _, p := range cl.Peers {
		id, addr, _ := strings.Cut(p, "=")
		c.Peers = append(c.Peers, cluster.Peer{ID: id, Addr: addr})
	}
	return c
}
