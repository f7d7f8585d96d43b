package client

import (
	"context"

	aof2v1 "github.com/aof2/aof2/api/proto/aof2/v1"
)

// ClusterStatus is a cluster node's view of its cluster.
type ClusterStatus struct {
	NodeID string `json:"node_id"`
	// State is Follower, Candidate, Leader or Shutdown.
	State        string          `json:"state"`
	Term         uint64          `json:"term"`
	Leader       Leader          `json:"leader"`
	CommitIndex  uint64          `json:"commit_index"`
	LastIndex    uint64          `json:"last_index"`
	AppliedIndex uint64          `json:"applied_index"`
	LastContact  string          `json:"last_contact"`
	Members      []ClusterMember `json:"members"`
	// ApplyFailed says why the node stopped applying entries, if it did.
	ApplyFailed string `json:"apply_failed,omitempty"`
}

// ClusterMember is one server of the cluster.
type ClusterMember struct {
	NodeID   string `json:"node_id"`
	RaftAddr string `json:"raft_addr"`
	GRPC     string `json:"grpc_addr,omitempty"`
	HTTP     string `json:"http_addr,omitempty"`
	Voter    bool   `json:"voter"`
}

// ClusterStatus asks the node it is connected to (not the leader) for its
// view. ErrBadRequest on a single-node host.
func (c *Client) ClusterStatus(ctx context.Context) (ClusterStatus, error) {
	r, err := c.admin.ClusterStatus(ctx, &aof2v1.ClusterStatusRequest{})
	if err != nil {
		return ClusterStatus{}, fromStatus(err)
	}
	s := ClusterStatus{NodeID: r.GetNodeId(), State: r.GetState(), Term: r.GetTerm(),
		Leader:      Leader{ID: r.GetLeaderId(), GRPC: r.GetLeaderGrpc(), HTTP: r.GetLeaderHttp()},
		CommitIndex: r.GetCommitIndex(), LastIndex: r.GetLastIndex(), AppliedIndex: r.GetAppliedIndex(),
		LastContact: r.GetLastContact(), ApplyFailed: r.GetApplyFailed()}
	for _, m := range r.GetMembers() {
		s.Members = append(s.Members, ClusterMember{NodeID: m.GetNodeId(), RaftAddr: m.GetRaftAddr(), GRPC: m.GetGrpcAddr(), HTTP: m.GetHttpAddr(), Voter: m.GetVoter()})
	}
	return s, nil
}

// APIAddr is where a cluster node serves clients; either may be empty.
type APIAddr struct {
	GRPC, HTTP string
}

// ClusterAddVoter adds a node to the cluster as a voter (sent to the
// leader), recording the client addresses it serves on (api may be zero).
// Adding a voter already at raftAddr only records api: how a node
// announces itself.
func (c *Client) ClusterAddVoter(ctx context.Context, nodeID, raftAddr string, api APIAddr) error {
	_, err := c.admin.ClusterAddVoter(ctx, &aof2v1.ClusterAddVoterRequest{NodeId: nodeID, RaftAddr: raftAddr, GrpcAddr: api.GRPC, HttpAddr: api.HTTP})
	return fromStatus(err)
}

// ClusterRemoveServer removes a node from the cluster (sent to the leader).
func (c *Client) ClusterRemoveServer(ctx context.Context, nodeID string) error {
	_, err := c.admin.ClusterRemoveServer(ctx, &aof2v1.ClusterRemoveServerRequest{NodeId: nodeID})
	return fromStatus(err)
}

// ClusterTransferLeader hands leadership to nodeID, or to the most
// up-to-date follower when nodeID is empty (sent to the leader).
func (c *Client) ClusterTransferLeader(ctx context.Context, nodeID string) error {
	_, err := c.admin.ClusterTransferLeader(ctx, &aof2v1.ClusterTransferLeaderRequest{NodeId: nodeID})
	return fromStatus(err)
}
