package cluster

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/aof2/aof2/core"
)

// Completing an entry from a peer (docs/adr-replication.md, "Apply and
// its failures"). Replaying the entry at a stream's last ext_id needs the
// count of its records the store holds (countTail), read from the
// stream's last records. Those may be where this node cannot read them:
// in a segment whose tier-2 object the leader deleted for a Drop this
// node has not applied yet (a member down or rejoining meanwhile, its
// local copies evicted). No local answer is then safe — guessing would
// append records twice or leave some out — so the node asks a member that
// applied the entry for the records of it that follow its own last one,
// and copies them: the entry is then whole here whatever part of it was
// in, and every copied record must get the peer's id.

// errCatchUpWhileApplying is Node.CatchUp's answer to a call made while
// applying an entry (a hydration under countTail): it would wait for the
// entry it is part of.
var errCatchUpWhileApplying = errors.New("cluster: cannot catch up from the apply loop")

// errUncountable: countTail could not read the records it needs.
var errUncountable = errors.New("cannot count the entry's records here")

// completeWait bounds how long applying waits for a member that applied
// the entry (one restarting, or behind, may get there); then applying
// stops, and a restart tries again.
var completeWait = time.Minute

// completeRetry is the pause between two rounds of asking the members;
// probeTimeout bounds each member's answer when asking is optional.
const (
	completeRetry = 200 * time.Millisecond
	probeTimeout  = 5 * time.Second
)

// completeFromPeers makes entry index whole in stream s from a member
// that applied it (see above).
func (f *fsm) completeFromPeers(s *core.Stream, index uint64) error {
	if f.peers == nil {
		return errNoPeers
	}
	deadline := time.Now().Add(completeWait)
	for {
		err := f.completeRound(s, index, max(min(copyTimeout, time.Until(deadline)), completeRetry))
		if err == nil || errors.Is(err, ErrDiverged) || errors.Is(err, errNoPeers) || errors.Is(err, ErrBehindRetention) ||
			f.ctx.Err() != nil || time.Now().After(deadline) {
			return err
		}
		f.log.Warn("no member could complete an entry yet; asking again", "stream_id", uint64(s.ID()), "index", index, "error", err)
		select {
		case <-time.After(completeRetry):
		case <-f.ctx.Done():
			return f.ctx.Err()
		}
	}
}

// completeRound asks each other member in turn, each for at most
// timeout.
func (f *fsm) completeRound(s *core.Stream, index uint64, timeout time.Duration) error {
	f.mu.Lock()
	members := make(map[string]APIAddr, len(f.mu.members))
	for id, a := range f.mu.members {
		if id != f.self {
			members[id] = a
		}
	}
	f.mu.Unlock()
	ids := make([]string, 0, len(members))
	for id := range members {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	var errs []error
	gone := 0 // members whose records at this node's end retention dropped
	for _, id := range ids {
		err := f.completeFrom(members[id], s, index, timeout)
		if errors.Is(err, core.ErrNotFound) {
			gone++
		}
		if err == nil {
			f.log.Info("completed an entry from a member: this node could not count its records", "stream_id", uint64(s.ID()),
				"index", index, "member", id)
			return nil
		}
		if errors.Is(err, ErrDiverged) {
			return err
		}
		errs = append(errs, fmt.Errorf("from %s: %w", id, err))
	}
	if len(errs) == 0 {
		return errNoPeers
	}
	if gone == len(errs) {
		return fmt.Errorf("%w: stream %d: every member dropped the records after this node's last one (%w): "+
			"wipe this member's data directory and start it with cluster.join (deploy/README.md, \"Add a node\")",
			ErrBehindRetention, s.ID(), errors.Join(errs...))
	}
	return errors.Join(errs...)
}

// completeFrom copies, from the member at addr, the records of entry
// index that follow the store's last record. Only a member whose store
// applied the entry answers: what it holds past that record is then
// all the entry's records there are.
func (f *fsm) completeFrom(addr APIAddr, s *core.Stream, index uint64, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(f.ctx, timeout)
	defer cancel()
	applied, err := f.peers.Applied(ctx, addr)
	if err != nil {
		return err
	}
	if applied < index {
		return fmt.Errorf("%w: it applied entries up to %d, this one is %d", errPeerBehind, applied, index)
	}
	for {
		at := s.Info().Records
		recs, err := f.peers.ReadRecords(ctx, addr, s.ID(), at, copyBatch)
		if err != nil {
			return err
		}
		n := 0
		for n < len(recs) && recs[n].ExtID == index {
			n++
		}
		if n < len(recs) && recs[n].ExtID < index {
			return fmt.Errorf("%w: stream %d ordinal %d: the peer's record has ext_id %d, past this node's last, of %d",
				ErrDiverged, s.ID(), recs[n].Ordinal, recs[n].ExtID, index)
		}
		if n > 0 {
			copied, err := f.copyRecords(s, at, recs[:n])
			f.copiedBytes.Add(uint64(copied))
			if perr := s.Publish(); err == nil {
				err = perr
			}
			if err != nil {
				return err
			}
		}
		if n < len(recs) {
			return nil // a later entry's record follows the entry there
		}
		if len(recs) == 0 {
			// Nothing follows: the entry ends there, unless the member
			// restarted since it was asked and has not replayed it yet.
			if applied, err := f.peers.Applied(ctx, addr); err != nil || applied < index {
				return fmt.Errorf("%w: it applied entries up to %d after the read (%v)", errPeerBehind, applied, err)
			}
			return nil
		}
	}
}
