// Package cluster runs AOF2 replicated: one hashicorp/raft group per
// cluster whose finite-state machine is the node's core.Store. The leader
// turns each client append into one Raft entry; once a majority has the
// entry in its Raft log (fsynced) the entry is applied on every node in
// log order, so a record carries the same RecordID, ordinal and ext_id
// (the entry's Raft index) everywhere. docs/adr-replication.md has the
// design, the failure cases and the measurements behind it.
//
// Why Raft and not something of our own: consensus is a solved problem
// with subtle failure modes; hashicorp/raft is what Consul, Nomad and
// Vault run. This package only adapts it: the command encoding
// (command.go), the FSM over the store (fsm.go), snapshots that carry
// positions, not data (snapshot.go), the node that wires raft up
// (node.go) and a transport layer that can inject partitions and message
// loss for fault runs (faults.go).
//
// Applying is idempotent across restarts. Raft replays entries after its
// last snapshot, and the store may already hold some of them: an Append
// entry whose index is below the stream's last ext_id is skipped, and one
// equal to it is completed from where a crash cut it (a crash keeps a
// prefix of a batch, never a hole).
package cluster
