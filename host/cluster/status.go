package cluster

import (
	"context"
	"fmt"
	"strconv"

	"github.com/hashicorp/raft"
)

// Status is a node's view of the cluster.
type Status struct {
	NodeID string
	// State is raft's: Follower, Candidate, Leader or Shutdown.
	State                  string
	Term                   uint64
	LeaderID               string
	Leader                 APIAddr
	CommitIndex, LastIndex uint64
	AppliedIndex           uint64 // applied by the store here
	SnapshotIndex          uint64 // of the newest Raft snapshot here (the log before it may be compacted)
	LastContact            string // since the leader was last heard from ("never", "0" on the leader)
	Servers                []Server
	ApplyFailed            string // why applying stopped, if it did
}

// Server is one member of the configuration.
type Server struct {
	ID, RaftAddr string
	API          APIAddr
	Voter        bool
}

// Status reports the node's Raft state and the configuration it knows.
func (n *Node) Status() Status {
	st := n.raft.Stats()
	s := Status{NodeID: n.cfg.NodeID, State: n.raft.State().String(), LastContact: st["last_contact"],
		CommitIndex: n.raft.CommitIndex(), LastIndex: n.raft.LastIndex(), AppliedIndex: n.fsm.applied.Load()}
	s.Term, _ = strconv.ParseUint(st["term"], 10, 64)
	s.SnapshotIndex, _ = strconv.ParseUint(st["last_snapshot_index"], 10, 64)
	_, id := n.raft.LeaderWithID()
	s.LeaderID = string(id)
	s.Leader, _ = n.fsm.member(s.LeaderID)
	if f := n.raft.GetConfiguration(); f.Error() == nil {
		for _, sv := range f.Configuration().Servers {
			api, _ := n.fsm.member(string(sv.ID))
			s.Servers = append(s.Servers, Server{ID: string(sv.ID), RaftAddr: string(sv.Address), API: api, Voter: sv.Suffrage == raft.Voter})
		}
	}
	if err := n.fsm.err(); err != nil {
		s.ApplyFailed = err.Error()
	}
	return s
}

// IsLeader reports whether this node leads now.
func (n *Node) IsLeader() bool { return n.raft.State() == raft.Leader }

// AddVoter adds a node to the cluster (on the leader) and records its
// client addresses when given. A voter already at raftAddr stays as it
// is: a node announces its addresses so.
func (n *Node) AddVoter(ctx context.Context, id, raftAddr string, api APIAddr) error {
	if err := n.usable(); err != nil {
		return err
	}
	if err := n.waitFuture(ctx, n.raft.AddVoter(raft.ServerID(id), raft.ServerAddress(raftAddr), 0, enqueueTimeout)); err != nil {
		return err
	}
	if cur, _ := n.fsm.member(id); api == (APIAddr{}) || cur == api {
		return nil
	}
	c := command{kind: kindMember, member: member{ID: id, Addr: api}}
	res, err := n.wait(ctx, n.raft.Apply(c.encode(), enqueueTimeout))
	if err == nil {
		err = appliedErr(res)
	}
	return err
}

// Announced reports whether the log holds this node's client addresses
// as configured.
func (n *Node) Announced() bool {
	a, ok := n.fsm.member(n.cfg.NodeID)
	return ok && a == n.cfg.API
}

// RemoveServer removes a node from the cluster (on the leader).
func (n *Node) RemoveServer(ctx context.Context, id string) error {
	if !n.IsLeader() {
		return n.notLeader()
	}
	return n.waitFuture(ctx, n.raft.RemoveServer(raft.ServerID(id), 0, enqueueTimeout))
}

// TransferLeadership hands leadership to id, or to the most up-to-date
// follower when id is empty. Naming the leader itself asks for what
// already holds, and succeeds.
func (n *Node) TransferLeadership(ctx context.Context, id string) error {
	if !n.IsLeader() {
		return n.notLeader()
	}
	if id == n.cfg.NodeID {
		return nil
	}
	if id == "" {
		return n.waitFuture(ctx, n.raft.LeadershipTransfer())
	}
	f := n.raft.GetConfiguration()
	if err := f.Error(); err != nil {
		return err
	}
	for _, sv := range f.Configuration().Servers {
		if string(sv.ID) == id {
			return n.waitFuture(ctx, n.raft.LeadershipTransferToServer(sv.ID, sv.Address))
		}
	}
	return fmt.Errorf("transfer leadership: %q is not a member of the cluster", id)
}

func (n *Node) waitFuture(ctx context.Context, f raft.Future) error {
	_, err := n.wait(ctx, barrierFuture{f})
	return err
}
