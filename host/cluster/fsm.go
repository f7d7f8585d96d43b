package cluster

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"

	"github.com/aof2/aof2/core"
)

// ErrFSMFailed is returned for every entry after the store failed to apply
// one: the node stops applying (fail-stop) and must be restarted, which
// replays the log from the store's durable state.
var ErrFSMFailed = errors.New("cluster: the node failed to apply an entry and stopped applying")

// Applied is what applying an Append entry returns to the leader's caller.
type Applied struct {
	// Index is the entry's Raft index: every record's ext_id.
	Index uint64
	// IDs are the records' ids, the same on every node.
	IDs []core.RecordID
}

// fsm applies committed entries to the store. Raft calls ApplyBatch,
// Snapshot and Restore from one goroutine; Members and Applied are read
// from others.
type fsm struct {
	store *core.Store
	log   hclog.Logger
	// tiering records TierMove entries; nil without a tier 2. Set before
	// raft starts, never changed.
	tiering Tiering
	// peers copies what a snapshot finds missing here from other
	// members (catchup.go); nil: such a snapshot fails the node. self is
	// this node's id. Both set before raft starts, never changed.
	peers PeerReader
	self  string
	// ctx is cancelled when the node closes: it ends waits for
	// backpressure inside an apply. It is marked as the apply loop's
	// (inApplyLoop): a catch-up asked for under it cannot wait for the
	// loop it runs on.
	ctx context.Context

	// Touched only from raft's FSM goroutine.
	tails map[core.StreamID]*tail

	// onFail, set before raft starts, runs once when applying stops: the
	// node hands leadership away.
	onFail func()

	applied atomic.Uint64 // the last index applied (and flushed)
	// tierMoves and tierUnmatched count TierMove entries recorded and
	// passed over (tiering.go).
	tierMoves, tierUnmatched atomic.Uint64
	// drops counts Drop entries applied (retention; tiering.go).
	drops atomic.Uint64
	// copiedBytes counts payload bytes copied from peers (catchup.go).
	copiedBytes atomic.Uint64
	// appliedCh is closed and replaced each time applied advances.
	appliedMu sync.Mutex
	appliedCh chan struct{} // guarded by appliedMu

	mu struct {
		sync.Mutex
		members    map[string]APIAddr // node id → client addresses
		failed     error
		restoreErr error // the last Restore's (snapshot.go)
	}
}

// tail is what the FSM knows of a stream's end: the ext_id of its last
// record and, right after open, how many records of that entry are in
// (a crash keeps a prefix of a batch).
type tail struct {
	stream  *core.Stream
	lastExt uint64
	present int // records of entry lastExt in the store, valid until it is passed
	// counted: present is known. Counting reads the stream's last
	// records, which may be cold (a node that rejoined from tier 2), so
	// it waits until an entry at lastExt needs it: after a restart or a
	// rejoin, most never do.
	counted bool
}

func newFSM(ctx context.Context, store *core.Store, log hclog.Logger) *fsm {
	f := &fsm{store: store, log: log, ctx: context.WithValue(ctx, applyLoopKey{}, true), tails: map[core.StreamID]*tail{}, appliedCh: make(chan struct{})}
	f.mu.members = map[string]APIAddr{}
	return f
}

// applyLoopKey marks the FSM's context (fsm.ctx).
type applyLoopKey struct{}

// inApplyLoop reports whether ctx is the FSM's: work done while applying
// an entry.
func inApplyLoop(ctx context.Context) bool { return ctx.Value(applyLoopKey{}) != nil }

// Apply is raft.FSM's; raft calls ApplyBatch instead (BatchingFSM).
func (f *fsm) Apply(l *raft.Log) any { return f.ApplyBatch([]*raft.Log{l})[0] }

// ApplyBatch applies entries in order, then publishes every stream they
// touched (core.Stream.Publish): readers see the records at once, and the
// leader answers its callers. The records are durable already — in a
// majority's Raft logs — so no sync is waited for here: the engine syncs
// in the background, a crash replays what it lost from the log
// (core.Config.TailReplayed), and a snapshot syncs everything it covers
// before the log before it may go (snapshot.go).
func (f *fsm) ApplyBatch(logs []*raft.Log) []any {
	out := make([]any, len(logs))
	touched := map[*core.Stream]core.RecordID{}
	for i, l := range logs {
		if l.Type == raft.LogCommand {
			out[i] = f.applyOne(l, touched)
		}
	}
	for s := range touched {
		if err := s.Publish(); err != nil {
			err = f.fail(fmt.Errorf("stream %d: publish: %w", s.ID(), err))
			for i := range out {
				if _, ok := out[i].(*appliedEntry); ok {
					out[i] = err
				}
			}
		}
	}
	// After a failure nothing more is applied: reads must not take the
	// entries raft handed over as applied.
	if len(logs) > 0 && f.err() == nil {
		f.setApplied(logs[len(logs)-1].Index)
	}
	return out
}

func (f *fsm) setApplied(index uint64) {
	f.appliedMu.Lock()
	f.applied.Store(index)
	close(f.appliedCh)
	f.appliedCh = make(chan struct{})
	f.appliedMu.Unlock()
}

// waitApplied returns once the FSM applied entries up to index; it gives
// up when ctx ends, the node closes or applying stops.
func (f *fsm) waitApplied(ctx context.Context, index uint64, closing <-chan struct{}) error {
	for {
		f.appliedMu.Lock()
		ch := f.appliedCh
		f.appliedMu.Unlock()
		if err := f.err(); err != nil {
			return err
		}
		if f.applied.Load() >= index {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return fmt.Errorf("wait for entry %d to apply (applied %d): %w", index, f.applied.Load(), ctx.Err())
		case <-closing:
			return fmt.Errorf("wait for entry %d to apply: %w", index, core.ErrClosed)
		}
	}
}

func (f *fsm) applyOne(l *raft.Log, touched map[*core.Stream]core.RecordID) any {
	if err := f.err(); err != nil {
		return err
	}
	c, err := decodeCommand(l.Data)
	if err != nil {
		return f.fail(fmt.Errorf("entry %d: %w", l.Index, err))
	}
	switch c.kind {
	case kindAppend:
		e := &appliedEntry{Index: l.Index, Groups: make([]groupResult, len(c.groups))}
		skip := map[core.StreamID]int{}
		for i, g := range c.groups {
			ids, err := f.applyGroup(l.Index, g, skip)
			if refused(err) {
				// Every node refuses it alike (same records, same
				// configuration): the request fails, applying goes on.
				e.Groups[i].Err = fmt.Errorf("entry %d: stream %d: %w", l.Index, g.stream, err)
				continue
			}
			if err != nil {
				return f.fail(fmt.Errorf("entry %d: stream %d: %w", l.Index, g.stream, err))
			}
			e.Groups[i].IDs = ids
			if len(ids) > 0 {
				touched[f.tails[g.stream].stream] = ids[len(ids)-1]
			}
		}
		return e
	case kindSeal:
		if err := f.applySeal(l.Index, c); err != nil {
			return f.fail(fmt.Errorf("entry %d: seal stream %d: %w", l.Index, c.stream, err))
		}
		return nil
	case kindMember:
		f.mu.Lock()
		f.mu.members[c.member.ID] = c.member.Addr
		f.mu.Unlock()
		return nil
	case kindTier:
		if err := f.applyTierMove(l.Index, c); err != nil {
			return f.fail(fmt.Errorf("entry %d: stream %d: %w", l.Index, c.stream, err))
		}
		return nil
	case kindDrop:
		err := f.applyDrop(l.Index, c)
		if errors.Is(err, errDropHoldsLastEntry) {
			return fmt.Errorf("entry %d: stream %d: %w", l.Index, c.stream, err) // refused alike everywhere
		}
		if err != nil {
			return f.fail(fmt.Errorf("entry %d: stream %d: %w", l.Index, c.stream, err))
		}
		return nil
	}
	return nil
}

// refused reports an error that the store returns for an entry's records
// themselves, before appending any of them, on every node alike.
func refused(err error) bool {
	return errors.Is(err, core.ErrEmptyRecord) || errors.Is(err, core.ErrRecordTooLarge) || errors.Is(err, core.ErrTooManyStreams)
}

// appliedEntry is the result of an Append entry: one per group.
type appliedEntry struct {
	Index  uint64
	Groups []groupResult
}

type groupResult struct {
	IDs []core.RecordID
	Err error
}

// applyGroup appends a group's records not already in the store. Records
// of an entry the store holds in part (a crash cut it) are completed from
// where it stopped: skip counts, per stream, the records of this entry
// still to pass over (set at the stream's first group in the entry). Ids
// of records passed over are not returned and not needed: only a replay
// reaches this, and no caller waits for a replayed entry.
func (f *fsm) applyGroup(index uint64, g group, skip map[core.StreamID]int) ([]core.RecordID, error) {
	t, err := f.tail(g.stream)
	if err != nil {
		return nil, err
	}
	// A group is refused whole or not at all: a run appended before a
	// later one is refused would be reported as refused, and a replay's
	// skip count must not take a refused group's records as present.
	limit := t.stream.MaxRecordSize()
	for i, r := range g.records {
		switch {
		case len(r.Payload) == 0:
			return nil, fmt.Errorf("record %d: %w", i, core.ErrEmptyRecord)
		case len(r.Payload) > limit:
			return nil, fmt.Errorf("record %d: payload of %d bytes exceeds the maximum %d: %w", i, len(r.Payload), limit, core.ErrRecordTooLarge)
		}
	}
	left, seen := skip[g.stream]
	if !seen {
		switch {
		case index < t.lastExt:
			left = maxCommandRecords // the whole entry is in
		case index == t.lastExt:
			if !t.counted {
				if t.present, err = f.countPresent(t.stream, index); err != nil {
					return nil, err
				}
				t.counted = true
			}
			left = t.present
		}
	}
	recs := g.records
	n := min(left, len(recs))
	recs, skip[g.stream] = recs[n:], left-n
	ids := make([]core.RecordID, 0, len(recs))
	sameTime := func(a, b Record) bool { return a.Timestamp == b.Timestamp }
	err = forRuns(recs, sameTime, func(run []Record) error {
		payloads := make([][]byte, len(run))
		for k := range run {
			payloads[k] = run[k].Payload
		}
		got, err := appendAll(f.ctx, t.stream, payloads, core.AppendOptions{Timestamp: run[0].Timestamp, ExtID: index})
		ids = append(ids, got...)
		if len(got) > 0 {
			t.lastExt, t.present, t.counted = index, 0, true
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	return ids, nil
}

// forRuns calls f on each longest run of xs whose members are all same as
// its first (one AppendBatch each: one timestamp, one ext_id, one
// segment), in order, and stops at f's first error.
func forRuns[T any](xs []T, same func(a, b T) bool, f func(run []T) error) error {
	for i := 0; i < len(xs); {
		j := i + 1
		for j < len(xs) && same(xs[i], xs[j]) {
			j++
		}
		if err := f(xs[i:j]); err != nil {
			return err
		}
		i = j
	}
	return nil
}

// applySeal seals the stream's active segment (the one the entry names,
// if it is still active). Every node applies it at
// the same point of the stream, so segment boundaries are identical. An
// entry below the stream's last ext_id was applied before a restart:
// appends after it went into a new segment, which it must not seal.
func (f *fsm) applySeal(index uint64, c command) error {
	t, err := f.tail(c.stream)
	if err != nil {
		return err
	}
	if index < t.lastExt {
		return nil
	}
	if c.segment != 0 {
		if id, _, ok := t.stream.ActiveSince(); !ok || id != c.segment {
			return nil // sealed since, by a rollover or an earlier entry
		}
	}
	return t.stream.Seal(f.ctx)
}

// tail returns what the FSM knows of a stream's end, reading it from the
// store on first use in this process.
func (f *fsm) tail(id core.StreamID) (*tail, error) {
	if t := f.tails[id]; t != nil {
		return t, nil
	}
	s, err := f.store.Stream(id)
	if err != nil {
		return nil, err
	}
	in := s.Info()
	if in.Records > 0 && in.LastExtID == 0 {
		// Every record applied carries its entry's index; taking 0 for
		// "nothing applied" would apply the whole log again after it.
		return nil, fmt.Errorf("stream %d, %d records: %w; wipe this member's data directory and restart it to rejoin from tier 2 and its peers (docs/adr-replication.md#rejoining-from-tier-2-as-built)", id, in.Records, ErrWrittenOutsideLog)
	}
	t := &tail{stream: s, lastExt: in.LastExtID}
	f.tails[id] = t
	return t, nil
}

// countPresent is how many records of entry index, the one at the
// stream's last ext_id, the store holds: a replay completes the entry
// from there. See complete.go for when the store cannot tell.
func (f *fsm) countPresent(s *core.Stream, index uint64) (int, error) {
	n, fromFirst, err := countTail(f.ctx, s, index)
	if errors.Is(err, errUncountable) {
		f.log.Warn("cannot count the records of the entry a replay resumes; completing it from a member", "stream_id", uint64(s.ID()),
			"index", index, "error", err)
		if cerr := f.completeFromPeers(s, index); cerr != nil {
			return 0, fmt.Errorf("%w; completing it from a member: %w", err, cerr)
		}
		return maxCommandRecords, nil // whole now
	}
	if err != nil || !fromFirst || f.peers == nil {
		return n, err
	}
	// Every record from the stream's first one kept here carries index:
	// the entry may have begun before it, in a segment no member keeps (a
	// store a rejoin started at the cluster's oldest segment). A member
	// that applied the entry tells, if one answers now; without one the
	// count stands, exact on a store cut only by this node's own drops
	// (a segment holding the stream's last entry is never dropped).
	err = f.completeRound(s, index, probeTimeout)
	if err == nil {
		return maxCommandRecords, nil
	}
	f.log.Warn("an entry a replay resumes may have begun before the stream's first record here, and no member that applied it answered; "+
		"the records here are counted (exact unless this node rejoined from tier 2 and has not applied past the entry yet)",
		"stream_id", uint64(s.ID()), "index", index, "error", err)
	n, _, err = countTail(f.ctx, s, index) // with what a failed copy added
	return n, err
}

// countTail counts the stream's last records that carry ext. It reads
// from the last segment's first record, and from one segment further back
// each time every record read carries ext (or there was none: a segment a
// crash left empty); one entry holds at most maxCommandRecords records,
// so no further back than that. A reader hydrates cold segments.
// fromFirst says every record from the stream's first kept one (not 0)
// carries ext. It answers errUncountable when a record it needs has no
// copy it can read (a tier-2 object deleted for a Drop not applied here
// yet: the catch-up that would tell is refused on the apply loop).
func countTail(ctx context.Context, s *core.Stream, ext uint64) (n int, fromFirst bool, err error) {
	in := s.Info()
	floor := in.FirstOrdinal
	if in.Records > maxCommandRecords && in.Records-maxCommandRecords > floor {
		floor = in.Records - maxCommandRecords
	}
	segs := s.SegmentList()
	for i := len(segs) - 1; ; i-- {
		from := floor
		if i >= 0 && segs[i].BaseRecord > floor {
			from = segs[i].BaseRecord
		}
		n, whole, err := countFrom(ctx, s, from, ext)
		if errors.Is(err, errCatchUpWhileApplying) {
			return 0, false, fmt.Errorf("%w: %w", errUncountable, err)
		}
		if err != nil || !whole || from == floor {
			return n, err == nil && whole && n > 0 && from == in.FirstOrdinal && from > 0, err
		}
	}
}

// countFrom counts the records that carry ext at the end of the stream,
// reading from ordinal from; whole says no record read carried another.
func countFrom(ctx context.Context, s *core.Stream, from, ext uint64) (n int, whole bool, err error) {
	r, err := s.NewReader(core.AtOrdinal(from))
	if err != nil {
		return 0, false, fmt.Errorf("read the tail from ordinal %d: %w", from, err)
	}
	defer r.Close()
	whole = true
	for {
		rec, err := r.NextCtx(ctx)
		if errors.Is(err, io.EOF) {
			return n, whole, nil
		}
		if err != nil {
			return 0, false, fmt.Errorf("read the tail from ordinal %d: %w", from, err)
		}
		if rec.ExtID == ext {
			n++
		} else {
			n, whole = 0, false
		}
	}
}

func (f *fsm) err() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.mu.failed
}

// fail stops applying: the first error is kept and returned from then on.
func (f *fsm) fail(err error) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.mu.failed != nil {
		return f.mu.failed
	}
	hint := "restart the node to replay the log"
	if errors.Is(err, core.ErrDamaged) {
		hint = damagedHint
		err = fmt.Errorf("%w; %s", err, hint)
	}
	if f.ctx.Err() == nil {
		f.log.Error("applying stopped; "+hint, "error", err)
	}
	f.mu.failed = fmt.Errorf("%w: %w", ErrFSMFailed, err)
	if f.onFail != nil {
		go f.onFail() // not on raft's FSM goroutine: it may wait for raft
	}
	return f.mu.failed
}

// member returns a node's client addresses, if the log named them.
func (f *fsm) member(id string) (APIAddr, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	a, ok := f.mu.members[id]
	return a, ok
}
