package cluster

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/hashicorp/raft"

	"github.com/aof2/aof2/core"
)

// A member's copy of a stream is damaged when its tail segment fails its
// checks (a flipped bit, a lost write): the store refuses appends to it,
// so applying would stop at the stream's next entry. The records are not
// lost — the member's own Raft log and the other members hold them — so
// an operator's accepted loss, which puts fillers where they were, is the
// wrong repair here: it would make this member's segments differ from its
// peers'. Instead, before Raft starts, the tail is rewound to its last
// intact record (core.Stream.RewindDamagedTail), and the records after it
// come back as they do for a member that was down: Raft replays the
// entries after the newest snapshot, and the snapshot's restore copies
// from another member what lies between that record and the snapshot
// (snapshot.go, restoreBehind; a restart retries while none answers).
// With no other member to copy from and a snapshot at or past that
// record's entry, nothing gives the records back: the node does not start
// (ErrDamagedNoCopy), and the damaged file is left as it was
// (docs/adr-replication.md#a-damaged-member).

// damagedHint is what an operator does about a member that stopped
// applying at a damaged stream (one start could not rewind).
const damagedHint = "a damaged stream was not rewound at start (see this member's log): " +
	"wipe this member's data directory and restart it to rejoin (docs/adr-replication.md#a-damaged-member)"

// rewindDamagedTails rewinds each damaged tail whose records this member's
// log or its peers give back; it runs before Raft replays anything.
func (n *Node) rewindDamagedTails(ctx context.Context, snaps raft.SnapshotStore) error {
	metas, err := snaps.List()
	if err != nil {
		return fmt.Errorf("raft snapshots: %w", err)
	}
	var snapshot uint64
	peers := len(n.cfg.Peers) > 1
	if len(metas) > 0 {
		snapshot = metas[0].Index // newest first
		peers = slices.ContainsFunc(metas[0].Configuration.Servers, func(s raft.Server) bool { return s.ID != raft.ServerID(n.cfg.NodeID) })
	}
	for _, id := range n.store.Streams() {
		s, err := n.store.Lookup(id)
		if err != nil {
			return err
		}
		in := s.Info()
		if !errors.Is(in.Refused, core.ErrDamaged) {
			continue
		}
		// The last intact record's entry may have lost records to the
		// damage: the log gives them back only if it replays that entry.
		if snapshot != 0 && in.LastExtID <= snapshot && !peers {
			return fmt.Errorf("%w: stream %d: %w; its last intact record is of entry %d, the Raft log was compacted to snapshot %d, and no other member is in the configuration; "+
				"the damaged file is left as it was: restore the data directory from a copy (docs/adr-replication.md#a-damaged-member)",
				ErrDamagedNoCopy, id, in.Refused, in.LastExtID, snapshot)
		}
		rep, err := s.RewindDamagedTail(ctx)
		if err != nil {
			// The stream stays damaged, as it was: applying stops at it.
			n.log.Error("stream damaged on this member; the rewind failed", "stream_id", uint64(id), "error", err)
			continue
		}
		n.rewound.Add(1)
		n.log.Warn("stream damaged on this member: its tail was rewound to the last intact record; the Raft log and the other members give back the rest",
			"stream_id", uint64(id), "segment_id", uint64(rep.Segment), "offset", rep.Offset, "last_intact_entry", rep.LastExtID,
			"snapshot_index", snapshot, "dropped_bytes", rep.Dropped, "quarantine", rep.Quarantine, "damage", rep.Reason)
	}
	return nil
}
