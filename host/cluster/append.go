package cluster

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/hashicorp/raft"

	"github.com/aof2/aof2/core"
)

// enqueueTimeout bounds how long a proposal waits to enter raft's queue.
const enqueueTimeout = 5 * time.Second

// Append proposes records for a stream and returns once they are
// committed by a majority and applied here. Records with a zero
// Timestamp get the leader's clock, so every node stores the same bytes.
// Concurrent calls share entries (group commit: proposer.go). A batch
// longer than one entry holds is proposed as several, one after the
// other; an error after the first says how many records went in
// (AppendError).
func (n *Node) Append(ctx context.Context, stream core.StreamID, recs []Record) (*Applied, error) {
	if len(recs) == 0 {
		return nil, fmt.Errorf("stream %d: no records to append: %w", stream, core.ErrEmptyRecord)
	}
	for i, r := range recs {
		if len(r.Payload) == 0 {
			return nil, fmt.Errorf("stream %d: record %d: %w", stream, i, core.ErrEmptyRecord)
		}
	}
	if err := n.usable(); err != nil {
		return nil, err
	}
	if a := n.cfg.Admission; a != nil {
		if err := a(stream); err != nil {
			return nil, fmt.Errorf("stream %d: %w", stream, err)
		}
	}
	now := time.Now().UnixNano()
	out := &Applied{}
	for i := 0; i < len(recs); i += maxCommandRecords {
		chunk := recs[i:min(len(recs), i+maxCommandRecords)]
		for k := range chunk {
			if chunk[k].Timestamp == 0 {
				chunk[k].Timestamp = now
			}
		}
		a, err := n.propose(ctx, group{stream: stream, records: chunk})
		if err == nil {
			out.Index = a.Index
			out.IDs = append(out.IDs, a.IDs...)
			continue
		}
		if i > 0 {
			return out, &AppendError{Appended: len(out.IDs), Err: err}
		}
		return nil, err
	}
	return out, nil
}

// appliedErr is the error an apply result stands for. An entry that
// committed but failed to apply here is in the log: every other node
// applies it, and so will this one after a restart. The caller cannot be
// told it failed; its outcome is unknown to this node.
func appliedErr(res any) error {
	err, ok := res.(error)
	if !ok {
		return nil
	}
	if errors.Is(err, ErrFSMFailed) {
		return fmt.Errorf("%w: the entry committed but this node could not apply it: %w", ErrOutcomeUnknown, err)
	}
	return err // refused deterministically by every node
}

// AppendError is returned when a batch split over several entries failed
// after some of them committed. It does not match ErrNotLeader even when
// that stopped it: resending the batch would append its first part twice.
type AppendError struct {
	Appended int
	Err      error
}

func (e *AppendError) Error() string {
	return fmt.Sprintf("%d records appended, then: %v", e.Appended, e.Err)
}

func (e *AppendError) Unwrap() error {
	if errors.Is(e.Err, ErrNotLeader) {
		return nil
	}
	return e.Err
}

// Seal proposes sealing the stream's segment seg if it is still active
// when the entry applies (seg 0: whichever is active then). Every node
// seals at the same point of the stream.
func (n *Node) Seal(ctx context.Context, stream core.StreamID, seg core.SegmentID) error {
	if err := n.usable(); err != nil {
		return err
	}
	c := command{kind: kindSeal, stream: stream, segment: seg}
	res, err := n.wait(ctx, n.raft.Apply(c.encode(), enqueueTimeout))
	if err != nil {
		return err
	}
	if err, ok := res.(error); ok {
		return appliedErr(err)
	}
	return nil
}

// usable refuses requests on a follower, a closed node, and a node that
// stopped applying.
func (n *Node) usable() error {
	select {
	case <-n.closing:
		return fmt.Errorf("cluster node: %w", core.ErrClosed)
	default:
	}
	if err := n.fsm.err(); err != nil {
		return err
	}
	if n.raft.State() != raft.Leader {
		return n.notLeader()
	}
	return nil
}

// wait waits for a proposal, mapping raft's errors to the package's. It
// gives up when ctx ends or the node closes: raft never answers futures
// still in its queues at shutdown.
func (n *Node) wait(ctx context.Context, f raft.ApplyFuture) (any, error) {
	done := make(chan error, 1)
	go func() { done <- f.Error() }() // returns when raft resolves f, if ever; it holds nothing
	select {
	case err := <-done:
		if err != nil {
			return nil, n.raftErr(err)
		}
		return f.Response(), nil
	case <-ctx.Done():
		return nil, fmt.Errorf("%w: %w", ErrOutcomeUnknown, ctx.Err())
	case <-n.closing:
		return nil, fmt.Errorf("%w: the node is closing", ErrOutcomeUnknown)
	}
}

func (n *Node) raftErr(err error) error {
	switch {
	case errors.Is(err, raft.ErrNotLeader), errors.Is(err, raft.ErrLeadershipTransferInProgress):
		return n.notLeader()
	case errors.Is(err, raft.ErrLeadershipLost):
		return fmt.Errorf("%w: %w", ErrOutcomeUnknown, err)
	case errors.Is(err, raft.ErrEnqueueTimeout):
		return fmt.Errorf("%w: %w", ErrNoQuorum, err)
	case errors.Is(err, raft.ErrRaftShutdown):
		// Raft answers entries it had committed with this too.
		return fmt.Errorf("%w: %w", ErrOutcomeUnknown, err)
	}
	return err
}

// notLeader names the leader, with its client address when the log has it.
func (n *Node) notLeader() error {
	_, id := n.raft.LeaderWithID()
	e := &NotLeaderError{LeaderID: string(id)}
	if id != "" {
		e.Leader, _ = n.fsm.member(string(id))
	}
	return e
}

// ReadBarrier returns once this node, as leader, has applied every entry
// committed before the call: a read after it is linearizable. It checks
// with a quorum that the node still leads (raft's VerifyLeader), so a
// deposed leader cannot serve a stale read.
func (n *Node) ReadBarrier(ctx context.Context) error {
	if err := n.usable(); err != nil {
		return err
	}
	term := n.term()
	n.mu.Lock()
	ready := n.mu.readyTerm == term
	n.mu.Unlock()
	if !ready {
		return fmt.Errorf("%w: the new leader has not applied its first entry yet", ErrNoQuorum)
	}
	index := n.raft.CommitIndex()
	if afterReadIndex != nil {
		afterReadIndex(n)
	}
	if _, err := n.wait(ctx, barrierFuture{n.raft.VerifyLeader()}); err != nil {
		if ctx.Err() != nil {
			return ctx.Err() // a read has no outcome to be unsure of
		}
		return err
	}
	// VerifyLeader confirms the lead in the term it runs in. The read
	// index is that term's only if no other term began since it was
	// taken: a node deposed and elected again meanwhile may have missed
	// what another leader committed in between, and its commit index
	// does not show it until an entry of its new term commits.
	if now := n.term(); now != term {
		return fmt.Errorf("%w: the lead changed hands during the read (term %d, now %d)", ErrNoQuorum, term, now)
	}
	if last, ok := n.lastCommandUpTo(index); ok {
		return n.fsm.waitApplied(ctx, last, n.closing)
	}
	_, err := n.wait(ctx, barrierFuture{n.raft.Barrier(enqueueTimeout)})
	return err
}

// afterReadIndex, when set (tests), runs in ReadBarrier between taking
// the read index and confirming the lead.
var afterReadIndex func(*Node)

// CatchUp returns once this node has applied what the leader had
// committed when it was called, as far as this node can tell: on the
// leader, a read barrier; on a follower, the commit index its first
// contact with the leader after the call carries. A follower that hears
// from no leader, or does not apply that far, within two heartbeat
// timeouts answers ErrNoQuorum. A
// hydration uses it to tell a segment retention dropped from a missing
// object (coordinator.Cluster.CatchUp); only which error a read gets
// depends on it.
func (n *Node) CatchUp(ctx context.Context) error {
	if inApplyLoop(ctx) {
		// A read made while applying an entry (countTail): catching up
		// would wait for the entry it is part of.
		return errCatchUpWhileApplying
	}
	if n.IsLeader() {
		// Bounded: called while applying under another context (a
		// Tiering hook), the barrier would wait for its own entry.
		wctx, cancel := context.WithTimeout(ctx, n.contactWait)
		defer cancel()
		if err := n.ReadBarrier(wctx); err != nil {
			if ctx.Err() == nil && wctx.Err() != nil {
				return fmt.Errorf("%w: %w", ErrNoQuorum, err)
			}
			return err
		}
		return nil
	}
	select {
	case <-n.closing:
		return fmt.Errorf("cluster node: %w", core.ErrClosed)
	default:
	}
	if err := n.fsm.err(); err != nil {
		return err
	}
	// A heartbeat carries no commit index, but the leader sends every
	// follower an AppendEntries with its commit index at least every two
	// CommitTimeouts (raft's replicate loop): a contact four after the
	// call comes after one sent after the call, with a margin for the
	// two travelling on different connections.
	since := time.Now().Add(4 * n.commitTimeout)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	deadline := time.NewTimer(n.contactWait)
	defer deadline.Stop()
	for !n.raft.LastContact().After(since) {
		select {
		case <-tick.C:
		case <-deadline.C:
			return fmt.Errorf("%w: no contact with a leader for %v", ErrNoQuorum, n.contactWait)
		case <-ctx.Done():
			return fmt.Errorf("%w: no contact with a leader: %w", ErrNoQuorum, ctx.Err())
		case <-n.closing:
			return fmt.Errorf("cluster node: %w", core.ErrClosed)
		}
	}
	if last, ok := n.lastCommandUpTo(n.raft.CommitIndex()); ok {
		// Bounded too: called while applying under another context, it
		// would wait for its own entry.
		wctx, cancel := context.WithTimeout(ctx, n.contactWait)
		defer cancel()
		if err := n.fsm.waitApplied(wctx, last, n.closing); err != nil {
			return fmt.Errorf("%w: %w", ErrNoQuorum, err)
		}
	}
	return nil
}

// LeadTerm is the term this node leads in; ready once its first barrier
// of the term applied and it applies (coordinator.Cluster.LeadTerm).
func (n *Node) LeadTerm() (term uint64, ready bool) {
	if !n.Leading() {
		return 0, false
	}
	term = n.term()
	n.mu.Lock()
	defer n.mu.Unlock()
	return term, n.mu.readyTerm == term
}

// barrierFuture lets wait take a barrier's future.
type barrierFuture struct{ raft.Future }

func (barrierFuture) Response() any { return nil }
func (barrierFuture) Index() uint64 { return 0 }

// lastCommandUpTo is the newest entry at or below index that reaches the
// FSM (a command or a configuration): raft's applied index moves when an
// entry is handed to the FSM, not when it is applied, and no-ops and
// barriers never reach it. Entries above the FSM's applied index are
// still in the log store (snapshots cover only applied entries); if one
// cannot be read, ok is false and the caller uses a barrier instead.
func (n *Node) lastCommandUpTo(index uint64) (last uint64, ok bool) {
	for i := index; i > n.fsm.applied.Load(); i-- {
		var l raft.Log
		if err := n.logs.GetLog(i, &l); err != nil {
			return 0, false
		}
		if l.Type == raft.LogCommand || l.Type == raft.LogConfiguration {
			return i, true
		}
	}
	return 0, true
}

// SealActive is coordinator.Config.SealActive for a cluster node: the
// leader proposes the seal, a follower leaves it to the leader.
func (n *Node) SealActive(s *core.Stream, id core.SegmentID) error {
	if !n.IsLeader() {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), enqueueTimeout)
	defer cancel()
	err := n.Seal(ctx, s.ID(), id)
	if errors.Is(err, ErrNotLeader) {
		return nil
	}
	return err
}
