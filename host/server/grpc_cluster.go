package server

import (
	"context"
	"fmt"

	aof2v1 "github.com/aof2/aof2/api/proto/aof2/v1"
	"github.com/aof2/aof2/host/cluster"
)

// errNotClustered answers the cluster RPCs on a single-node host.
var errNotClustered = fmt.Errorf("this host runs single-node (no cluster block): %w", ErrBadRequest)

func (a *adminService) clusterNode() (*cluster.Node, error) {
	c, err := a.s.cluster()
	if err == nil && c == nil {
		err = errNotClustered
	}
	return c, err
}

func (a *adminService) ClusterStatus(context.Context, *aof2v1.ClusterStatusRequest) (*aof2v1.ClusterStatusResponse, error) {
	c, err := a.clusterNode()
	if err != nil {
		return nil, err
	}
	st := c.Status()
	resp := &aof2v1.ClusterStatusResponse{NodeId: st.NodeID, State: st.State, Term: st.Term,
		LeaderId: st.LeaderID, LeaderGrpc: st.Leader.GRPC, LeaderHttp: st.Leader.HTTP,
		CommitIndex: st.CommitIndex, LastIndex: st.LastIndex, AppliedIndex: st.AppliedIndex,
		LastContact: st.LastContact, ApplyFailed: st.ApplyFailed}
	for _, sv := range st.Servers {
		resp.Members = append(resp.Members, &aof2v1.ClusterMember{NodeId: sv.ID, RaftAddr: sv.RaftAddr,
			GrpcAddr: sv.API.GRPC, HttpAddr: sv.API.HTTP, Voter: sv.Voter})
	}
	return resp, nil
}

func (a *adminService) ClusterAddVoter(ctx context.Context, req *aof2v1.ClusterAddVoterRequest) (*aof2v1.ClusterAddVoterResponse, error) {
	c, err := a.clusterNode()
	if err != nil {
		return nil, err
	}
	if req.GetNodeId() == "" || req.GetRaftAddr() == "" {
		return nil, fmt.Errorf("node_id and raft_addr are required: %w", ErrBadRequest)
	}
	if err := c.AddVoter(ctx, req.GetNodeId(), req.GetRaftAddr(), cluster.APIAddr{GRPC: req.GetGrpcAddr(), HTTP: req.GetHttpAddr()}); err != nil {
		return nil, err
	}
	return &aof2v1.ClusterAddVoterResponse{}, nil
}

func (a *adminService) ClusterRemoveServer(ctx context.Context, req *aof2v1.ClusterRemoveServerRequest) (*aof2v1.ClusterRemoveServerResponse, error) {
	c, err := a.clusterNode()
	if err != nil {
		return nil, err
	}
	if req.GetNodeId() == "" {
		return nil, fmt.Errorf("node_id is required: %w", ErrBadRequest)
	}
	if err := c.RemoveServer(ctx, req.GetNodeId()); err != nil {
		return nil, err
	}
	return &aof2v1.ClusterRemoveServerResponse{}, nil
}

func (a *adminService) ClusterTransferLeader(ctx context.Context, req *aof2v1.ClusterTransferLeaderRequest) (*aof2v1.ClusterTransferLeaderResponse, error) {
	c, err := a.clusterNode()
	if err != nil {
		return nil, err
	}
	if err := c.TransferLeadership(ctx, req.GetNodeId()); err != nil {
		return nil, err
	}
	return &aof2v1.ClusterTransferLeaderResponse{}, nil
}
