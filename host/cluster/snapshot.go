package cluster

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"sort"

	"github.com/hashicorp/raft"

	"github.com/aof2/aof2/core"
)

// ErrBehindSnapshot is returned when a snapshot says a stream holds
// records this node's store does not: the node lost data (or is new) and
// must be restored from tier 2 before it can follow the log again.
var ErrBehindSnapshot = errors.New("cluster: the store is behind the Raft snapshot")

// ErrBehindRetention is returned (with ErrBehindSnapshot) when the
// records a node lacks start below its stream's oldest segment: the
// cluster's retention dropped them, so no member can copy them. The node
// is rebuilt: its data directory wiped, it rejoins with cluster.join
// (deploy/README.md, "Add a node"), from the stream's oldest segment in tier 2.
var ErrBehindRetention = errors.New("cluster: retention dropped records this node lacks")

// snapshotVersion is the version of snapshotDoc's encoding.
const snapshotVersion = 1

// snapshotDoc is a Raft snapshot. It carries positions, not data: the
// records are in every node's segments and in tier 2. The log before it
// can be compacted because every entry it covers is durable in the store
// (each apply batch ends with a flush).
type snapshotDoc struct {
	// sync makes every stream durable up to at least the positions below
	// (Persist runs it before writing them).
	sync func() error

	Version int `json:"version"`
	// Applied is the last entry the FSM applied (entries after it, up to
	// the snapshot's index, never reach the FSM).
	Applied uint64             `json:"applied"`
	Streams []streamPosition   `json:"streams"`
	Members map[string]APIAddr `json:"members"`
}

type streamPosition struct {
	Stream  core.StreamID `json:"stream"`
	LastExt uint64        `json:"last_ext"`
	Records uint64        `json:"records"`
	// Sealed: the stream's last segment is sealed (a Seal entry after its
	// last append, which the position alone does not show).
	Sealed bool `json:"sealed"`
	// Head is the stream's oldest segment: retention dropped every one
	// before it (Drop entries), and a node restoring the snapshot drops
	// those it still holds.
	Head core.SegmentID `json:"head,omitempty"`
	// HeadRecord is the ordinal of Head's first record: no member holds
	// the records before it.
	HeadRecord uint64 `json:"head_record,omitempty"`
	// Tier2 lists the stream's segments the log recorded in tier 2
	// (TierMove entries): a node restoring the snapshot records them, so
	// that it may evict its copies though it never saw those entries.
	Tier2 []tierObject `json:"tier2,omitempty"`
}

// tierObject is one recorded TierMove.
type tierObject struct {
	Segment core.SegmentID `json:"segment"`
	Key     string         `json:"key"`
	ETag    string         `json:"etag"`
}

// tierObjects lists what stream s's manifest records in tier 2.
func tierObjects(s *core.Stream) []tierObject {
	tl := s.TierLog()
	if tl == nil {
		return nil
	}
	var out []tierObject
	for _, in := range s.SegmentList() {
		// One whose delete is queued was dropped by an applied entry.
		if ms, ok := tl.Segment(in.ID); ok && ms.Tier2.Key != "" && len(ms.Tier2.PendingDeletes) == 0 {
			out = append(out, tierObject{Segment: in.ID, Key: ms.Tier2.Key, ETag: ms.Tier2.ETag})
		}
	}
	return out
}

func positionOf(id core.StreamID, in core.StreamInfo) streamPosition {
	return streamPosition{Stream: id, LastExt: in.LastExtID, Records: in.Records, Sealed: in.Segments > 0 && in.Sealed == in.Segments}
}

// Snapshot captures every stream's position. It runs on raft's FSM
// goroutine, so no apply runs concurrently.
func (f *fsm) Snapshot() (raft.FSMSnapshot, error) {
	if err := f.err(); err != nil {
		return nil, err
	}
	doc := snapshotDoc{Version: snapshotVersion, Applied: f.applied.Load(), sync: f.syncAll}
	for _, id := range f.store.Streams() {
		s, err := f.store.Lookup(id)
		if err != nil {
			return nil, fmt.Errorf("snapshot stream %d: %w", id, err)
		}
		p := positionOf(id, s.Info())
		if f.tiering != nil {
			p.Tier2 = tierObjects(s)
		}
		p.Head, p.HeadRecord = clusterHead(s)
		doc.Streams = append(doc.Streams, p)
	}
	f.mu.Lock()
	doc.Members = maps.Clone(f.mu.members)
	f.mu.Unlock()
	return &doc, nil
}

// Persist syncs the streams, then writes the document; raft's snapshot
// store checksums it. It runs beside the FSM, which may have applied more
// since: syncing more than the positions is harmless.
func (d *snapshotDoc) Persist(sink raft.SnapshotSink) error {
	if d.sync != nil {
		if err := d.sync(); err != nil {
			_ = sink.Cancel()
			return fmt.Errorf("sync the streams before the snapshot: %w", err)
		}
	}
	if err := json.NewEncoder(sink).Encode(d); err != nil {
		_ = sink.Cancel()
		return fmt.Errorf("write snapshot: %w", err)
	}
	return sink.Close()
}

// Release is raft.FSMSnapshot's; the document holds nothing to release.
func (d *snapshotDoc) Release() {}

// restorableSnapshots shows raft the newest snapshot of the store it
// wraps, and an older one only while the log still holds every entry
// after it. At start, raft's restoreSnapshot (NewRaft, hashicorp/raft
// v1.7.2 api.go) tries the snapshots newest first and starts from the
// first whose Restore succeeds, then reads every log entry after it and
// panics ("log not found") on one the log no longer holds. So with the
// newest refused (the store is behind it and no peer answered the copy),
// an older snapshot the log was compacted past would crash the start;
// one the log still covers is a heal: raft applies the entries after it,
// which put back what the store lacks, and the node's log (what it
// acknowledged to the leader) is whole. Elsewhere raft reads only the
// newest (sendLatestSnapshot, HasExistingState), so nothing changes
// there (docs/adr-replication.md, "Snapshots").
type restorableSnapshots struct {
	raft.SnapshotStore
	logs raft.LogStore
}

func (s restorableSnapshots) List() ([]*raft.SnapshotMeta, error) {
	metas, err := s.SnapshotStore.List()
	if err != nil || len(metas) < 2 {
		return metas, err
	}
	first, ferr := s.logs.FirstIndex()
	last, lerr := s.logs.LastIndex()
	out := metas[:1] // newest first
	for _, m := range metas[1:] {
		if ferr != nil || lerr != nil || first == 0 || first > m.Index+1 || last < metas[0].Index {
			break
		}
		out = append(out, m)
	}
	return out, nil
}

// restoreErr is the last Restore's error: nil when it succeeded or none
// ran.
func (f *fsm) restoreErr() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.mu.restoreErr
}

// Restore checks the store against a snapshot: at startup (raft restores
// its newest snapshot, then replays the log after it) and when the leader
// sends one to a follower that fell behind its log.
func (f *fsm) Restore(rc io.ReadCloser) (err error) {
	defer rc.Close()
	defer func() {
		f.mu.Lock()
		f.mu.restoreErr = err
		f.mu.Unlock()
	}()
	doc, err := decodeSnapshotDoc(rc)
	if err != nil {
		return err
	}
	sort.Slice(doc.Streams, func(i, j int) bool { return doc.Streams[i].Stream < doc.Streams[j].Stream })
	// What the FSM knew of each stream's end is stale after a copy, even
	// one that failed half-way: read it again from the store.
	defer clear(f.tails)
	unreachable := map[string]bool{} // members a copy could not reach, passed for the rest of this restore
	for _, p := range doc.Streams {
		var in core.StreamInfo
		s, err := f.store.Lookup(p.Stream)
		if errors.Is(err, core.ErrUnknownStream) {
			// Created here as on the members that applied the entries,
			// records or none (a request refused whole creates its
			// stream): how many streams a store holds decides whether a
			// later entry is refused (limits.max_streams).
			s, err = f.store.Stream(p.Stream)
		}
		if err != nil {
			return fmt.Errorf("snapshot: stream %d: %w", p.Stream, err)
		}
		in = s.Info()
		if in.LastExtID < p.LastExt || in.Records < p.Records {
			if s, in, err = f.restoreBehind(p, in, doc.Members, unreachable); err != nil {
				return err
			}
		}
		local := positionOf(p.Stream, in)
		if s != nil && local.Records == p.Records && p.Sealed && !local.Sealed {
			// Same records, but a Seal the snapshot covers never applied
			// here: apply it, or the next append would land in the old
			// segment and every id after it would differ.
			if err := s.Seal(f.ctx); err != nil {
				return fmt.Errorf("snapshot: seal stream %d as the snapshot has it: %w", p.Stream, err)
			}
		}
		// After the seal: the moves may name the segment it sealed.
		if err := f.adoptTier2(p); err != nil {
			return err
		}
		// After the moves: a segment is dropped once tier 2 held it.
		if err := f.dropBelow(s, p); err != nil {
			return err
		}
	}
	if doc.Applied > f.applied.Load() {
		f.setApplied(doc.Applied)
	}
	f.mu.Lock()
	f.mu.members = doc.Members
	if f.mu.members == nil {
		f.mu.members = map[string]APIAddr{}
	}
	f.mu.Unlock()
	return nil
}

// maxSnapshotBytes bounds what Restore reads of a snapshot.
const maxSnapshotBytes = 1 << 30

// decodeSnapshotDoc reads a snapshot document: one JSON document of this
// version, nothing after it (a snapshot cut at maxSnapshotBytes, or with
// bytes appended, is refused rather than read in part).
func decodeSnapshotDoc(r io.Reader) (snapshotDoc, error) {
	var doc snapshotDoc
	dec := json.NewDecoder(io.LimitReader(r, maxSnapshotBytes))
	if err := dec.Decode(&doc); err != nil {
		return snapshotDoc{}, fmt.Errorf("read snapshot: %w", err)
	}
	if tok, err := dec.Token(); err != io.EOF {
		return snapshotDoc{}, fmt.Errorf("read snapshot: data after the document (%v, %v)", tok, err)
	}
	if doc.Version != snapshotVersion {
		return snapshotDoc{}, fmt.Errorf("snapshot version %d: this node reads %d", doc.Version, snapshotVersion)
	}
	return doc, nil
}

// restoreBehind copies what stream p lacks of the snapshot's position
// from other members, and returns it as it then stands.
func (f *fsm) restoreBehind(p streamPosition, in core.StreamInfo, members map[string]APIAddr, unreachable map[string]bool) (*core.Stream, core.StreamInfo, error) {
	if in.Records < p.HeadRecord {
		return nil, in, fmt.Errorf("%w: %w: stream %d: this node holds %d records, the cluster's oldest segment %d starts at record %d: "+
			"wipe this member's data directory and start it with cluster.join (deploy/README.md, \"Add a node\")",
			ErrBehindSnapshot, ErrBehindRetention, p.Stream, in.Records, p.Head, p.HeadRecord)
	}
	f.log.Info("the store is behind the snapshot: copying the missing records from a peer", "stream_id", uint64(p.Stream),
		"records", in.Records, "snapshot_records", p.Records)
	copied, err := f.catchUp(p, members, unreachable)
	f.copiedBytes.Add(uint64(copied))
	if err != nil {
		return nil, in, fmt.Errorf("%w: stream %d holds %d records up to entry %d, the snapshot %d up to %d: %w",
			ErrBehindSnapshot, p.Stream, in.Records, in.LastExtID, p.Records, p.LastExt, err)
	}
	s, err := f.store.Lookup(p.Stream)
	if err != nil {
		return nil, in, err
	}
	if in = s.Info(); in.LastExtID < p.LastExt {
		return nil, in, fmt.Errorf("%w: stream %d: the copied records end at entry %d, the snapshot's at %d",
			ErrDiverged, p.Stream, in.LastExtID, p.LastExt)
	}
	// Durable before Raft takes the snapshot as installed and compacts the
	// log that could have given them back.
	if err := s.FlushAll(f.ctx); err != nil {
		return nil, in, fmt.Errorf("stream %d: sync the copied records: %w", p.Stream, err)
	}
	f.log.Info("copied the missing records from a peer", "stream_id", uint64(p.Stream), "records", in.Records, "payload_bytes", copied)
	return s, in, nil
}

// syncAll makes every record of every stream durable.
func (f *fsm) syncAll() error {
	for _, id := range f.store.Streams() {
		s, err := f.store.Lookup(id)
		if err != nil {
			return err
		}
		if err := s.FlushAll(f.ctx); err != nil {
			return fmt.Errorf("stream %d: %w", id, err)
		}
	}
	return nil
}

// clusterHead is s's oldest segment for the cluster and the ordinal of its
// first record: the first segment whose delete is not queued (one whose
// Drop applied, held here by a reader for now, is not the cluster's).
func clusterHead(s *core.Stream) (core.SegmentID, uint64) {
	tl := s.TierLog()
	segs := s.SegmentList()
	for _, info := range segs {
		if tl == nil {
			break
		}
		if ms, _ := tl.Segment(info.ID); len(ms.Tier2.PendingDeletes) == 0 {
			return info.ID, info.BaseRecord
		}
	}
	if len(segs) > 0 {
		return segs[0].ID, segs[0].BaseRecord
	}
	return 0, 0
}

// dropBelow drops s's segments older than the snapshot's oldest: Drop
// entries this node never applied.
func (f *fsm) dropBelow(s *core.Stream, p streamPosition) error {
	if s == nil || p.Head == 0 {
		return nil
	}
	for _, info := range s.SegmentList() {
		if info.ID >= p.Head {
			break
		}
		err := f.applyDrop(0, command{kind: kindDrop, stream: p.Stream, segment: info.ID})
		if errors.Is(err, errDropHoldsLastEntry) {
			// Not a state the cluster's drops leave; keeping the segment
			// (and those after it) here loses nothing.
			f.log.Error("a segment the snapshot drops holds the stream's last entry here; it is kept, and the stream's retention stops here until it goes",
				"stream_id", uint64(p.Stream), "segment_id", uint64(info.ID))
			return nil
		}
		if err != nil {
			return fmt.Errorf("snapshot: stream %d: %w", p.Stream, err)
		}
	}
	return nil
}

// adoptTier2 records the tier moves a snapshot lists for one stream.
func (f *fsm) adoptTier2(p streamPosition) error {
	if f.tiering == nil {
		return nil
	}
	for _, o := range p.Tier2 {
		c := command{kind: kindTier, stream: p.Stream, segment: o.Segment, object: object{Key: o.Key, ETag: o.ETag}}
		if err := f.applyTierMove(0, c); err != nil {
			return fmt.Errorf("snapshot: stream %d: %w", p.Stream, err)
		}
	}
	return nil
}
