package cluster

import (
	"errors"
	"fmt"
)

var (
	// ErrNotLeader matches a NotLeaderError: the request must go to the
	// leader. Nothing of it was proposed, so it is safe to send again.
	ErrNotLeader = errors.New("cluster: not the leader")
	// ErrOutcomeUnknown is returned when an append was proposed but the
	// node cannot tell whether it committed: leadership was lost or the
	// caller stopped waiting. Reading the stream tells; resending may
	// append the records twice.
	ErrOutcomeUnknown = errors.New("cluster: the append may or may not have committed")
	// ErrNoQuorum is returned when the leader cannot commit in time: a
	// majority of the cluster is unreachable.
	ErrNoQuorum = errors.New("cluster: no quorum")
	// ErrWrittenOutsideLog: a stream's newest record carries no Raft
	// index, so something appended to this member's store without the
	// log. Its store no longer matches the others', and the state machine
	// cannot tell what of the log it applied: applying stops.
	ErrWrittenOutsideLog = errors.New("cluster: a record in the store carries no Raft index (written outside the log)")
	// ErrDamagedNoCopy: a stream's tail is damaged on this member, its
	// Raft log was compacted past the damage and no other member is in
	// the configuration: nothing can give the records back, so the node
	// does not start (docs/adr-replication.md#a-damaged-member).
	ErrDamagedNoCopy = errors.New("cluster: a stream is damaged on this member and no copy of its records from the damage on is reachable")
)

// NotLeaderError says which node leads, when this node knows.
type NotLeaderError struct {
	// LeaderID and Leader (the leader's client addresses, as it
	// announced them in the log) are empty when no leader is known.
	LeaderID string
	Leader   APIAddr
}

func (e *NotLeaderError) Error() string {
	if e.LeaderID == "" {
		return "cluster: not the leader, and no leader is known (an election may be running)"
	}
	if e.Leader == (APIAddr{}) {
		return fmt.Sprintf("cluster: not the leader; the leader is %s (its client address is not known yet)", e.LeaderID)
	}
	return fmt.Sprintf("cluster: not the leader; the leader is %s (grpc %s, http %s)", e.LeaderID, e.Leader.GRPC, e.Leader.HTTP)
}

func (e *NotLeaderError) Is(target error) bool { return target == ErrNotLeader }
