package main

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/aof2/aof2/client"
	"github.com/aof2/aof2/host/cluster"
	"github.com/aof2/aof2/host/config"
	"github.com/hashicorp/go-hclog"
)

// The cluster commands talk to a running node (-addr); add, remove and
// transfer-leader are followed to the leader by the client.

func runClusterStatus(ctx context.Context, e *cmdEnv) error {
	t := targetFlags(e.flags)
	asJSON := e.flags.Bool("json", false, "print JSON")
	if _, err := e.parse(0, 0); err != nil {
		return err
	}
	if !t.online() {
		return usagef("cluster status needs -addr (or AOF2_ADDR): it asks a running node")
	}
	c, err := t.dial(ctx)
	if err != nil {
		return err
	}
	defer c.Close()
	st, err := c.ClusterStatus(ctx)
	if err != nil {
		return err
	}
	if *asJSON {
		enc := json.NewEncoder(e.stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(st)
	}
	fmt.Fprintf(e.stdout, "node %s: %s, term %d, commit %d, applied %d, last contact %s\n",
		st.NodeID, st.State, st.Term, st.CommitIndex, st.AppliedIndex, st.LastContact)
	if st.Leader.ID == "" {
		fmt.Fprintln(e.stdout, "leader: none known (an election may be running, or no quorum)")
	} else {
		fmt.Fprintf(e.stdout, "leader: %s (grpc %s, http %s)\n", st.Leader.ID, st.Leader.GRPC, st.Leader.HTTP)
	}
	if st.ApplyFailed != "" {
		fmt.Fprintf(e.stdout, "APPLYING STOPPED: %s\n", st.ApplyFailed)
	}
	w := tabwriter.NewWriter(e.stdout, 2, 4, 2, ' ', 0)
	fmt.Fprintln(w, "NODE\tRAFT\tGRPC\tHTTP\tVOTER")
	for _, m := range st.Members {
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%v\n", m.NodeID, m.RaftAddr, dash(m.GRPC), dash(m.HTTP), m.Voter)
	}
	return w.Flush()
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func runClusterAdd(ctx context.Context, e *cmdEnv) error {
	t := targetFlags(e.flags)
	args, err := e.parse(1, 1)
	if err != nil {
		return err
	}
	id, addr, ok := strings.Cut(args[0], "=")
	if !ok || id == "" || addr == "" {
		return usagef("want <node-id>=<raft host:port>, got %q", args[0])
	}
	return clusterOp(ctx, t, e, func(c clusterClient) error { return c.ClusterAddVoter(ctx, id, addr, client.APIAddr{}) },
		"%s added as a voter at %s\n", id, addr)
}

func runClusterRemove(ctx context.Context, e *cmdEnv) error {
	t := targetFlags(e.flags)
	args, err := e.parse(1, 1)
	if err != nil {
		return err
	}
	return clusterOp(ctx, t, e, func(c clusterClient) error { return c.ClusterRemoveServer(ctx, args[0]) },
		"%s removed from the cluster\n", args[0])
}

func runClusterTransfer(ctx context.Context, e *cmdEnv) error {
	t := targetFlags(e.flags)
	args, err := e.parse(0, 1)
	if err != nil {
		return err
	}
	to := ""
	if len(args) == 1 {
		to = args[0]
	}
	if to == "" {
		return clusterOp(ctx, t, e, func(c clusterClient) error { return c.ClusterTransferLeader(ctx, to) }, "leadership transferred\n")
	}
	return clusterOp(ctx, t, e, func(c clusterClient) error { return c.ClusterTransferLeader(ctx, to) }, "%s leads the cluster\n", to)
}

type clusterClient interface {
	ClusterAddVoter(ctx context.Context, id, addr string, api client.APIAddr) error
	ClusterRemoveServer(ctx context.Context, id string) error
	ClusterTransferLeader(ctx context.Context, id string) error
}

func clusterOp(ctx context.Context, t *target, e *cmdEnv, op func(clusterClient) error, done string, args ...any) error {
	if !t.online() {
		return usagef("%s needs -addr (or AOF2_ADDR) of a running member", e.cmd.name)
	}
	c, err := t.dial(ctx)
	if err != nil {
		return err
	}
	defer c.Close()
	if err := op(c); err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, done, args...)
	return nil
}

// announce makes sure the cluster knows this node: it asks a member to
// add it as a voter with its client addresses — the member cluster.join
// names while the node knows no leader (a new node), else the leader —
// once a second until the log holds its addresses, or ctx ends (serve's
// shutdown). Adding a voter that is already one only records the
// addresses, so a restarted or bootstrapped node asks harmlessly; a
// follower's addresses then show in cluster status.
func announce(ctx context.Context, cfg *config.Config, n *cluster.Node, logger hclog.Logger) {
	opts, err := memberClientOptions(cfg)
	if err != nil {
		logger.Error("cannot announce this node to the cluster", "error", err)
		return
	}
	api := client.APIAddr{GRPC: cmp.Or(cfg.Cluster.AdvertiseGRPC, cfg.Listen.GRPC), HTTP: cmp.Or(cfg.Cluster.AdvertiseHTTP, cfg.Listen.HTTP)}
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for !n.Announced() {
		target := n.Status().Leader.GRPC
		if n.IsLeader() {
			target = "" // it announces itself as leader (host/cluster)
		} else if target == "" {
			target = cfg.Cluster.Join
		}
		if target != "" {
			err := func() error {
				dctx, cancel := context.WithTimeout(ctx, 5*time.Second)
				defer cancel()
				c, err := client.Dial(dctx, target, opts...)
				if err != nil {
					return err
				}
				defer c.Close()
				return c.ClusterAddVoter(dctx, cfg.Cluster.NodeID, cfg.Cluster.RaftAddr, api)
			}()
			if err != nil {
				logger.Debug("announce this node to the cluster: will ask again", "through", target, "error", err)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
	logger.Info("the cluster knows this node's addresses", "grpc", api.GRPC, "http", api.HTTP)
}
