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
)

// NotLeaderError says which node leads, when this node knows.
type NotLeaderError struct {
	// LeaderID and LeaderAddr (the leader's client address, as it
	// announced it in the log) are empty when no leader is known.
	LeaderID, LeaderAddr string
}

func (e *NotLeaderError) Error() string {
	if e.LeaderID == "" {
		return "cluster: not the leader, and no leader is known (an election may be running)"
	}
	if e.LeaderAddr == "" {
		return fmt.Sprintf("cluster: not the leader; the leader is %s (its client address is not known yet)", e.LeaderID)
	}
	return fmt.Sprintf("cluster: not the leader; the leader is %s at %s", e.LeaderID, e.LeaderAddr)
}

func (e *NotLeaderError) Is(target error) bool { return target == ErrNotLeader }
