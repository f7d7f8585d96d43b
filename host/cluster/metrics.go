package cluster

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// collector exports a node's Raft state at each scrape (Status). What a
// partition looks like: the cut-off node's aof_cluster_last_contact_seconds
// grows and its aof_cluster_leader is 0 everywhere it is not the leader;
// the majority side elects (aof_cluster_term rises) and its commit index
// moves on while the cut-off node's stays.
type collector struct {
	n                                            *Node
	leader, term, commit, applied, contact, fail *prometheus.Desc
	snapshot                                     *prometheus.Desc
	members, tierMoves, tierUnmatched, copied    *prometheus.Desc
	drops, rewound                               *prometheus.Desc
}

func newCollector(n *Node) *collector {
	d := func(name, help string) *prometheus.Desc {
		return prometheus.NewDesc("aof_cluster_"+name, help, nil, nil)
	}
	return &collector{n: n,
		leader:    d("leader", "1 while this node is the cluster's Raft leader."),
		term:      d("term", "The Raft term this node is in; a rise is an election."),
		commit:    d("commit_index", "The newest Raft index this node knows committed."),
		applied:   d("applied_index", "The newest Raft index this node's store applied."),
		snapshot:  d("snapshot_index", "The Raft index of this node's newest snapshot: the log before it (less cluster.trailing_logs) may be compacted, and a node further behind rejoins from the snapshot."),
		contact:   d("last_contact_seconds", "Seconds since this follower last heard from a leader (0 on the leader; -1 never)."),
		fail:      d("apply_failed", "1 once this node stopped applying entries (restart it)."),
		members:   d("members", "Servers in the Raft configuration this node knows."),
		tierMoves: d("tier_moves_total", "TierMove entries this node recorded (tier 2 holds the segment; it may evict its copies)."),
		drops:     d("drops_total", "Drop entries this node applied: segments retention dropped (the leader deletes their tier-2 objects after)."),
		tierUnmatched: d("tier_moves_unmatched_total",
			"TierMove entries naming a segment this node does not hold sealed: passed over, its copies stay (a divergence to investigate)."),
		rewound: d("tails_rewound_total",
			"Damaged tail segments this node rewound to their last intact record at start, for its Raft log to replay the rest (docs/adr-replication.md#a-damaged-member)."),
		copied: d("catchup_bytes_total",
			"Record payload bytes this node copied from other members because a Raft snapshot found its store behind (a new or wiped node rejoining, or one down while the log was compacted)."),
	}
}

func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.leader, c.term, c.commit, c.applied, c.snapshot, c.contact, c.fail, c.members, c.tierMoves, c.tierUnmatched, c.copied, c.drops, c.rewound} {
		ch <- d
	}
}

func (c *collector) Collect(ch chan<- prometheus.Metric) {
	st := c.n.Status()
	g := func(d *prometheus.Desc, v float64) { ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v) }
	g(c.leader, b2f(st.State == "Leader"))
	g(c.term, float64(st.Term))
	g(c.commit, float64(st.CommitIndex))
	g(c.applied, float64(st.AppliedIndex))
	g(c.snapshot, float64(st.SnapshotIndex))
	contact := -1.0
	switch {
	case st.State == "Leader" || st.LastContact == "0":
		contact = 0
	case st.LastContact != "never":
		if d, err := time.ParseDuration(st.LastContact); err == nil {
			contact = d.Seconds()
		}
	}
	g(c.contact, contact)
	g(c.fail, b2f(st.ApplyFailed != ""))
	g(c.members, float64(len(st.Servers)))
	ch <- prometheus.MustNewConstMetric(c.tierMoves, prometheus.CounterValue, float64(c.n.fsm.tierMoves.Load()))
	ch <- prometheus.MustNewConstMetric(c.tierUnmatched, prometheus.CounterValue, float64(c.n.fsm.tierUnmatched.Load()))
	ch <- prometheus.MustNewConstMetric(c.drops, prometheus.CounterValue, float64(c.n.fsm.drops.Load()))
	ch <- prometheus.MustNewConstMetric(c.copied, prometheus.CounterValue, float64(c.n.fsm.copiedBytes.Load()))
	ch <- prometheus.MustNewConstMetric(c.rewound, prometheus.CounterValue, float64(c.n.rewound.Load()))
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
