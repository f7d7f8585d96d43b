package server

import (
	"context"
	"errors"
	"fmt"

	"github.com/aof2/aof2/api/wire"
	"github.com/aof2/aof2/core"
	"github.com/aof2/aof2/host/cluster"
)

// ClusterNode is implemented by a Node that may run in a replicated
// cluster (host/cluster): when Clustered, appends and seals go through
// Raft, and linearizable reads through the leader. Clustered is fixed by
// the configuration; Cluster returns nil until the node has joined Raft.
type ClusterNode interface {
	Clustered() bool
	Cluster() *cluster.Node
}

// cluster returns the node's Raft member, or nil on a single node. A
// clustered node has none until it has joined Raft (and again once it
// closes): that is errNotReady, never a single node. A write that took
// the single-node path there would go into the store without a Raft
// index — a record no other member has, whose ext_id 0 also hides from
// the state machine what it already applied (it then applies the log
// again after it).
func (s *Server) cluster() (*cluster.Node, error) {
	cn := s.clustered()
	if cn == nil {
		return nil, nil
	}
	if c := cn.Cluster(); c != nil {
		return c, nil
	}
	return nil, errNotReady
}

// clustered returns the node as a cluster member when its configuration
// makes it one (joined or not), else nil.
func (s *Server) clustered() ClusterNode {
	if cn, ok := s.node.(ClusterNode); ok && cn.Clustered() {
		return cn
	}
	return nil
}

// clusterAppend proposes es through Raft and returns their ids once a
// majority committed them and this node (the leader) applied them. The
// records are then durable on a majority: there is no non-durable append
// in a cluster. ext_id is the Raft index there, so clients may not set it.
func (s *Server) clusterAppend(ctx context.Context, c *cluster.Node, id core.StreamID, es []entry) ([]core.RecordID, error) {
	if err := checkEntries(id, es, s.opts.MaxRecordSize); err != nil {
		return nil, err
	}
	recs := make([]cluster.Record, len(es))
	for i, e := range es {
		if e.ExtID != 0 {
			return nil, fmt.Errorf("stream %d: record %d: ext_id is the Raft index in a cluster and cannot be set: %w", id, i, ErrBadRequest)
		}
		recs[i] = cluster.Record{Timestamp: e.Timestamp, Payload: e.Payload}
	}
	a, err := c.Append(ctx, id, recs)
	if err != nil {
		var ae *cluster.AppendError
		if errors.As(err, &ae) && a != nil {
			return a.IDs, withAppended(a.IDs, err)
		}
		return nil, err
	}
	return a.IDs, nil
}

// errWatermarkInCluster refuses a coordinator watermark in a cluster,
// where the Raft index is the watermark.
var errWatermarkInCluster = fmt.Errorf("coordinator_watermark cannot be set in a cluster (the Raft index is the watermark): %w", ErrBadRequest)

// readBarrier makes a read linearizable when asked to: on a cluster's
// leader it waits until everything committed before it is applied here;
// a follower answers NOT_LEADER. A single node is linearizable already.
func (s *Server) readBarrier(ctx context.Context, consistency string) error {
	switch consistency {
	case "", wire.ConsistencyLocal:
		return nil
	case wire.ConsistencyLinearizable:
		c, err := s.cluster()
		if err != nil || c == nil {
			return err
		}
		return c.ReadBarrier(ctx)
	}
	return fmt.Errorf("consistency %q: want %q or %q: %w", consistency, wire.ConsistencyLocal, wire.ConsistencyLinearizable, ErrBadRequest)
}
