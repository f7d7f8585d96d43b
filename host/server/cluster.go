package server

import (
	"context"
	"errors"
	"fmt"

	"github.com/aof2/aof2/api/wire"
	"github.com/aof2/aof2/core"
	"github.com/aof2/aof2/host/cluster"
)

// ClusterNode is implemented by a Node that runs in a replicated cluster
// (host/cluster): appends and seals then go through Raft, and
// linearizable reads through the leader. Cluster returns nil until the
// node has joined Raft.
type ClusterNode interface {
	Cluster() *cluster.Node
}

// cluster returns the node's Raft member, or nil on a single node.
func (s *Server) cluster() *cluster.Node {
	if cn, ok := s.node.(ClusterNode); ok {
		return cn.Cluster()
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
		if c := s.cluster(); c != nil {
			return c.ReadBarrier(ctx)
		}
		return nil
	}
	return fmt.Errorf("consistency %q: want %q or %q: %w", consistency, wire.ConsistencyLocal, wire.ConsistencyLinearizable, ErrBadRequest)
}
