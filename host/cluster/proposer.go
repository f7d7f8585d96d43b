package cluster

import (
	"context"
	"fmt"

	"github.com/aof2/aof2/core"
	"github.com/hashicorp/raft"
)

// Group commit on the leader. Every Append request goes to one proposer
// goroutine, which puts the requests waiting at that moment into one Raft
// entry (up to maxCommandRecords records and maxEntryBytes bytes) and
// proposes it. While an entry commits, the next one gathers: under load
// each entry carries many requests, so the log write, the replication
// round trip and the FSM's flush are paid once per entry, not per request.

// maxEntryBytes bounds the payload bytes the proposer puts in one entry
// (a single larger request goes alone).
const maxEntryBytes = 4 << 20

// maxInflightEntries bounds the entries proposed and not yet applied.
// Fewer in flight means more requests in each: throughput is about
// maxInflightEntries × requests per entry / commit latency. The cost of
// an entry (a log-store commit on every node, a replication round trip,
// an apply) is paid per entry, so on a machine short of CPU one entry in
// flight carries more records per second than two
// (docs/adr-replication.md, "Throughput, measured by CPU per record").
var maxInflightEntries = 1

// proposal is one request waiting for its entry.
type proposal struct {
	group group
	done  chan proposalResult // buffered: the proposer never blocks on it
}

type proposalResult struct {
	applied *Applied
	err     error
}

// propose queues g for the next entry and waits for its result.
func (n *Node) propose(ctx context.Context, g group) (*Applied, error) {
	p := &proposal{group: g, done: make(chan proposalResult, 1)}
	select {
	case n.proposals <- p:
	case <-ctx.Done():
		return nil, ctx.Err() // not queued: nothing proposed
	case <-n.closing:
		return nil, fmt.Errorf("cluster node: %w", core.ErrClosed)
	}
	select {
	case r := <-p.done:
		return r.applied, r.err
	case <-ctx.Done():
		return nil, fmt.Errorf("%w: %w", ErrOutcomeUnknown, ctx.Err())
	case <-n.closing:
		return nil, fmt.Errorf("%w: the node is closing", ErrOutcomeUnknown)
	}
}

// proposeLoop gathers waiting requests into entries until the node
// closes. Each entry's future is awaited by a goroutine of its own, so
// that the next entry gathers meanwhile; raft's apply queue bounds how
// many are in flight.
func (n *Node) proposeLoop() {
	defer n.wg.Done()
	var held *proposal // did not fit in the previous entry
	inflight := make(chan struct{}, maxInflightEntries)
	for {
		// Wait for a slot first: requests gather in n.proposals meanwhile.
		select {
		case inflight <- struct{}{}:
		case <-n.closing:
			return
		}
		batch := make([]*proposal, 0, 64)
		if held != nil {
			batch, held = append(batch, held), nil
		} else {
			select {
			case p := <-n.proposals:
				batch = append(batch, p)
			case <-n.closing:
				<-inflight
				return
			}
		}
		records, bytes := size(batch[0].group)
	gather:
		for {
			select {
			case p := <-n.proposals:
				r, b := size(p.group)
				if records+r > maxCommandRecords || bytes+b > maxEntryBytes {
					held = p
					break gather
				}
				batch, records, bytes = append(batch, p), records+r, bytes+b
			default:
				break gather
			}
		}
		c := command{kind: kindAppend, groups: make([]group, len(batch))}
		for i, p := range batch {
			c.groups[i] = p.group
		}
		f := n.raft.Apply(c.encode(), enqueueTimeout)
		n.wg.Add(1)
		go func() {
			defer n.wg.Done()
			n.deliver(f, batch)
			<-inflight
		}()
	}
}

func size(g group) (records, bytes int) {
	for _, r := range g.records {
		bytes += len(r.Payload)
	}
	return len(g.records), bytes
}

// deliver waits for an entry and answers each of its requests.
func (n *Node) deliver(f raft.ApplyFuture, batch []*proposal) {
	res, err := n.wait(context.Background(), f)
	e, _ := res.(*appliedEntry)
	if err == nil && e == nil {
		err = appliedErr(res)
		if err == nil {
			err = fmt.Errorf("%w: entry applied without a result (%T)", ErrOutcomeUnknown, res)
		}
	}
	for i, p := range batch {
		switch {
		case err != nil:
			p.done <- proposalResult{err: err}
		case e.Groups[i].Err != nil:
			p.done <- proposalResult{err: e.Groups[i].Err}
		default:
			p.done <- proposalResult{applied: &Applied{Index: e.Index, IDs: e.Groups[i].IDs}}
		}
	}
}
